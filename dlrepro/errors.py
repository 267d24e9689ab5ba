"""How dlrepro refuses bad input: one line, exit 2, before any work (``schema.explain`` says a
validation error in the same words)."""


class Refused(Exception):
    """``Refused(message)``, or ``Refused(file, key, message)`` for ``file: key: message`` (an
    empty key left out)."""

    def __init__(self, *parts: object):
        *where, self.reason = parts
        self.key = str(where[1]) if len(where) > 1 else ""
        super().__init__(": ".join(str(part) for part in parts if part != ""))
