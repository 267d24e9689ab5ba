"""The project's folders (``suites/``, ``runners/``, ``results/baselines/``) and the suites a
command covers. A results folder's ``suites.json`` remembers the file of each suite of one's own
run there; two files of one name would mix their runs, so they are refused."""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from dlrepro.errors import Refused
from dlrepro.files import atomic_write
from dlrepro.layout import Results
from dlrepro.overrides import SEEDS, Override, flags
from dlrepro.suite import Suite, load


def suites_dir() -> Path:  # beside the package in a checkout, else in the working directory
    beside = Path(__file__).resolve().parents[1] / "suites"
    return beside if beside.is_dir() else Path.cwd() / "suites"


def runners_dir() -> Path:
    return suites_dir().parent / "runners"


def baselines_dir() -> Path:
    return suites_dir().parent / "results" / "baselines"


def shipped() -> dict[str, Path]:
    return {path.stem: path for path in sorted(suites_dir().glob("*.toml"))}


def resolve(names: list[str], overrides: list[Override] = (), only: list[Override] = (), *,
            own: Mapping[str, Path] | None = None,
            held: Mapping[str, Path] | None = None) -> list[Suite]:
    """Suites named on the command line: a name in suites/, else of ``own`` (files by name), or a
    path to a TOML file; none: all of suites/. Refused: two files of one name among them and the
    suites they need, or a file whose name a results folder ``held`` for another file."""
    known = {**(own or {}), **shipped()}
    paths = [_path(name, known) for name in names] if names else list(shipped().values())
    suites = [load(path, overrides, only) for path in paths]
    first: dict[str, Path] = {}
    for suite in with_needed(suites):
        other = first.setdefault(suite.name, suite.path)
        if other.resolve() != suite.path.resolve():
            raise Refused(suite.path, "name", f"{suite.name!r} is also the name of {other}: two "
                          "suites of one name would mix their runs; rename one (its file and its "
                          "name)")
        kept = (held or {}).get(suite.name)
        if kept is not None and kept.resolve() != suite.path.resolve():
            raise Refused(suite.path, "name", f"the results folder holds the runs of {kept} under "
                          f"the name {suite.name!r}: they would mix; rename one (its file and its "
                          "name) or use another --results folder")
    return suites


def _path(name: str, known: Mapping[str, Path]) -> Path:
    if name.endswith(".toml") or "/" in name or "\\" in name:
        return Path(name)
    if name not in known:
        raise Refused(suites_dir() / f"{name}.toml", "", f"no suite named {name!r}; known "
                      f"suites: {', '.join(sorted(known))}")
    return known[name]


def with_needed(suites: Iterable[Suite]) -> list[Suite]:
    """The suites and every suite they read from, transitively, each file once."""
    found: dict[Path, Suite] = {}
    todo = list(suites)
    while todo:
        suite = todo.pop(0)
        if found.setdefault(suite.path.resolve(), suite) is suite:
            todo += suite.producers.values()
    return list(found.values())


def remembered(folder: Results) -> tuple[dict[str, Path], dict[str, Path]]:
    """The suites of one's own run in the folder, by name, from its ``suites.json`` (nothing when
    unreadable): those whose file is there, and those whose file is gone."""
    try:
        entries = json.loads(folder.suites_file.read_text(encoding="utf-8"))
        paths = {str(name): Path(path) for name, path in entries.items()}
    except (OSError, ValueError, AttributeError):
        paths = {}
    found = {name: path for name, path in paths.items() if path.is_file()}
    return found, {name: path for name, path in paths.items() if name not in found}


def remember(folder: Results, suites: list[Suite]) -> None:
    """Keep in ``suites.json`` the file of each suite (and of those it needs) but a shipped one,
    which takes its name back."""
    found, gone = remembered(folder)
    known, entries = shipped(), {**found, **gone}
    for suite in with_needed(suites):
        if suite.name in known and known[suite.name].resolve() == suite.path.resolve():
            entries.pop(suite.name, None)
        else:
            entries[suite.name] = suite.path.resolve()
    text = json.dumps({name: str(path) for name, path in sorted(entries.items())}, indent=1)
    index = folder.suites_file
    if not index.is_file() or index.read_text(encoding="utf-8") != text:
        atomic_write(index, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def given(names: list[str], folder: Results, overrides: list[Override] = (),
          only: list[Override] = ()) -> list[Suite]:
    """The named suites (none: those of suites/), refused if one is not the file whose runs the
    folder holds under its name."""
    own, gone = remembered(folder)
    held = {name: path for name, path in shipped().items()
            if any(folder.records(name).glob("*.json"))}
    return resolve(names, overrides, only, own=own, held={**held, **gone, **own})


def covered(names: list[str], folder: Results, ran: set[str], overrides: list[Override],
            only: list[Override], say: Callable[[str], None]) -> list[Suite]:
    """The suites a command on the folder covers: those named; else every suite of suites/ and
    of one's own run there (with ``--set``/``--only``: those ``ran`` there), warning of results
    whose suite file it lacks."""
    if names:
        return given(names, folder, overrides, only)
    own, gone = remembered(folder)
    for name, path in gone.items():
        say(f"warning: {name}: its suite file {path} is gone; its results are left out")
    known = {**shipped(), **own}  # one's own suite run here stands for its name, even gone
    unknown = sorted(ran - set(known) - set(gone))
    if unknown:
        say(f"warning: {', '.join(unknown)}: results from suite files not known here; name those "
            "files to cover them")
    chosen = (ran if overrides or only else set(known)) & set(known) - set(gone)
    return resolve([str(known[name]) for name in sorted(chosen)], overrides, only)


def folder_with_results(results: Path, profile: str, overrides: list[Override],
                        only: list[Override], names: list[str]) -> Results:
    """The results folder of the profile (or of its overrides); Refused if nothing was run there,
    with the command that would (naming the suites that take the overridden keys)."""
    folder = Results(results, profile, overrides, only)
    if not folder.table("runs").exists():
        keys = {key for key, _ in [*overrides, *only]} - {SEEDS}
        takes = [s.name for s in resolve([]) if keys <= set(s.parameters)]
        named = names or (takes if keys else [])
        run = " ".join(["dlrepro run", *named, "--profile", profile, *flags(overrides, only)])
        raise Refused(f"{folder.root}: no results: run `{run}` first")
    return folder


def listing(names: list[str], results: Path, profiles: list[str]) -> list[dict]:
    """A row per suite and profile: its runs, how many are cached; then one per suite run in an
    override folder (``PROFILE+KEY=VALUE``), with the runs recorded there. No names: the suites
    of suites/, one's own run in the folder standing for its name."""
    def row(suite, folder: Results, runs: int, cached: int) -> dict:
        return {"suite": suite.name, "experiment": suite.model.experiment,
                "profile": folder.profile, "overrides": folder.overrides, "runs": runs,
                "cached": cached, "claims": sum(c.at(folder.profile) for c in suite.model.claims)}

    rows, named = [], resolve(names)
    for profile in profiles:
        folders = [Results(results, profile)] + [
            Results.at(found.parent)
            for found in sorted(results.glob(f"{glob.escape(profile)}+*/records"))]
        for folder in folders:
            own = {} if names else remembered(folder)[0]
            suites = [s for s in named if s.name not in own] + [load(path) for path in own.values()]
            for suite in suites:
                if not folder.overrides:
                    specs = suite.runs(profile)
                    rows.append(row(suite, folder, len(specs), sum(map(folder.done, specs))))
                elif statuses := [r.get("status") for r in folder.read_records(suite.name)]:
                    rows.append(row(suite, folder, len(statuses), statuses.count("ok")))
    return rows
