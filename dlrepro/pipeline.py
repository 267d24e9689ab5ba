"""The one flow: suite files → run specs → runner → per-run records → tables → claims →
report (docs/architecture.md). ``prepare`` refuses bad input before any work; nothing prints."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dlrepro import devices
from dlrepro.console import duration
from dlrepro.devices import DeviceChoice
from dlrepro.errors import Refused
from dlrepro.experiments.image_sets import absent, verify
from dlrepro.files import data_dir, folder_problem
from dlrepro.layout import Results
from dlrepro.overrides import Override, check_selected
from dlrepro.formatting import ClaimStatus, counted
from dlrepro.planning import cannot_honour, datasets_read, eta, expected_times, plan
from dlrepro.project import (baselines_dir, covered, folder_with_results, given, remember,
                             with_needed)
from dlrepro.runners import check_ray_use, load_runner
from dlrepro.schema import LocalRunner, RayRunner
from dlrepro.suite import RunSpec, Suite

if TYPE_CHECKING:
    import pandas as pd

Say = Callable[[str], None]


class Interrupted(KeyboardInterrupt):
    """A signal that stops the command as Ctrl-C does (SIGTERM: a CI cancel, ``ray job stop``)."""

    # The latest signal, also kept here: a Ray wait re-raises it as a bare KeyboardInterrupt.
    latest: int | None = None

    def __init__(self, signal_number: int):
        super().__init__(signal_number)
        Interrupted.latest = signal_number


@dataclass
class Request:
    suites: list[Suite]
    profile: str
    runner: LocalRunner | RayRunner
    results: Results
    data_dir: Path | None = None
    cluster: str | None = None  # Ray's: --address, the runner file's, $RAY_ADDRESS; None: embedded
    device: DeviceChoice = DeviceChoice.AUTO

    @property
    def specs(self) -> list[RunSpec]:
        return [spec for suite in self.suites for spec in suite.runs(self.profile)]


@dataclass
class Claims:
    table: pd.DataFrame  # a row per claim (claims.COLUMNS)
    unrun: list[str]  # the suites with no results in the folder: every claim of theirs is not run


@dataclass
class Outcome:
    claims: Claims
    done: int  # of the runs asked for, those with an ok record
    failed: list[dict]  # this command's failed records
    interrupted: int | None = None  # the signal that stopped it, if one did
    left_out: int = 0  # runs not run: their data set is not there


def prepare(names: list[str], profile: str, runner: str = "local", *,
            results: Path = Path("results"), data: str | Path | None = None,
            address: str | None = None, overrides: list[Override] = (),
            only: list[Override] = (), device: DeviceChoice = DeviceChoice.AUTO,
            say: Say = lambda line: None) -> Request:
    """Every input of ``dlrepro run`` checked, nothing written (else Refused); a bad data
    directory is only a warning where no selected run reads data."""
    folder = Results(results, profile, overrides, only)
    suites = given(names, folder, overrides, only)
    check_selected(suites, profile)
    problem = folder_problem(data_dir(data))
    if problem and datasets_read([s for suite in suites for s in suite.runs(profile)]):
        raise Refused(problem)
    if problem:
        say(f"warning: {problem}; no selected run reads data, so nothing is read from it")
    config = load_runner(runner)
    if address and isinstance(config, LocalRunner):
        raise Refused(f"--address: the {runner!r} runner runs in this process and takes no "
                      "address; use --runner ray to run on a cluster")
    if device is not DeviceChoice.AUTO and not isinstance(config, LocalRunner):
        raise Refused(f"--device is the local runner's; drop it for --runner {runner}, where a "
                      "run that reads a data set computes on the GPU its resources reserve")
    problem = devices.unavailable(device)
    if problem:
        raise Refused(problem)
    cluster = check_ray_use(address, config.address, results) if isinstance(
        config, RayRunner) else None
    folder.ensure_writable()
    return Request(suites, profile, config, folder, data_dir(data), cluster, device)


def run(request: Request, say: Say) -> Outcome:
    """Run what is not cached, keep every finished record whatever happens, merge, evaluate."""
    from dlrepro import runners, tables

    results, specs, involved = request.results, request.specs, with_needed(request.suites)
    todo = plan(specs, results)
    _check_implementations(involved, todo)
    needed = datasets_read(todo)
    if needed:
        verify(needed, request.data_dir)
    missing = absent(needed, request.data_dir)  # an optional set's runs are left out, saying why
    typical = typical_run_times(results, say) if todo else {}  # read only for an ETA
    if isinstance(request.runner, LocalRunner):  # a cluster's are the Ray runner's to fit
        for line in cannot_honour(todo, os.cpu_count() or 1, _gpus_visible(todo), "this machine"):
            say(line)
    records: list[dict] = []
    interrupted = None
    with results.lock(say):
        remember(results, request.suites)  # so that `dlrepro report` finds them
        todo = plan(specs, results)  # another dlrepro may have run some while this one waited
        left_out = _left_out(todo, missing)
        if left_out:  # recorded, for the claims to say why; the next run looks again
            from dlrepro.execute import record

            for spec in (spec for spec in todo if spec.run_id in left_out):
                if (results.get(spec) or {}).get("error") != left_out[spec.run_id]:  # else: said
                    results.put(record(spec, error=left_out[spec.run_id],
                                       status=ClaimStatus.NOT_RUN,
                                       started=datetime.now(timezone.utc)))
        todo = [spec for spec in todo if spec.run_id not in left_out]
        expected = expected_times(todo, results, typical)
        for line in _foreseen(request, todo, expected, left_out):
            say(line)
        Interrupted.latest = None
        refused = False
        try:
            if todo:
                runners.run(todo, results, request.runner, expected=expected,
                            data_dir=request.data_dir, address=request.cluster,
                            device=request.device, on_record=records.append)
        except KeyboardInterrupt:  # Ctrl-C, or Interrupted
            interrupted = Interrupted.latest or signal.SIGINT
        except Refused:  # the cluster, refused before any run: nothing to merge
            refused = True
            raise
        finally:  # whatever happened, the tables hold every finished run
            if not refused:
                merged = [spec for suite in involved for spec in suite.runs(request.profile)]
                runs, metrics = tables.merge(results, merged)
                claims, _ = evaluate(request.suites, runs, metrics, results)
    failed = [record for record in records if record["status"] == "failed"]
    return Outcome(Claims(claims, unrun(request.suites, runs)), sum(map(results.done, specs)),
                   failed, interrupted, len(left_out))


def _left_out(todo: list[RunSpec], missing: Mapping[str, str]) -> dict[str, str]:
    """Why each spec that reads a set ``missing`` names (``data.absent``) is left out, by run_id."""
    reasons = {}
    for spec in todo if missing else ():
        why = "; ".join(missing[name] for name in sorted(datasets_read([spec]) & missing.keys()))
        if why:
            reasons[spec.run_id] = why
    return reasons


def unrun(suites: list[Suite], runs: pd.DataFrame) -> list[str]:
    return [suite.name for suite in suites if suite.name not in set(runs["suite"])]


def rows_of(table: pd.DataFrame, suites: list[str]) -> pd.DataFrame:
    return table[table["suite"].isin(suites)].reset_index(drop=True)


def typical_run_times(results: Results, say: Say) -> dict[str, float]:
    """Each suite's mean run in the profile's committed cost.csv; broken, the ETA goes without."""
    from dlrepro.tables import Baselines

    try:
        cost = Baselines(baselines_dir(), results.profile).cost()
    except Refused as err:
        say(f"warning: the ETA goes without typical run times: {err}")
        return {}
    return {row.suite: row.wall_time_s / row.runs for row in cost.itertuples() if row.runs > 0}


def _check_implementations(suites: list[Suite], todo: list[RunSpec]) -> None:
    """The code of every suite with runs to do, checked against the contract before any starts."""
    pending = {s.suite for s in todo}
    for suite in {s.name: s for s in suites if s.name in pending}.values():
        try:
            suite.experiment.implementation  # noqa: B018 (imported and checked)
        except Refused as err:
            raise Refused(suite.path, "experiment", f"experiment {suite.model.experiment!r} is "
                          f"broken: {err}") from None


def _gpus_visible(todo: list[RunSpec]) -> int:
    """This machine's GPUs, where a run asks for one (torch costs seconds)."""
    if not any(spec.resources.gpus for spec in todo):
        return 0
    import torch

    return torch.cuda.device_count()


