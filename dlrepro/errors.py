"""How a mistake in a suite or runner file is reported: ``file: key.path: message``, and how a
pydantic validation error becomes that key path and message."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

# pydantic puts the member type of a union or a validator's name in the location; it is not a key.
UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "function-after", "function-before",
              "tagged-union"}


class SuiteError(Exception):
    """A suite (or runner) file that cannot be used; the message names the file and the key path."""

    def __init__(self, path: Path | str, key: str, message: str):
        self.path, self.key, self.reason = Path(path), key, message
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


def key_path(error: dict) -> list[str]:
    """The keys of the file that lead to a pydantic error."""
    return [str(p) for p in error["loc"]
            if not (isinstance(p, str) and ("[" in p or p in UNION_TAGS))]


def best_error(err: ValidationError) -> dict:
    """The deepest error: for a union, the branch that got furthest says what is really wrong."""
    return max(err.errors(), key=lambda e: len(key_path(e)))


def message(error: dict) -> str:
    """A pydantic error's message, in the words of a suite file."""
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required, and given nowhere"
    return error["msg"].removeprefix("Value error, ")
