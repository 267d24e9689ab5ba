"""The one flow: suite files → run specs → runner → per-run records → tables → claims → report.

``prepare`` checks everything a command was given — suites, runner, flags, the results folder —
and raises before any work; ``run`` then checks the experiments' code and the data the runs to do
will read, takes the results folder's lock, runs, merges the tables and evaluates the claims.
``report``, ``check`` and ``update_baselines`` work from the tables. The command line, the nox
sessions and the tests call these; none of them prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dlrepro import experiment as contract
from dlrepro.data import DataError, data_dir, verify
from dlrepro.layout import Results, baselines_dir
from dlrepro.planning import plan
from dlrepro.runners import load_runner
from dlrepro.schema import LocalRunner, RayRunner
from dlrepro.suite import Override, RunSpec, Suite, SuiteError, describe_overrides, resolve

if TYPE_CHECKING:
    import pandas as pd

Say = Callable[[str], None]


class UsageError(Exception):
    """Flags that contradict each other or what they apply to."""


class Interrupted(KeyboardInterrupt):
    """A signal that stops the command the way Ctrl-C does (SIGTERM: a CI cancel, ``ray job stop``)."""

    def __init__(self, signal_number: int):
        super().__init__(signal_number)
        self.signal_number = signal_number


@dataclass
class Request:
    """What ``dlrepro run`` was asked, checked."""

    suites: list[Suite]
    profile: str
    runner: LocalRunner | RayRunner
    results: Results
    data_dir: Path | None = None
    address: str | None = None

    @property
    def specs(self) -> list[RunSpec]:
        return [spec for suite in self.suites for spec in suite.runs(self.profile)]


@dataclass
class Outcome:
    request: Request
    todo: list[RunSpec]
    claims: pd.DataFrame
    failed: list[dict] = field(default_factory=list)
    interrupted: int | None = None  # the signal that stopped it, if one did

    @property
    def done(self) -> int:
        return sum(self.request.results.done(s) for s in self.request.specs)


def prepare(names: list[str], profile: str, runner: str = "local", *, results: Path = Path("results"),
            data: str | Path | None = None, address: str | None = None, overrides: list[Override] = ()) -> Request:
    """Every input of ``dlrepro run`` checked, nothing written: SuiteError, UsageError or ResultsError.
    With ``overrides`` (``--set``) the runs land in their own folder, ``<results>/<profile>+<overrides>``."""
    suites = resolve(names, overrides)
    config = load_runner(runner)
    if address and isinstance(config, LocalRunner):
        raise UsageError(f"--address: the {runner!r} runner runs in this process and takes no address; "
                         "use --runner ray to run on a cluster")
    folder = Results(results, profile, describe_overrides(overrides))
    folder.ensure_writable()
    return Request(suites, profile, config, folder, data_dir(data), address)


def run(request: Request, say: Say) -> Outcome:
    """Run what is not cached, keep every finished record whatever happens, merge, evaluate."""
    from dlrepro import runners, tables

    results, specs = request.results, request.specs
    todo = plan(specs, results)
    _check_implementations(request.suites + _producer_suites(request.suites), todo)
    _check_data(todo, request.data_dir)
    typical = _typical_run_times(results) if todo else {}  # read only for an ETA
    _warn_resources(todo, request.runner, say)
    failed: list[dict] = []
    interrupted = None
    with results.lock(say):
        todo = plan(specs, results)  # another dlrepro may have run some while this one waited
        _say_plan(request, todo, say)
        try:
            if todo:
                runners.run(todo, results, request.runner, expected=_expected_times(todo, results, typical),
                            data_dir=request.data_dir, address=request.address,
                            on_record=lambda r: failed.append(r) if r["status"] == "failed" else None)
        except Interrupted as stop:
            interrupted = stop.signal_number
        except KeyboardInterrupt:
            interrupted = 2
        finally:  # whatever happened, the tables hold every finished run
            merged = specs + [s for suite in _producer_suites(request.suites) for s in suite.runs(request.profile)]
            runs, metrics = tables.merge(results, merged)
            claims, _ = evaluate(request.suites, runs, metrics, results)
    return Outcome(request, todo, claims, failed, interrupted)


def _typical_run_times(results: Results) -> dict[str, float]:
    """Each suite's mean run on the machine the profile's committed cost.csv was measured on; a
    broken cost.csv is refused (BaselineError) before any work."""
    from dlrepro.regression import Baselines

    return Baselines(baselines_dir(), results.profile).mean_run_times()


def _expected_times(todo: list[RunSpec], results: Results, typical: dict[str, float]) -> dict[str, float | None]:
    """Each run's likely wall time, for the ETA: that of an earlier run of it in this folder, else its
    suite's ``typical`` run (the ETA scales those by how this machine's runs compare). None: nothing
    is known."""
    earlier = results.expected_wall_times(todo)
    return {s.run_id: typical.get(s.suite) if earlier[s.run_id] is None else earlier[s.run_id] for s in todo}


def _producer_suites(suites: list[Suite]) -> list[Suite]:
    """The suites the given ones read from and that were not asked for: their tables are merged too."""
    names = {s.name for s in suites}
    found: dict[str, Suite] = {}
    for suite in suites:
        for producer in suite.producers.values():
            if producer.name not in names:
                found.setdefault(producer.name, producer)
    return list(found.values())


def _check_implementations(suites: list[Suite], todo: list[RunSpec]) -> None:
    """The code of every suite with runs to do, checked against the contract before any starts; a
    cached suite's code is not even imported (torch costs seconds)."""
    pending = {s.suite for s in todo}
    for suite in {s.name: s for s in suites if s.name in pending}.values():
        try:
            suite.experiment.implementation  # noqa: B018 — imported and checked against the contract
        except contract.ContractError as err:
            raise SuiteError(suite.path, "experiment", f"experiment {suite.model.experiment!r} is broken: {err}") \
                from None


