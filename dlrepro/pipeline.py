"""The one flow: suite files → run specs → runner → per-run records → tables → claims →
report.

``prepare`` checks everything a command was given — suites, runner, flags, the results folder —
and raises before any work; ``run`` then checks the experiments' code and the data the runs to do
will read, takes the results folder's lock, runs, merges the tables and evaluates the claims.
``report``, ``check`` and ``update_baselines`` work from the tables. The command line, the nox
sessions and the tests call these; none of them prints.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dlrepro import devices
from dlrepro.data import data_dir, folder_problem, verify
from dlrepro.devices import DeviceChoice
from dlrepro.errors import Refused
from dlrepro.grid import RunSpec
from dlrepro.layout import Results
from dlrepro.overrides import Override
from dlrepro.planning import Plan, SuitePlan, datasets_read, expected_times, plan
from dlrepro.project import (baselines_dir, covered, folder_with_results, given, remember,
                             resolve, with_needed)
from dlrepro.runners import load_runner
from dlrepro.schema import LocalRunner, RayRunner
from dlrepro.suite import Suite, check_selected

if TYPE_CHECKING:
    import pandas as pd

Say = Callable[[str], None]


class Interrupted(KeyboardInterrupt):
    """A signal that stops the command the way Ctrl-C does (SIGTERM: a CI cancel,
    ``ray job stop``)."""

    # The latest signal, also kept here: a Ray wait re-raises it as a bare KeyboardInterrupt.
    latest: int | None = None

    def __init__(self, signal_number: int):
        super().__init__(signal_number)
        Interrupted.latest = signal_number


@dataclass
class Request:
    """What ``dlrepro run`` was asked, checked."""

    suites: list[Suite]
    profile: str
    runner: LocalRunner | RayRunner
    results: Results
    data_dir: Path | None = None
    address: str | None = None
    device: DeviceChoice = DeviceChoice.AUTO

    @property
    def specs(self) -> list[RunSpec]:
        return [spec for suite in self.suites for spec in suite.runs(self.profile)]

    @property
    def cluster(self) -> str | None:
        """The Ray cluster asked for: ``--address``, else runners/<name>.toml's; None: the Ray
        runner reads $RAY_ADDRESS, else starts an embedded instance."""
        return self.address or getattr(self.runner, "address", None)


@dataclass
class Claims:
    """The claims of the suites a command covers, evaluated."""

    table: pd.DataFrame  # a row per claim (claims.COLUMNS)
    unrun: list[str]  # the suites with no results in the folder: every claim of theirs is not run


@dataclass
class Outcome:
    request: Request
    todo: list[RunSpec]
    claims: Claims
    failed: list[dict] = field(default_factory=list)
    interrupted: int | None = None  # the signal that stopped it, if one did

    @property
    def done(self) -> int:
        return sum(self.request.results.done(s) for s in self.request.specs)


def prepare(names: list[str], profile: str, runner: str = "local", *,
            results: Path = Path("results"), data: str | Path | None = None,
            address: str | None = None, overrides: list[Override] = (),
            only: list[Override] = (), device: DeviceChoice = DeviceChoice.AUTO,
            say: Say = lambda line: None) -> Request:
    """Every input of ``dlrepro run`` checked, nothing written: Refused, Refused,
    Refused or Refused. With ``overrides`` (``--set``) or ``only`` (``--only``) the runs
    land in their own folder, ``<results>/<profile>+<overrides>``. A data directory that is not
    one is a Refused when a selected run reads data, else a warning."""
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
    if isinstance(config, RayRunner):
        _check_ray_use(address, config.address, results)
    folder.ensure_writable()
    return Request(suites, profile, config, folder, data_dir(data), address, device)


# Set by Ray for the driver of a job (`ray job submit`), whose working directory is temporary.
IN_A_RAY_JOB = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def _check_ray_use(given: str | None, configured: str | None, results: Path) -> None:
    """Refuse what would send the Ray runner astray: the job server's address for the cluster's,
    results written into a job's temporary copy of the checkout."""
    sources = [("--address", given), ("address in runners/ray.toml", configured)]
    source, address = next(((s, a) for s, a in sources if a and a != "auto"),
                           ("$RAY_ADDRESS", os.environ.get("RAY_ADDRESS")))  # as ray.init reads
    if address and address.startswith(("http://", "https://")):
        raise Refused(f"{source} {address}: the runner takes the cluster's HOST:PORT, without "
                      "a scheme (the head's port 6379); an http:// address is the job "
                      "server's, for ray job submit")
    if address and address != "auto" and "://" not in address:  # auto, ray://: Ray's to read
        _answering(source, address)
    if IN_A_RAY_JOB in os.environ and not results.is_absolute():
        raise Refused(f"--results {results}: in a Ray job this is inside the job's temporary "
                      "working directory, removed when the job ends; give an absolute path on "
                      "the head")


