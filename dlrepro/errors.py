"""How a mistake in a suite or runner file is reported: ``file: key.path: message``, and how a
pydantic validation error becomes that key path and message."""

from __future__ import annotations

import difflib

from pydantic import ValidationError

# pydantic puts the member type of a union or a validator's name in the location; it is not a key.
UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "function-after", "function-before",
              "tagged-union"}


class Refused(Exception):
    """Input dlrepro refuses before any work (exit 2), in one line: ``Refused(message)``, or
    ``Refused(file, key, message)`` for ``file: key.path: message`` (an empty key is left out)."""

    def __init__(self, *parts: object):
        *where, self.reason = parts
        self.key = str(where[1]) if len(where) > 1 else ""
        super().__init__(": ".join(str(part) for part in parts if part != ""))


def key_path(error: dict) -> list[str]:
    """The keys of the file that lead to a pydantic error."""
    loc = list(error["loc"])
    if len(loc) >= 3 and loc[0] == "claims" and isinstance(loc[1], int):
        del loc[2]  # the claim's kind, which pydantic's tagged union puts in the location
    return [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in UNION_TAGS))]


def best_error(err: ValidationError) -> dict:
    """The deepest error: for a union, the branch that got furthest says what is really wrong. A
    key given under a wrong name and missing under its right one is the unknown key, with the
    name it most likely meant."""
    errors = err.errors()
    missing = {tuple(key_path(e)): e for e in errors if e["type"] == "missing"}
    for error in errors:
        where = tuple(key_path(error))
        if error["type"] != "extra_forbidden" or not where:
            continue
        meant = [path[-1] for path in missing if path[:-1] == where[:-1]]
        close = difflib.get_close_matches(where[-1], meant, n=1) or meant[:1]
        if close:
            return {**error, "meant": close[0]}
    return max(errors, key=lambda e: len(key_path(e)))


def message(error: dict) -> str:
    """A pydantic error's message, in the words of a suite file."""
    if error["type"] == "extra_forbidden" and "meant" in error:
        return f"unknown key (did you mean {error['meant']!r}, which is required?)"
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required, and given nowhere"
    return error["msg"].removeprefix("Value error, ")
