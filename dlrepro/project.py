"""The project's folders — ``suites/``, ``runners/``, ``results/baselines/`` — and the suites a
command line names."""

from __future__ import annotations

from pathlib import Path

from dlrepro.errors import SuiteError
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


def resolve(names: list[str], overrides: list[Override] = (),
            only: list[Override] = ()) -> list[Suite]:
    """Suites named on the command line (a name in suites/ or a path to a TOML file); none means
    all. ``overrides`` (``--set``) and ``only`` (``--only``) apply to each of them."""
    if not names:
        return [load(p, overrides, only) for p in sorted(suites_dir().glob("*.toml"))]
    found = []
    for name in names:
        is_path = name.endswith(".toml") or "/" in name or "\\" in name
        path = Path(name) if is_path else suites_dir() / f"{name}.toml"
        if not is_path and not path.exists():
            known = ", ".join(p.stem for p in sorted(suites_dir().glob("*.toml")))
            raise SuiteError(path, "", f"no suite named {name!r}; known suites: {known}")
        found.append(load(path, overrides, only))
    return found
