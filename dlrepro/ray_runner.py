"""The Ray runner: run groups execute on pools of long-lived Ray actors, on one node or many.

An actor is a worker process that imports torch, starts codecarbon and pays torch's warm-up
once, then executes run groups one after another with the same ``execute`` the local runner
calls — so tiny runs do not each pay a process start. Actors are sized by the suite's
``resources`` (CPUs, fractional GPUs); the pools of a wave's shapes run at the same time, each
actor given the next group of its shape as soon as it is free. The driver writes every record as
it comes back and retries, a bounded number of times, a group whose worker or node died. A run
that raises is recorded as failed by ``execute`` and not retried.

Nodes share no disk with the driver: a run's files come back inside its record, a producer's
files go to the object store once (``ray.put``) for every run that reads them, the data is found
and checked on the worker's own node, and codecarbon's log is written there and shipped back when
the actor closes.

With no address, an embedded Ray instance is started on this machine (no dashboard, token
authentication, its own temp dir) and shut down afterwards.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import signal
import tarfile
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import ray
from ray import exceptions as rex
from rich.markup import escape

from dlrepro import execute as ex
from dlrepro.console import RunProgress
from dlrepro.devices import DeviceChoice
from dlrepro.data import ENV_VAR
from dlrepro.energy import EnergyMeter
from dlrepro.layout import Results
from dlrepro.errors import Refused
from dlrepro.planning import (ClusterPlan, ShapeLoad, cluster_eta,
                              datasets_read, group_label, groups, unmet, waves)
from dlrepro.schema import Resources
from dlrepro.suite import RunSpec

# A worker process that vanished (kill -9, out of memory, a lost node): the run is fine to retry.
WORKER_DEATHS = (rex.RayActorError, rex.WorkerCrashedError, rex.OutOfMemoryError,
                 rex.NodeDiedError)


@ray.remote
class Worker:
    """One worker process: warmed up once, then runs groups of specs."""

    def __init__(self, country: str, data_dir: str | None, drivers_env: str | None):
        ex.warm_up()
        self.node = ray.get_runtime_context().get_node_id()
        gpus = ",".join(map(str, ray.get_gpu_ids()))
        on_gpus = f" GPU {gpus}" if gpus else ""
        # A worker Ray gave no GPU stays off the node's GPUs, whatever torch can see there.
        self.device = DeviceChoice.AUTO if gpus else DeviceChoice.CPU
        ex.WORKER_NAME = f"ray {ray.util.get_node_ip_address()} pid {os.getpid()}{on_gpus}"
        # The data directory the driver chose, unless this node was given its own: a
        # $DLREPRO_DATA_DIR other than the driver's (the same one: a worker of the driver's
        # machine, which inherits its environment). A folder of its own for codecarbon's log.
        own = os.environ.get(ENV_VAR)
        chosen = own if own and own != drivers_env else data_dir
        self.data_dir = Path(chosen) if chosen else None
        self.checked: set[str] = set()
        self.energy_dir = Path(tempfile.mkdtemp(prefix="dlrepro-energy-"))
        self.meter = EnergyMeter(self.energy_dir, country).__enter__()
        self.energy_where = f"; on Ray node {self.node}, in worker process {os.getpid()}"

    def run(self, specs: list[RunSpec], producers: list[str], *archives: bytes) -> list[dict]:
        """Execute one group; ``archives`` holds the files of the ``producers`` it reads (tar
        archives, by run_id, in that order); each record carries the files its run wrote,
        likewise, and the node it ran on."""
        from dlrepro.data import verify

        try:  # once per data set and actor: the data read is this node's, checked here
            needed = datasets_read(specs) - self.checked
            verify(needed, self.data_dir)
            self.checked |= needed
        except Refused as err:
            return self._on_this_node(ex.failed_records(specs, f"on Ray node {self.node}: {err}"))
        scratch = Path(tempfile.mkdtemp(prefix="dlrepro-artifacts-"))
        try:
            for producer, archive in zip(producers, archives):
                _unpack(archive, scratch / "inputs" / producer)
            records = ex.execute(specs, meter=self.meter,
                                 artifact_dir=lambda s: scratch / s.run_id,
                                 input_dir=lambda s: scratch / "inputs" / s.run_id,
                                 data_dir=self.data_dir, device=self.device)
            for record in records:
                record["artifacts"] = _pack(scratch / record["run_id"])
                record["energy_method"] += self.energy_where
            return self._on_this_node(records)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _on_this_node(self, records: list[dict]) -> list[dict]:
        for record in records:
            record["node"] = self.node
        return records

    def close(self) -> tuple[str, bytes | None]:
        """Stop codecarbon; its log, and under which name the driver keeps it."""
        self.meter.__exit__(None, None, None)
        log = _pack(self.energy_dir)
        shutil.rmtree(self.energy_dir, ignore_errors=True)
        return f"ray-{self.node[:12]}-{os.getpid()}", log


def run_ray(specs: list[RunSpec], results: Results, *, address: str | None, num_cpus: int | None,
            max_retries: int, energy_country: str, data_dir: Path | None,
            on_record: Callable[[dict], None], progress: RunProgress) -> None:
    """Run every spec on Ray, wave after wave (a run after the runs it needs); ``on_record`` gets
    each finished record after it is stored."""
    def keep(group: list[RunSpec], records: list[dict]) -> None:
        for spec, record in zip(group, records):
            _unpack(record.pop("artifacts", None), results.artifact_dir(spec))
            results.put(record)  # after its files: a stored record always has them
            on_record(record)
            progress.finished(spec.label, record)

    with _connected(address, num_cpus) as where:
        progress.note(where)
        # Every shape is fitted to the cluster and sized before anything runs: one it cannot run
        # fails at once.
        sized = sized_shapes(specs, live_nodes(), progress.note)
        shipped = _Shipped(results)
        for wave in waves(specs):
            runnable: dict[Resources, list[list[RunSpec]]] = {}
            for group in groups(wave):
                blocked = unmet(group[0], results)
                if blocked:
                    keep(group, ex.failed_records(group, blocked))
                else:
                    runnable.setdefault(group[0].resources, []).append(group)
            # The scarcest shapes' actors first, so that they get the GPU nodes' CPUs.
            order = sorted(runnable, key=lambda shape: (-shape.gpus, -shape.cpus))
            pools = [_Pool(*sized[shape], runnable[shape], energy_country, data_dir,
                           results.energy) for shape in order]
            try:
                for group, records in _run_wave(pools, shipped, max_retries, progress):
                    keep(group, records)
            finally:
                for pool in pools:
                    pool.close()


def plan_on_cluster(specs: list[RunSpec], expected: dict[str, float | None], *,
                    address: str | None, num_cpus: int | None, cost_file: Path,
                    has_cost: bool) -> ClusterPlan:
    """What the specs would take on the cluster at ``address`` (connected to, nothing run), or
    on an embedded instance of this machine's CPUs (not started)."""
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        with _connected(address, None):
            nodes = live_nodes()
    else:
        nodes = [{"CPU": num_cpus or os.cpu_count() or 1}]
    total = {kind: sum(n.get(kind, 0) for n in nodes) for kind in ("CPU", "GPU")}
    where = (f"the Ray cluster at {address}" if address else "an embedded Ray instance")
    where += (f": {len(nodes)} node(s), {total['CPU']:g} CPU(s), {total['GPU']:g} GPU(s)")
    notes: list[str] = []
    try:
        sized = sized_shapes(specs, nodes, notes.append)
    except Refused as err:
        return ClusterPlan(where, [], None, cost_file, has_cost, notes, str(err))
    count = {shape: sum(s.resources == shape for s in specs) for shape in sized}
    shapes = [ShapeLoad(given.cpus, given.gpus, count[shape], size)
              for shape, (given, size) in sized.items()]
    eta = cluster_eta(specs, expected, {shape: size for shape, (_, size) in sized.items()})
    return ClusterPlan(where, shapes, eta, cost_file, has_cost, notes)