def _check_data(todo: list[RunSpec], root: Path | None) -> None:
    needed = set()
    for spec in todo:
        experiment = contract.get(spec.experiment)
        needed |= experiment.datasets(experiment.params.model_validate(spec.params))
    if needed:
        verify(needed, root)


def _warn_resources(todo: list[RunSpec], runner: LocalRunner | RayRunner, say: Say) -> None:
    """What this machine cannot honour, said once per suite, and what happens instead."""
    if not isinstance(runner, LocalRunner):
        return  # a cluster's resources are the cluster's: the Ray runner sizes its pools by them
    cores = os.cpu_count() or 1
    gpu_suites = sorted({s.suite for s in todo if s.resources.gpus > 0})
    if gpu_suites:
        import torch

        if not torch.cuda.is_available():
            say(f"warning: {', '.join(gpu_suites)} ask(s) for a GPU and none is visible: the runs go on the CPU")
    for suite in sorted({s.suite for s in todo if s.resources.cpus > cores}):
        cpus = max(s.resources.cpus for s in todo if s.suite == suite)
        say(f"warning: {suite} asks for {cpus} CPUs and this machine has {cores}: its runs use {cores} thread(s)")


def _say_plan(request: Request, todo: list[RunSpec], say: Say) -> None:
    from rich.markup import escape

    todo_ids = {s.run_id for s in todo}
    for suite in request.suites:
        mine = suite.runs(request.profile)
        pending = sum(s.run_id in todo_ids for s in mine)
        say(f"{suite.name}: {len(mine)} run{'s' * (len(mine) != 1)} at profile {request.profile}, {len(mine) - pending} cached, "
            f"{pending} to run")
    requested = {s.run_id for s in request.specs}
    for spec in todo:
        if spec.run_id not in requested:
            say(f"{escape(spec.label)}: to run first, another suite reads its files")
    if not todo:
        say(f"Nothing to run: every run is cached in {request.results.root / 'records'}.")