def _answering(source: str, address: str) -> None:
    """Refuse a HOST:PORT where no Ray cluster listens: nothing, or a web server (the dashboard's
    port); ray.init would retry either for minutes. The cluster's GCS speaks HTTP/2 (gRPC), so
    an HTTP/1 request gets no HTTP/1 answer there."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise Refused(f"{source} {address}: not HOST:PORT (the head's port is 6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as peer:  # [::1]
            peer.sendall(b"GET / HTTP/1.0\r\n\r\n")
            peer.settimeout(3)
            web = peer.recv(5) == b"HTTP/"
    except TimeoutError:
        web = False  # it did not answer in HTTP/1
    except OSError as err:
        raise Refused(f"{source} {address}: no Ray cluster answers there "
                      f"({err.strerror or err})") from None
    if web:
        raise Refused(f"{source} {address}: a web server answers there (the dashboard and job "
                      "server's port, 8265 by default); the runner takes the cluster's GCS "
                      "port, the head's 6379")


def run(request: Request, say: Say) -> Outcome:
    """Run what is not cached, keep every finished record whatever happens, merge, evaluate."""
    from dlrepro import runners, tables

    results, specs, involved = request.results, request.specs, with_needed(request.suites)
    todo = plan(specs, results)
    _check_implementations(involved, todo)
    _check_data(todo, request.data_dir)
    typical = _typical_run_times(results, say) if todo else {}  # read only for an ETA
    _warn_resources(todo, request.runner, say)
    failed: list[dict] = []
    interrupted = None
    with results.lock(say):
        remember(results, request.suites)  # so that `dlrepro report` finds them
        todo = plan(specs, results)  # another dlrepro may have run some while this one waited
        foreseen = _plan_of(request, todo, typical)
        for line in foreseen.lines():
            say(line)
        Interrupted.latest = None
        refused = False
        try:
            if todo:
                runners.run(todo, results, request.runner, expected=foreseen.expected,
                            data_dir=request.data_dir, address=request.cluster,
                            device=request.device, on_record=lambda r: _keep_failed(r, failed))
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
    return Outcome(request, todo, Claims(claims, unrun(request.suites, runs)), failed,
                   interrupted)


def unrun(suites: list[Suite], runs: pd.DataFrame) -> list[str]:
    """The suites without a single run (ok or failed) in the tables."""
    return [suite.name for suite in suites if suite.name not in set(runs["suite"])]


def rows_of(table: pd.DataFrame, suites: list[str]) -> pd.DataFrame:
    return table[table["suite"].isin(suites)].reset_index(drop=True)


def _typical_run_times(results: Results, say: Say) -> dict[str, float]:
    """Each suite's mean run on the machine the profile's committed cost.csv was measured on. Only
    an estimate reads it, and an estimate never refuses a run: broken, the ETA goes without (the
    gate, ``check``, refuses it)."""
    from dlrepro.regression import Baselines

    try:
        return Baselines(baselines_dir(), results.profile).mean_run_times()
    except Refused as err:
        say(f"warning: the ETA goes without typical run times: {err}")
        return {}


def _keep_failed(record: dict, failed: list[dict]) -> None:
    if record["status"] == "failed":
        failed.append(record)


def _check_implementations(suites: list[Suite], todo: list[RunSpec]) -> None:
    """The code of every suite with runs to do, checked against the contract before any starts; a
    cached suite's code is not even imported (torch costs seconds)."""
    pending = {s.suite for s in todo}
    for suite in {s.name: s for s in suites if s.name in pending}.values():
        try:
            # imported and checked against the contract
            suite.experiment.implementation  # noqa: B018
        except Refused as err:
            raise Refused(suite.path, "experiment", f"experiment {suite.model.experiment!r} is "
                          f"broken: {err}") from None