def live_nodes() -> list[dict]:
    """The resources of each live node of the connected cluster."""
    return [node["Resources"] for node in ray.nodes() if node["Alive"]]


def sized_shapes(specs: list[RunSpec], nodes: list[dict],
                 note: Callable[[str], None]) -> dict[Resources, tuple[Resources, int]]:
    """Each resource shape the specs ask for: what the cluster gives of it, and how many of its
    actors fit at once. Refused: a shape no node can hold."""
    shapes: dict[Resources, list[list[RunSpec]]] = {}
    for group in groups(specs):
        shapes.setdefault(group[0].resources, []).append(group)
    cluster = {kind: sum(n.get(kind, 0) for n in nodes) for kind in ("CPU", "GPU")}
    sized = {}
    for shape, members in shapes.items():
        fitted = _fit(shape, members, cluster, note)
        sized[shape] = fitted, pool_size(fitted, _suite_names(members), len(members), nodes)
    return sized


def _fit(shape: Resources, groups: list[list[RunSpec]], cluster: dict, note) -> Resources:
    """What the cluster can honour of a shape, said once: GPU runs on a cluster without any GPU go
    on the CPU; a run asking for more CPUs than the cluster has gets them all."""
    suites = _suite_names(groups)
    if shape.gpus > 0 and not cluster.get("GPU", 0):
        note(f"warning: {suites} ask(s) for a GPU and the Ray cluster has none: "
             "the runs go on the CPU")
        shape = shape.model_copy(update={"gpus": 0})
    cpus = math.floor(cluster.get("CPU", 0))
    if shape.cpus > cpus >= 1:
        note(f"warning: {suites} ask(s) for {shape.cpus} CPUs and the Ray cluster has {cpus}: "
             f"each run uses {cpus}")
        shape = shape.model_copy(update={"cpus": cpus})
    return shape