def evaluate(suites: list[Suite], runs: pd.DataFrame, metrics: pd.DataFrame,
             results: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every claim of ``suites`` at the folder's profile, and the fidelity table of their published
    numbers; claims.csv and fidelity.csv keep other suites' rows."""
    from dlrepro import claims, fidelity, tables

    profile, verdicts, numbers = results.profile, [], []
    for suite in suites:
        table = tables.joined(runs, metrics, suite.name)
        evaluated = claims.evaluate(suite, table, profile)
        verdicts += evaluated
        numbers += fidelity.rows(suite, evaluated, profile)
    return claims.write(results.claims, verdicts), fidelity.write(results.fidelity, numbers)


def claims(results: Path, profile: str, overrides: list[Override] = ()) -> pd.DataFrame:
    """Every suite's claims against the profile's tables (or those of its ``--set`` overrides)."""
    from dlrepro import tables

    folder = Results(results, profile, describe_overrides(overrides))
    runs, metrics = tables.load(folder)
    return evaluate(_suites_of(folder, runs, overrides), runs, metrics, folder)[0]


def report(results: Path, profile: str, say: Say, overrides: list[Override] = ()) -> list[Path]:
    """``report.md`` and ``report.html`` of one profile (or of its ``--set`` overrides), its claims
    evaluated afresh."""
    from dlrepro import report as pages
    from dlrepro import tables

    folder = Results(results, profile, describe_overrides(overrides))
    if not folder.table("runs").exists():
        run = " ".join(["dlrepro run --profile", profile, *(f"--set {describe_overrides([o])}" for o in overrides)])
        raise DataError(f"{folder.root}: no results: run `{run}` first")
    with folder.lock(say):
        runs, metrics = tables.load(folder)
        suites = _suites_of(folder, runs, overrides)
        return pages.build(folder, suites, *evaluate(suites, runs, metrics, folder), runs, metrics)


def _suites_of(folder: Results, runs: pd.DataFrame, overrides: list[Override]) -> list[Suite]:
    """The profile's report covers every suite; an override folder, the suites that were run in it."""
    if not overrides:
        return resolve([])
    return resolve(sorted(runs["suite"].unique()), overrides) if len(runs) else []


@dataclass
class CheckOutcome:
    verdicts: pd.DataFrame
    notes: list[str]
    unbaselined: list[str]  # suites with no baseline
    gone: list[str]  # baselines whose suite file is gone
    path: Path  # where every verdict was written

    @property
    def compared(self) -> int:
        """Values compared with a baseline value."""
        from dlrepro import regression

        return regression.compared(self.verdicts)

    def blocking(self, allow_new: bool) -> list[str]:
        """Why the gate fails, one reason a line (``regression.failures``); none: it passes."""
        from dlrepro import regression

        return regression.failures(self.verdicts, self.unbaselined, self.gone, allow_new)


def check(names: list[str], results: Path, profile: str, baseline_root: Path) -> CheckOutcome:
    from dlrepro import regression
    from dlrepro.files import atomic_write

    baselines = regression.Baselines(baseline_root, profile)
    baselines.ensure_exists()
    suites = resolve(names)
    known = {s.name for s in suites}
    gone = [] if names else [name for name in baselines.suites() if name not in known]
    folder = Results(results, profile)
    verdicts, notes, unbaselined = regression.check(suites, baselines, folder)
    atomic_write(folder.check, lambda tmp: verdicts.to_csv(tmp, index=False))
    return CheckOutcome(verdicts, notes, unbaselined, gone, folder.check)


def update_baselines(names: list[str], results: Path, profile: str, baseline_root: Path,
                     show: Callable[[str, pd.DataFrame | None], None]) -> list[tuple[Path, int]]:
    """Refresh the named suites' baselines (default: every suite with results); ``show`` gets each
    suite's changes from its old baseline (None: a new one). Returns the files written."""
    from dlrepro import regression, tables

    baselines, folder = regression.Baselines(baseline_root, profile), Results(results, profile)
    runs, metrics = tables.load(folder)
    suites = resolve(names) if names else [s for s in resolve([]) if (runs["suite"] == s.name).any()]
    if not suites:
        raise DataError(f"{folder.root}: no results: run `dlrepro run --profile {profile}` first")
    written = []
    for suite in suites:
        summary = regression.summarise(runs, metrics, suite, profile)
        if summary.empty:
            raise DataError(f"{folder.root}: no successful runs of {suite.name}: nothing to baseline")
        old = baselines.read(suite.name)
        show(suite.name, None if old is None else regression.compare(old, summary, suite.metrics))
        written.append((baselines.write(suite.name, summary, regression.cost(runs, suite.name)), len(summary)))
    return written


@dataclass
class Generalisation:
    table: pd.DataFrame  # generalisation.COLUMNS
    folder: Results  # the other set's runs, claims, report and the comparison
    outcomes: list[Outcome]


def generalise(profile: str, runner: str, say: Say, *, dataset: str = "fashion_mnist", results: Path = Path("results"),
               data: str | Path | None = None, address: str | None = None) -> Generalisation:
    """The suites that read a dataset, run on MNIST (the profile's own runs, cached) and again with
    ``--set dataset=DATASET``; each claim's verdicts side by side in ``generalisation.csv`` beside
    the other set's results. Every input is checked for both before anything runs."""
    import pandas as pd

    from dlrepro import generalisation

    names = [s.name for s in resolve([]) if "dataset" in s.experiment.params.model_fields]
    requests = [prepare(names, profile, runner, results=results, data=data, address=address, overrides=overrides)
                for overrides in ([], [("dataset", dataset)])]
    outcomes = []
    for request in requests:
        say(f"{'MNIST' if not request.results.overrides else dataset}: {', '.join(names)} at profile {profile}")
        outcomes.append(run(request, say))
        if outcomes[-1].interrupted:
            break
    mine = [o.claims[o.claims["suite"].isin(names)] for o in outcomes]
    table = generalisation.compare(*mine) if len(mine) == 2 else pd.DataFrame(columns=generalisation.COLUMNS)
    folder = requests[1].results
    if len(mine) == 2:
        generalisation.write(folder.generalisation, table)
    return Generalisation(table, folder, outcomes)