def _check_data(todo: list[RunSpec], root: Path | None) -> None:
    needed = datasets_read(todo)
    if needed:
        verify(needed, root)


def _warn_resources(todo: list[RunSpec], runner: LocalRunner | RayRunner, say: Say) -> None:
    """What this machine cannot honour, said once per suite, and what happens instead."""
    if not isinstance(runner, LocalRunner):
        return  # a cluster's resources are the cluster's: the Ray runner fits runs to them
    cores = os.cpu_count() or 1
    gpu_suites = sorted({s.suite for s in todo if s.resources.gpus > 0})
    if gpu_suites:
        import torch

        if not torch.cuda.is_available():
            say(f"warning: {', '.join(gpu_suites)} ask(s) for a GPU and none is visible: the runs "
                "go on the CPU")
    for suite in sorted({s.suite for s in todo if s.resources.cpus > cores}):
        cpus = max(s.resources.cpus for s in todo if s.suite == suite)
        say(f"warning: {suite} asks for {cpus} CPUs and this machine has {cores}: its runs use "
            f"{cores} thread(s)")


def dry_run(request: Request, say: Say) -> Plan:
    """What ``run`` would do, from the records alone: nothing is written, no lock taken, neither
    the experiments' code nor the data is checked (that needs torch, or a download)."""
    todo = plan(request.specs, request.results)
    typical = _typical_run_times(request.results, say) if todo else {}
    foreseen = _plan_of(request, todo, typical)
    if todo and isinstance(request.runner, RayRunner):
        from dlrepro.ray_runner import plan_on_cluster
        from dlrepro.regression import COST_FILE

        cost_file = baselines_dir() / request.results.profile / COST_FILE  # typical's source
        if cost_file.is_relative_to(Path.cwd()):
            cost_file = cost_file.relative_to(Path.cwd())
        foreseen.cluster = plan_on_cluster(
            todo, foreseen.expected, address=request.cluster, num_cpus=request.runner.num_cpus,
            source=f"the committed {cost_file}" if typical else f"no committed {cost_file}")
    return foreseen


def _plan_of(request: Request, todo: list[RunSpec], typical: dict[str, float]) -> Plan:
    todo_ids = {s.run_id for s in todo}
    suites = []
    for suite in request.suites:
        mine = suite.runs(request.profile)
        pending = [s for s in mine if s.run_id in todo_ids]
        device = _device(pending, request) if pending else ""
        suites.append(SuitePlan(suite.name, len(mine), len(mine) - len(pending), device))
    requested = {s.run_id for s in request.specs}
    first = [spec.label for spec in todo if spec.run_id not in requested]
    expected = expected_times(todo, request.results, typical)
    unknown = sorted({spec.suite for spec in todo if expected[spec.run_id] is None})
    return Plan(request.profile, request.results.root / "records", suites, first, expected,
                unknown)


def _device(specs: list[RunSpec], request: Request) -> str:
    """Where runs would execute: this machine's GPU or CPU (with their thread count), or Ray, with
    what each run asks for."""
    cpus, gpus = max(s.resources.cpus for s in specs), max(s.resources.gpus for s in specs)
    if isinstance(request.runner, RayRunner):
        cluster = (request.cluster or os.environ.get("RAY_ADDRESS")
                   or "an embedded instance on this machine")
        return f"Ray ({cluster}), {cpus} CPU(s) and {gpus:g} GPU(s) a run"
    device = devices.resolve(request.device, reads_data=bool(datasets_read(specs)))
    return devices.describe(device, min(cpus, os.cpu_count() or 1))