def pool_size(shape: Resources, suites: str, groups: int, nodes: list[dict]) -> int:
    """How many actors of this shape fit at once, node by node; none is an error now, not a wait
    forever. Runs without a GPU count only the nodes without one where those can hold them: the
    GPU nodes' CPUs are left to the runs that need their GPUs."""
    def fits(on: list[dict]) -> int:
        count = 0
        for node in on:
            by_cpu = math.floor(node.get("CPU", 0) / shape.cpus + 1e-9)
            by_gpu = math.floor(node.get("GPU", 0) / shape.gpus + 1e-9) if shape.gpus else by_cpu
            count += min(by_cpu, by_gpu)
        return count

    found = fits([n for n in nodes if not n.get("GPU")]) if shape.gpus == 0 else 0
    found = found or fits(nodes)
    if found:
        return min(groups, found)
    total = {kind: sum(n.get(kind, 0) for n in nodes) for kind in ("CPU", "GPU")}
    if total["GPU"] < shape.gpus:
        raise Refused(
            f"{suites}: each run asks for {shape.gpus:g} GPU(s) and the Ray cluster has "
            f"{total['GPU']:g}; add GPU workers or ask for less")
    raise Refused(
        f"{suites}: each run asks for {shape.cpus} CPU(s) and {shape.gpus:g} GPU(s), and no node "
        f"of the Ray cluster has that much ({total['CPU']:g} CPU(s), {total['GPU']:g} GPU(s) "
        "in all)")


def _suite_names(groups: list[list[RunSpec]]) -> str:
    """The suites of the groups, as a message names them."""
    return ", ".join(sorted({g[0].suite for g in groups}))


class _Shipped:
    """Each producer's files, put in the object store once for every run that reads them; put
    again from the driver's copy when Ray lost them."""

    def __init__(self, results: Results):
        self.results = results
        self.refs: dict[str, ray.ObjectRef] = {}

    def inputs(self, group: list[RunSpec]) -> tuple[list[str], list[ray.ObjectRef]]:
        producers = {p.run_id: p for p in group[0].needs.values()}
        for run_id, producer in producers.items():
            if run_id not in self.refs:
                self.refs[run_id] = ray.put(_pack(self.results.artifact_dir(producer)))
        return list(producers), [self.refs[run_id] for run_id in producers]

    def lost(self, group: list[RunSpec]) -> None:
        for producer in group[0].needs.values():
            self.refs.pop(producer.run_id, None)


class _Pool:
    """Actors of one resource shape and the groups they are to run."""

    def __init__(self, shape: Resources, size: int, groups: list[list[RunSpec]], country: str,
                 data_dir: Path | None, energy_dir: Path):
        options = {"num_cpus": shape.cpus, "num_gpus": shape.gpus, "max_restarts": 0}
        self.make = lambda: Worker.options(**options).remote(
            country, str(data_dir) if data_dir else None, os.environ.get(ENV_VAR))
        self.queue = deque((group, 0) for group in groups)
        self.idle = [self.make() for _ in range(min(size, len(groups)))]
        self.used: set = set()  # actors that ran a group: they have an energy log
        self.energy_dir = energy_dir

    def release_idle(self) -> None:
        """With nothing left to give them, idle actors go at once: their CPUs and GPUs can take
        another shape's actors, which Ray holds until there is room."""
        if not self.queue:
            self.close()

    def close(self) -> None:
        """Stop the idle actors; codecarbon's logs come back into the energy folder."""
        closing = [actor.close.remote() for actor in self.idle if actor in self.used]
        # All at once, so one slow actor costs one wait; one on a lost node only loses its log.
        ready, _ = ray.wait(closing, num_returns=len(closing), timeout=30) if closing else ([], [])
        for ref in ready:
            try:
                name, log = ray.get(ref)
            except rex.RayError:
                continue
            _unpack(log, self.energy_dir / name)
        for actor in self.idle:
            ray.kill(actor, no_restart=True)
        self.idle = []


