"""How dlrepro refuses bad input: one line, ``file: key.path: message``, exit 2, before any work
(``schema.explain`` says a validation error in those words)."""

from __future__ import annotations


class Refused(Exception):
    """``Refused(message)``, or ``Refused(file, key, message)`` for ``file: key.path: message``
    (an empty key is left out)."""

    def __init__(self, *parts: object):
        *where, self.reason = parts
        self.key = str(where[1]) if len(where) > 1 else ""
        super().__init__(": ".join(str(part) for part in parts if part != ""))
