"""Per-run records: one JSON file per run, written atomically by the process that ran it.

The record is the unit that is never lost: tables are rebuilt from records, so a crash or Ctrl-C
between runs or while merging leaves every finished run on disk.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlrepro.suite import RunSpec


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the file into place: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RecordStore:
    def __init__(self, profile_dir: Path):
        self.root = Path(profile_dir)

    def path(self, spec: RunSpec) -> Path:
        return self.root / "records" / spec.suite / f"{spec.run_id}.json"

    def artifact_dir(self, spec: RunSpec) -> Path:
        return self.root / "artifacts" / spec.suite / spec.run_id

    def get(self, spec: RunSpec) -> dict | None:
        try:
            return json.loads(self.path(spec).read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return None  # unreadable: treat as never run, it will be run again and replaced

    def done(self, spec: RunSpec) -> bool:
        record = self.get(spec)
        return record is not None and record["status"] == "ok"

    def put(self, record: dict) -> None:
        path = self.root / "records" / record["suite"] / f"{record['run_id']}.json"
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=1, default=str)))
