"""A results folder, ``<results>/<profile>[+<overrides>]/``: every path in it, spelled out once,
and its per-run records, the unit that is never lost (written atomically; tables are rebuilt from
them). One ``dlrepro`` at a time writes a folder (``lock``)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dlrepro.errors import Refused
from dlrepro.files import atomic_write
from dlrepro.overrides import Override, describe_overrides, folder_name
from dlrepro.suite import RunSpec


def _file(name: str) -> property:
    return property(lambda folder: folder.root / name)


class Results:
    """Runs with ``--set`` or ``--only`` have a folder of their own: they never mix with the
    profile's."""

    def __init__(self, results: Path, profile: str, overrides: list[Override] = (),
                 only: list[Override] = ()):
        self.profile = profile
        self.overrides = describe_overrides(overrides, only)  # as the report names them
        self.root = Path(results) / "+".join(filter(None, [profile, folder_name(overrides, only)]))

    @classmethod
    def at(cls, root: Path) -> Results:
        """A folder found on disk, ``PROFILE+OVERRIDES`` named by its folder name's OVERRIDES."""
        folder = cls(root.parent, root.name.partition("+")[0])
        folder.root, folder.overrides = root, root.name.partition("+")[2]
        return folder

    def records(self, suite: str) -> Path:
        return self.root / "records" / suite

    def record_path(self, suite: str, run_id: str) -> Path:
        return self.records(suite) / f"{run_id}.json"

    def artifacts(self, suite: str) -> Path:
        return self.root / "artifacts" / suite

    def artifact_dir(self, spec: RunSpec) -> Path:
        return self.artifacts(spec.suite) / spec.run_id

    def discard_artifacts(self, spec: RunSpec) -> None:  # an earlier attempt's: start afresh
        shutil.rmtree(self.artifact_dir(spec), ignore_errors=True)

    def figures(self, suite: str) -> Path:
        return self.root / "figures" / suite

    def table(self, name: str, kind: str = "parquet") -> Path:
        return self.root / f"{name}.{kind}"

    claims = _file("claims.csv")
    fidelity = _file("fidelity.csv")
    suites_file = _file("suites.json")  # which file each suite of one's own run here came from
    generalisation = _file("generalisation.csv")
    check = _file("check.csv")
    report = _file("report.md")
    report_html = _file("report.html")
    energy = _file("energy")

    def get(self, spec: RunSpec) -> dict | None:
        try:
            return json.loads(self.record_path(spec.suite, spec.run_id).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None  # unreadable: treat as never run, it will be run again and replaced

    def read_records(self, suite: str) -> Iterator[dict]:
        """Every readable record of the suite, whatever code it ran."""
        for path in self.records(suite).glob("*.json"):
            try:
                yield json.loads(path.read_text())
            except (OSError, ValueError):
                continue

    def done(self, spec: RunSpec) -> bool:
        return (self.get(spec) or {}).get("status") == "ok"

    def put(self, record: dict) -> None:
        path = self.record_path(record["suite"], record["run_id"])
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=1, default=str)))

    def ensure_writable(self) -> None:
        """Refuse, before any work, a results folder that is a file or cannot be written."""
        folder = next(folder for folder in (self.root, *self.root.parents) if folder.exists())
        if not folder.is_dir():
            raise Refused(f"{folder}: the results folder is a file, not a folder")
        # A real write, gone at once: permissions, read-only mounts and pseudo-filesystems alike.
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as err:
            raise Refused(f"{folder}: the results folder is not writable "
                          f"({err.strerror})") from None

    @contextmanager
    def lock(self, on_wait: Callable[[str], None]) -> Iterator[None]:
        """Hold the folder; another dlrepro on it waits, saying so, until this one is done."""
        from filelock import FileLock, Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.root / ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            on_wait(f"waiting for another dlrepro working in {self.root} to finish "
                    f"(lock {lock.lock_file})…")
            lock.acquire()
        try:
            yield
        finally:
            lock.release()
