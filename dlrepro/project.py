"""The project's folders — ``suites/``, ``runners/``, ``results/baselines/`` — and the suites a
command line names.

A suite file outside ``suites/`` (a suite of one's own) is as good as a shipped one: a results
folder remembers in its ``suites.json`` which file each such suite's runs came from, so that a
later ``claims`` or ``report`` there covers it unasked. A name stands for one file: two files of
one name would share a records folder and mix their runs, so they are refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from dlrepro.errors import Refused
from dlrepro.files import atomic_write
from dlrepro.overrides import Override
from dlrepro.suite import Suite, load


def suites_dir() -> Path:
    """The project's suites/ folder: beside the package in a checkout, else in the working
    directory."""
    beside = Path(__file__).resolve().parents[1] / "suites"
    return beside if beside.is_dir() else Path.cwd() / "suites"


def runners_dir() -> Path:
    """The project's runner files, ``runners/``."""
    return suites_dir().parent / "runners"


def baselines_dir() -> Path:
    """The project's committed baselines, ``results/baselines/``."""
    return suites_dir().parent / "results" / "baselines"


def shipped() -> dict[str, Path]:
    """The project's suites by name: the files of suites/."""
    return {path.stem: path for path in sorted(suites_dir().glob("*.toml"))}


def resolve(names: list[str], overrides: list[Override] = (), only: list[Override] = (), *,
            own: Mapping[str, Path] | None = None,
            held: Mapping[str, Path] | None = None) -> list[Suite]:
    """Suites named on the command line: a name in suites/, else one of ``own`` (suites of one's
    own, by name), or a path to a TOML file; none means all of suites/. ``overrides`` (``--set``)
    and ``only`` (``--only``) apply to each of them. Two files of one name among them and the
    suites they need, or a file whose name a results folder ``held`` by another file, are refused
    (Refused naming both)."""
    known = shipped()
    if not names:
        paths = list(known.values())
    else:
        paths = [_path(name, {**(own or {}), **known}) for name in names]
    suites = [load(path, overrides, only) for path in paths]
    _refuse_namesakes(suites, held or {})
    return suites


def _path(name: str, known: Mapping[str, Path]) -> Path:
    if name.endswith(".toml") or "/" in name or "\\" in name:
        return Path(name)
    if name not in known:
        raise Refused(suites_dir() / f"{name}.toml", "", f"no suite named {name!r}; known "
                         f"suites: {', '.join(sorted(known))}")
    return known[name]


def _refuse_namesakes(suites: list[Suite], held: Mapping[str, Path]) -> None:
    first: dict[str, Path] = {}
    for suite in with_needed(suites):
        other = first.setdefault(suite.name, suite.path)
        if not same_file(other, suite.path):
            raise Refused(suite.path, "name", f"{suite.name!r} is also the name of {other}: "
                             "two suites of one name would mix their runs; rename one (its file "
                             "and its name)")
        kept = held.get(suite.name)
        if kept is not None and not same_file(kept, suite.path):
            raise Refused(suite.path, "name", f"the results folder holds the runs of {kept} "
                             f"under the name {suite.name!r}: they would mix; rename one (its "
                             "file and its name) or use another --results folder")


def with_needed(suites: Iterable[Suite]) -> list[Suite]:
    """The suites and every suite they read from, each file once."""
    found: dict[Path, Suite] = {}
    todo = list(suites)
    while todo:
        suite = todo.pop(0)
        if found.setdefault(suite.path.resolve(), suite) is suite:
            todo += suite.producers.values()
    return list(found.values())


def same_file(a: Path, b: Path | None) -> bool:
    return b is not None and a.resolve() == b.resolve()


def remembered(index: Path) -> dict[str, Path]:
    """The suites of one's own whose runs a results folder holds, by name, from its
    ``suites.json``; nothing when it is missing or unreadable (name their files again)."""
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
        return {str(name): Path(path) for name, path in entries.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def remember(index: Path, suites: list[Suite]) -> None:
    """Keep in ``suites.json`` the file of each of ``suites`` and of the suites they need that is
    not the shipped one of its name; a shipped suite takes its name back."""
    known, entries = shipped(), remembered(index)
    for suite in with_needed(suites):
        if same_file(suite.path, known.get(suite.name)):
            entries.pop(suite.name, None)
        else:
            entries[suite.name] = suite.path.resolve()
    text = json.dumps({name: str(path) for name, path in sorted(entries.items())}, indent=1)
    if not index.is_file() or index.read_text(encoding="utf-8") != text:
        atomic_write(index, lambda tmp: tmp.write_text(text, encoding="utf-8"))