def dry_run(request: Request, say: Say) -> list[str]:
    """What ``run`` would do, from the records and whether an optional data set is there: nothing
    written or checked beyond them; on Ray, the cluster it sees and the ETA there."""
    todo = plan(request.specs, request.results)
    left_out = _left_out(todo, absent(datasets_read(todo), request.data_dir))
    todo = [spec for spec in todo if spec.run_id not in left_out]
    typical = typical_run_times(request.results, say) if todo else {}
    expected = expected_times(todo, request.results, typical)
    lines = _foreseen(request, todo, expected, left_out)
    if todo and isinstance(request.runner, RayRunner):
        from dlrepro.ray_runner import plan_on_cluster
        from dlrepro.tables import COST_FILE

        cost_file = baselines_dir() / request.results.profile / COST_FILE  # typical's source
        if cost_file.is_relative_to(Path.cwd()):
            cost_file = cost_file.relative_to(Path.cwd())
        source = f"the committed {cost_file}" if typical else f"no committed {cost_file}"
        seen, at_once, problem = plan_on_cluster(todo, address=request.cluster,
                                                 num_cpus=request.runner.num_cpus)
        seconds = eta(todo, expected, at_once) if at_once else None
        if problem:
            outlook = f"this cluster cannot run them: {problem}"
        elif seconds is None:
            outlook = f"ETA not known: no earlier run here and {source}"
        else:
            outlook = (f"ETA about {duration(seconds)} on this cluster (earlier runs here, else "
                       f"{source}){_guessed(todo, expected)}")
        lines[-1:] = [*seen, f"{counted(len(todo), 'run')} to do; {outlook}"]
    return lines


