"""File helpers every module may use, and where the data sets are (``--data-dir``): a leaf,
importing nothing of dlrepro."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

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


def read_text(path: Path) -> str:
    """UTF-8, with or without the byte-order mark Windows editors put first."""
    return path.read_text(encoding="utf-8-sig")


def data_dir(flag: str | Path | None = None) -> Path | None:
    """The flag's, else the environment's; None: download."""
    chosen = flag or os.environ.get(ENV_VAR)
    return Path(chosen).expanduser().resolve() if chosen else None


def folder_problem(root: Path | None) -> str | None:
    if root is None or root.is_dir():
        return None
    state = "is a file, not a directory" if root.exists() else "does not exist"
    return f"{root}: the data directory (from --data-dir or ${ENV_VAR}) {state}"
