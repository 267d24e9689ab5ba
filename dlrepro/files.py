"""File helpers every module may use, and where the data sets are (``--data-dir``): a leaf,
importing nothing of dlrepro but its one error."""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

from dlrepro.errors import Refused

ENV_VAR = "DLREPRO_DATA_DIR"


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, then move the file into place: readers see the old or new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    # Created with the umask's permissions, as a plain write would be (mkstemp's 0600 would leave a
    # report unreadable to the web server it is copied to).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_toml(path: Path, what: str) -> dict:
    """A ``what`` file's data (UTF-8, with or without the byte-order mark Windows editors put
    first); Refused in one line naming the file where it cannot be read or is not TOML."""
    unreadable = {FileNotFoundError: f"no such {what} file",
                  IsADirectoryError: f"is a directory, not a {what} file",
                  PermissionError: "not readable (permission denied)"}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise Refused(path, "", f"not UTF-8 text: {err.reason} at byte {err.start}") from None
    except OSError as err:
        reason = unreadable.get(type(err), f"cannot be read: {err.strerror}")
        raise Refused(path, "", reason) from None
    except tomllib.TOMLDecodeError as err:
        raise Refused(path, "", f"not valid TOML: {err}") from None


def data_dir(flag: str | Path | None = None) -> Path | None:
    """The flag's, else the environment's; None: download."""
    chosen = flag or os.environ.get(ENV_VAR)
    return Path(chosen).expanduser().resolve() if chosen else None


def folder_problem(root: Path | None) -> str | None:
    if root is None or root.is_dir():
        return None
    state = "is a file, not a directory" if root.exists() else "does not exist"
    return f"{root}: the data directory (from --data-dir or ${ENV_VAR}) {state}"