def _foreseen(request: Request, todo: list[RunSpec], expected: dict[str, float | None],
              left_out: Mapping[str, str] = {}) -> list[str]:
    """What ``run`` is about to do, for a person: each asked suite's runs (cached, to run, where),
    the runs of other suites they read, and the ETA run after run (on Ray, when it can tell)."""
    todo_ids, requested = {s.run_id for s in todo}, {s.run_id for s in request.specs}
    lines = []
    for suite in request.suites:
        mine = suite.runs(request.profile)
        pending = [s for s in mine if s.run_id in todo_ids]
        out = sum(s.run_id in left_out for s in mine)
        where = f", on {_device(pending, request)}" if pending else ""
        lines.append(f"{suite.name}: {counted(len(mine), 'run')} at profile {request.profile}, "
                     f"{len(mine) - len(pending) - out} cached, {len(pending)} to run{where}"
                     + f", {out} not run" * bool(out))
    lines += [f"{spec.label}: to run first, another suite reads its files"
              for spec in todo if spec.run_id not in requested]
    lines += [f"not run: {reason}" for reason in dict.fromkeys(left_out.values())]
    if not todo:
        records = request.results.root / "records"
        return [*lines, "Nothing to run." if left_out else
                f"Nothing to run: every run is cached in {records}."]
    seconds, to_do = eta(todo, expected), f"{counted(len(todo), 'run')} to do"
    if isinstance(request.runner, RayRunner):  # the dry run replaces it with the cluster's ETA
        return [*lines, f"{to_do}; on Ray the ETA comes with the first finished run, from the "
                        "runs the cluster holds at once"]
    if seconds is None:
        return [*lines, f"{to_do}; ETA not known (no earlier run, no cost baseline)"]
    return [*lines, f"{to_do}; ETA about {duration(seconds)}, run after run"
                    f"{_guessed(todo, expected)}"]


def _guessed(todo: list[RunSpec], expected: dict[str, float | None]) -> str:
    """Which runs the ETA counts at the known mean: those whose time is not known."""
    unknown = [spec.suite for spec in todo if expected[spec.run_id] is None]
    if not unknown:
        return ""
    suites = ", ".join(sorted(set(unknown)))
    return f"; {len(unknown)} of them ({suites}) counted at the others' mean"


def _device(specs: list[RunSpec], request: Request) -> str:
    """Where runs would execute: this machine's GPU or CPU and threads, or Ray and a run's share."""
    cpus, gpus = max(s.resources.cpus for s in specs), max(s.resources.gpus for s in specs)
    if isinstance(request.runner, RayRunner):
        cluster = request.cluster or "an embedded instance on this machine"
        return f"Ray ({cluster}), {cpus} CPU(s) and {gpus:g} GPU(s) a run"
    device = devices.resolve(request.device, reads_data=bool(datasets_read(specs)))
    return devices.describe(device, min(cpus, os.cpu_count() or 1))


def evaluate(suites: list[Suite], runs: pd.DataFrame, metrics: pd.DataFrame,
             results: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The claims and published numbers of ``suites``, written to claims.csv and fidelity.csv
    beside other suites' rows: theirs only."""
    from dlrepro import claims, fidelity

    verdicts, numbers = fidelity.evaluated(suites, runs, metrics, results.profile)
    names = [suite.name for suite in suites]
    claimed = claims.write(results.claims, verdicts)
    published = fidelity.write(results.fidelity, numbers)
    return rows_of(claimed, names), rows_of(published, names)


def claims(names: list[str], results: Path, profile: str, say: Say,
           overrides: list[Override] = (), only: list[Override] = ()) -> Claims:
    """The claims of the named suites (none: the folder's), evaluated afresh; nothing written."""
    from dlrepro import claims as verdicts
    from dlrepro import fidelity, tables

    folder = folder_with_results(results, profile, overrides, only, names)
    runs, metrics = tables.load(folder)
    suites = covered(names, folder, set(runs["suite"]), overrides, only, say)
    found, _ = fidelity.evaluated(suites, runs, metrics, profile)
    return Claims(verdicts.table(found), unrun(suites, runs))


def report(names: list[str], results: Path, profile: str, say: Say,
           overrides: list[Override] = (), only: list[Override] = ()) -> list[Path]:
    """``report.md`` and ``report.html`` of the named suites (none: the folder's)."""
    from dlrepro import fidelity, tables
    from dlrepro import report as pages
    from dlrepro.tables import FIDELITY_FILE

    folder = folder_with_results(results, profile, overrides, only, names)
    # the published numbers as the full profile measured them, beside a cheaper profile's
    full = None if profile == "full" else fidelity.read(baselines_dir() / "full" / FIDELITY_FILE)
    with folder.lock(say):
        runs, metrics = tables.load(folder)
        suites = covered(names, folder, set(runs["suite"]), overrides, only, say)
        remember(folder, suites)
        mine = [suite.name for suite in suites]
        runs, metrics = rows_of(runs, mine), rows_of(metrics, mine)
        return pages.build(folder, suites, *evaluate(suites, runs, metrics, folder), runs, metrics,
                           full)