def _run_wave(pools: list[_Pool], shipped: _Shipped, max_retries: int,
              progress: RunProgress) -> Iterator[tuple[list[RunSpec], list[dict]]]:
    """Every pool's groups, all pools at once; each group's records as they come back."""
    busy: dict[ray.ObjectRef, tuple[_Pool, object, list[RunSpec], int]] = {}
    while busy or any(pool.queue for pool in pools):
        for pool in pools:
            while pool.idle and pool.queue:
                actor, (group, attempt) = pool.idle.pop(), pool.queue.popleft()
                pool.used.add(actor)
                producers, archives = shipped.inputs(group)
                busy[actor.run.remote(group, producers, *archives)] = (pool, actor, group,
                                                                       attempt)
                progress.running(group_label(group))
            pool.release_idle()
        [ref], _ = ray.wait(list(busy), num_returns=1)
        pool, actor, group, attempt = busy.pop(ref)
        try:
            records = ray.get(ref)
        except (*WORKER_DEATHS, rex.ObjectLostError) as err:
            if isinstance(err, rex.ObjectLostError):  # the files of a run it reads: put again
                shipped.lost(group)
                pool.idle.append(actor)
                what = "the files of a run it needs were lost"
            else:
                ray.kill(actor, no_restart=True)
                pool.idle.append(pool.make())
                what = "its worker died"
            reason = f"{type(err).__name__}: {_first_line(err)}"
            if attempt < max_retries:
                progress.note(escape(f"{what} running {group_label(group)} ({reason}); "
                                     f"retry {attempt + 1}/{max_retries}"))
                pool.queue.appendleft((group, attempt + 1))
                continue
            records = ex.failed_records(
                group, f"{what} {attempt + 1} times; last: {reason}")
        except rex.RayTaskError as err:
            # Not the run (execute records those) but dlrepro itself: do not retry.
            pool.idle.append(actor)
            records = ex.failed_records(group, str(err))
        else:
            pool.idle.append(actor)
        yield group, records


@contextmanager
def _connected(address: str | None, num_cpus: int | None) -> Iterator[str]:
    """Connect to ``address`` (or $RAY_ADDRESS), else start an embedded instance; leave as found."""
    address = address or os.environ.get("RAY_ADDRESS")
    # ray.init makes SIGTERM a bare sys.exit; the command's own handler, put back, stops the
    # sweep as Ctrl-C does (`ray job stop` sends SIGTERM, and SIGKILL 3 s later).
    on_sigterm = signal.getsignal(signal.SIGTERM)
    if address:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, rex.AuthenticationError) as err:
            raise Refused(f"cannot connect to the Ray cluster at {address}: "
                                  f"{_first_line(err)} ({_token_hint()})") from None
        where = f"Ray cluster at {address}"
        temp_dir = None
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        temp_dir = tempfile.mkdtemp(prefix="dlrepro-ray-")
        cpus = num_cpus or os.cpu_count() or 1
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, _temp_dir=temp_dir,
                 log_to_driver=False, configure_logging=False)
        where = f"embedded Ray instance, {cpus} CPU(s), on this machine"
    if on_sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)  # None: not set from Python
    try:
        yield where
    finally:
        ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _token_hint() -> str:
    """What to check when a cluster refused the connection: most often, the token."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return "if the cluster uses token authentication: RAY_AUTH_MODE=token here too"
    return "is this shell's token ($RAY_AUTH_TOKEN, else ~/.ray/auth_token) the cluster's?"


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


def _pack(folder: Path) -> bytes | None:
    if not folder.is_dir():
        return None
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def _unpack(archive: bytes | None, folder: Path) -> None:
    if archive is None:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