def evaluate(suites: list[Suite], runs: pd.DataFrame, metrics: pd.DataFrame,
             results: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every claim of ``suites`` at the folder's profile, and the fidelity table of their published
    numbers: their rows only, while claims.csv and fidelity.csv keep other suites' rows."""
    from dlrepro import claims, fidelity

    verdicts, numbers = _evaluated(suites, runs, metrics, results.profile)
    names = [suite.name for suite in suites]
    claimed = claims.write(results.claims, verdicts)
    published = fidelity.write(results.fidelity, numbers)
    return rows_of(claimed, names), rows_of(published, names)


def _evaluated(suites: list[Suite], runs: pd.DataFrame, metrics: pd.DataFrame,
               profile: str) -> tuple[list, list[dict]]:
    """The claims of ``suites`` at ``profile``, and the fidelity rows of their published numbers."""
    from dlrepro import claims, fidelity, tables

    verdicts, numbers = [], []
    for suite in suites:
        evaluated = claims.evaluate(suite, tables.joined(runs, metrics, suite.name), profile)
        verdicts += evaluated
        numbers += fidelity.rows(suite, evaluated, profile)
    return verdicts, numbers


def claims(names: list[str], results: Path, profile: str, say: Say,
           overrides: list[Override] = (), only: list[Override] = ()) -> Claims:
    """The claims of the named suites (none: every suite of the folder, ``covered``) against the
    profile's tables (or those of its ``--set`` overrides), evaluated afresh from the suite files.
    It only reports: nothing is written (``run`` and ``report`` keep claims.csv)."""
    from dlrepro import claims as verdicts
    from dlrepro import tables

    folder = folder_with_results(results, profile, overrides, only, names)
    runs, metrics = tables.load(folder)
    suites, found = covered(names, folder, set(runs["suite"]), overrides, only, say), []
    for suite in suites:
        found += verdicts.evaluate(suite, tables.joined(runs, metrics, suite.name), profile)
    return Claims(verdicts.table(found), unrun(suites, runs))


def report(names: list[str], results: Path, profile: str, say: Say,
           overrides: list[Override] = (), only: list[Override] = ()) -> list[Path]:
    """``report.md`` and ``report.html`` of one profile (or of its ``--set`` overrides) on the named
    suites (none: every suite of the folder, ``covered``), their claims evaluated afresh."""
    from dlrepro import report as pages
    from dlrepro import tables

    from dlrepro.regression import Baselines

    folder = folder_with_results(results, profile, overrides, only, names)
    # the published numbers as the full profile measured them, beside a cheaper profile's
    full = None if profile == "full" else Baselines(baselines_dir(), "full").fidelity()
    with folder.lock(say):
        runs, metrics = tables.load(folder)
        suites = covered(names, folder, set(runs["suite"]), overrides, only, say)
        remember(folder, suites)
        mine = [suite.name for suite in suites]
        runs, metrics = rows_of(runs, mine), rows_of(metrics, mine)
        return pages.build(folder, suites, *evaluate(suites, runs, metrics, folder), runs, metrics,
                           full)


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


def check(names: list[str], results: Path, profile: str, baseline_root: Path,
          say: Say) -> CheckOutcome:
    from dlrepro import regression
    from dlrepro.files import atomic_write

    baselines = regression.Baselines(baseline_root, profile)
    baselines.ensure_exists()
    suites = given(names, Results(results, profile), [])
    known = {s.name for s in suites}
    gone = [] if names else [name for name in baselines.suites() if name not in known]
    folder = Results(results, profile)
    verdicts, notes, unbaselined = regression.check(suites, baselines, folder)
    with folder.lock(say):
        atomic_write(folder.check, lambda tmp: verdicts.to_csv(tmp, index=False))
    return CheckOutcome(verdicts, notes, unbaselined, gone, folder.check)


def update_baselines(names: list[str], results: Path, profile: str, baseline_root: Path,
                     show: Callable[[str, pd.DataFrame | None], None],
                     overrides: list[Override] = (),
                     only: list[Override] = ()) -> list[tuple[Path, int]]:
    """Refresh the named suites' baselines (default: every suite with results); ``show`` gets each
    suite's changes from its old baseline (None: a new one). Returns the files written.

    From the folder of ``--set seeds=...`` and ``--only`` a baseline covers part of the profile
    (fewer seeds, some configurations), named as the profile's own runs are; a parameter set
    otherwise would not be the profile's settings, and is refused. The configurations measured
    replace their old rows, the profile's others keep theirs (``regression.updated``)."""
    from dlrepro import regression, tables

    changed = sorted({key for key, _ in overrides} - {"seeds"})
    if changed:
        raise Refused(f"--set {changed[0]}: a baseline is of its profile's settings; only "
                      "--set seeds=[...] and --only select part of them")
    baselines = regression.Baselines(baseline_root, profile)
    folder = Results(results, profile, overrides, only)
    runs, metrics = tables.load(folder)
    suites = [s for s in given(names, folder, overrides, only)
              if names or (runs["suite"] == s.name).any()]
    if not suites:
        raise Refused(f"{folder.root}: no results: run `dlrepro run --profile {profile}` first")
    written = []
    for suite in suites:
        # named by what the profile varies, so that the profile's own runs meet these rows
        profile_suite = resolve([str(suite.path)])[0]
        summary = regression.summarise(runs, metrics, profile_suite, profile)
        if summary.empty:
            raise Refused(f"{folder.root}: no successful runs of {suite.name}: nothing to "
                          "baseline")
        old = baselines.read(suite.name)
        if old is not None:
            summary = regression.updated(old, summary, profile_suite, profile)
        show(suite.name, None if old is None else regression.compare(old, summary, suite.metrics))
        path = baselines.write(suite.name, summary, regression.cost(runs, suite.name))
        written.append((path, len(summary)))
    written += baselines.write_verdicts(*_evaluated(suites, runs, metrics, profile))
    return written


@dataclass
class Generalisation:
    table: pd.DataFrame  # generalisation.COLUMNS
    folder: Results  # the other set's runs, claims, report and the comparison
    outcomes: list[Outcome]


def generalise(profile: str, runner: str, say: Say, *, dataset: str = "fashion_mnist",
               results: Path = Path("results"), data: str | Path | None = None,
               address: str | None = None,
               device: DeviceChoice = DeviceChoice.AUTO) -> Generalisation:
    """The suites that read a dataset, run on MNIST (the profile's own runs, cached) and again with
    ``--set dataset=DATASET``; each claim's verdicts side by side in ``generalisation.csv`` beside
    the other set's results. Every input is checked for both before anything runs."""
    import pandas as pd

    from dlrepro import generalisation

    names = [s.name for s in resolve([]) if "dataset" in s.experiment.params.model_fields]
    requests = [prepare(names, profile, runner, results=results, data=data, address=address,
                        overrides=overrides, device=device, say=say)
                for overrides in ([], [("dataset", dataset)])]
    outcomes = []
    for request in requests:
        on = dataset if request.results.overrides else "MNIST"
        say(f"{on}: {', '.join(names)} at profile {profile}")
        outcomes.append(run(request, say))
        if outcomes[-1].interrupted:
            break
    mine = [o.claims.table[o.claims.table["suite"].isin(names)] for o in outcomes]
    if len(mine) == 2:
        table = generalisation.compare(*mine)
    else:
        table = pd.DataFrame(columns=generalisation.COLUMNS)
    folder = requests[1].results
    if len(mine) == 2:
        with folder.lock(say):
            generalisation.write(folder.generalisation, table)
    return Generalisation(table, folder, outcomes)
