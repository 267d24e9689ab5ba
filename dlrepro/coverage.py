"""Which suites a command on a results folder covers: those named, else every shipped suite and
every suite of one's own run there (remembered in ``suites.json``), never two files of one name;
and the rows of the tables that are theirs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlrepro.errors import Refused
from dlrepro.layout import Results
from dlrepro.overrides import Override, describe_overrides, flags
from dlrepro.project import remembered, resolve, shipped
from dlrepro.suite import Suite, load

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    Say = Callable[[str], None]


def rows_of(table: pd.DataFrame, suites: list[str]) -> pd.DataFrame:
    return table[table["suite"].isin(suites)].reset_index(drop=True)


def unrun(suites: list[Suite], runs: pd.DataFrame) -> list[str]:
    """The suites without a single run (ok or failed) in the tables."""
    ran = set(runs["suite"])
    return [suite.name for suite in suites if suite.name not in ran]


def folder_with_results(results: Path, profile: str, overrides: list[Override],
                         only: list[Override], names: list[str]) -> Results:
    """The results folder of the profile (or of its overrides); Refused if nothing was run
    there."""
    folder = Results(results, profile, describe_overrides(overrides, only))
    if not folder.table("runs").exists():
        named = names or _suites_taking([key for key, _ in [*overrides, *only]])
        run = " ".join(["dlrepro run", *named, "--profile", profile, *flags(overrides, only)])
        raise Refused(f"{folder.root}: no results: run `{run}` first")
    return folder


def _suites_taking(keys: list[str]) -> list[str]:
    """The suites whose experiments have every parameter in ``keys`` (none for no keys: every
    suite), so that a suggested ``dlrepro run`` with those overrides is not refused."""
    if not keys:
        return []
    return [suite.name for suite in resolve([]) if all(
        key == "seeds" or key in suite.experiment.params.model_fields for key in keys)]


def given(names: list[str], folder: Results, overrides: list[Override],
           only: list[Override] = ()) -> list[Suite]:
    """The named suites (none: those of suites/), refused if one is not the file whose runs the
    folder holds under its name."""
    own, gone = _remembered(folder)
    held = {name: path for name, path in shipped().items()
            if name not in gone and any(folder.records(name).glob("*.json"))}
    return resolve(names, overrides, only, own=own, held={**held, **own})


def with_own(suites: list[Suite], folder: Results) -> list[Suite]:
    """``suites`` and the suites of one's own run in the folder (``suites.json``) whose file is
    there; one of those stands for a shipped suite of its name."""
    own = [load(path) for path in _remembered(folder)[0].values()]
    mine = {suite.name for suite in own}
    return [suite for suite in suites if suite.name not in mine] + own


def _remembered(folder: Results) -> tuple[dict[str, Path], dict[str, Path]]:
    """The suites of one's own run in the folder, by name: those whose file is there, and those
    whose file is gone."""
    found: dict[str, Path] = {}
    gone: dict[str, Path] = {}
    for name, path in remembered(folder.suites_file).items():
        (found if path.is_file() else gone)[name] = path
    return found, gone


def covered(names: list[str], folder: Results, runs: pd.DataFrame, overrides: list[Override],
             only: list[Override], say: Say) -> list[Suite]:
    """The suites a command on the folder covers: those named; else every suite of suites/ and
    every suite of one's own run there (``suites.json``), or with ``--set``/``--only`` those run
    there. ``say`` warns of results it cannot cover, for want of their suite file."""
    if names:
        return given(names, folder, overrides, only)
    own, gone = _remembered(folder)
    for name, path in gone.items():
        say(f"warning: {name}: its suite file {path} is gone; its results are left out")
    known = {**shipped(), **own}  # a suite of one's own run here stands for its name here
    ran = set(runs["suite"])
    unknown = sorted(ran - set(known) - set(gone))
    if unknown:
        say(f"warning: {', '.join(unknown)}: results from suite files not known here; name those "
            "files to cover them")
    chosen = sorted(ran & set(known)) if overrides or only else sorted(known)
    return resolve([str(known[name]) for name in chosen], overrides, only)
