"""The Ray runner: run groups execute on a pool of long-lived Ray actors.

An actor is a worker process that imports torch, starts codecarbon and pays torch's warm-up
once, then executes run groups one after another with the same ``execute`` the local runner
calls — so tiny runs do not each pay a process start. Actors are sized by the suite's
``resources`` (CPUs, fractional GPUs); the driver keeps each one busy, writes every record as it
comes back (with the files the run made, shipped back so that a cluster needs no shared disk)
and retries, a bounded number of times, a group whose worker died. A run that raises is
recorded as failed by ``execute`` and not retried.

With no address, an embedded Ray instance is started on this machine (no dashboard, token
authentication, its own temp dir) and shut down afterwards.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tarfile
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import ray
from ray import exceptions as rex

from dlrepro import execute as ex
from dlrepro.console import RunProgress
from dlrepro.energy import EnergyMeter
from dlrepro.layout import Results
from dlrepro.planning import SchedulingError, group_label, groups, unmet, waves
from dlrepro.schema import Resources
from dlrepro.suite import RunSpec

# A worker process that vanished (kill -9, out of memory, a lost node): the run is fine to retry.
WORKER_DEATHS = (rex.RayActorError, rex.WorkerCrashedError, rex.OutOfMemoryError,
                 rex.NodeDiedError)


@ray.remote
class Worker:
    """One worker process: warmed up once, then runs groups of specs."""

    def __init__(self, energy_dir: str, country: str, data_dir: str | None):
        ex.warm_up()
        gpus = ",".join(map(str, ray.get_gpu_ids()))
        on_gpus = f" GPU {gpus}" if gpus else ""
        ex.WORKER_NAME = f"ray {ray.util.get_node_ip_address()} pid {os.getpid()}{on_gpus}"
        self.meter = EnergyMeter(Path(energy_dir), country).__enter__()
        self.data_dir = Path(data_dir) if data_dir else None

    def run(self, specs: list[RunSpec], inputs: dict[str, bytes]) -> list[dict]:
        """Execute one group; ``inputs`` holds, by run_id, the files of the runs it needs (tar
        archives); each record carries the files its run wrote, likewise."""
        scratch = Path(tempfile.mkdtemp(prefix="dlrepro-artifacts-"))
        try:
            for producer, archive in inputs.items():
                _unpack(archive, scratch / "inputs" / producer)
            records = ex.execute(specs, meter=self.meter,
                                 artifact_dir=lambda s: scratch / s.run_id,
                                 input_dir=lambda s: scratch / "inputs" / s.run_id,
                                 data_dir=self.data_dir)
            for record in records:
                record["artifacts"] = _pack(scratch / record["run_id"])
            return records
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def close(self) -> None:
        self.meter.__exit__(None, None, None)


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
        shapes: dict[Resources, list[list[RunSpec]]] = {}
        for group in groups(specs):
            shapes.setdefault(group[0].resources, []).append(group)
        # Every shape is fitted to the cluster and sized before anything runs: one it cannot run
        # fails at once.
        cluster = ray.cluster_resources()
        fitted = {shape: _fit(shape, members, cluster, progress.note)
                  for shape, members in shapes.items()}
        sizes = {shape: _pool_size(fitted[shape], members, cluster)
                 for shape, members in shapes.items()}
        for wave in waves(specs):
            runnable: dict[Resources, list[list[RunSpec]]] = {}
            for group in groups(wave):
                blocked = unmet(group[0], results)
                if blocked:
                    keep(group, ex.failed_records(group, blocked))
                else:
                    runnable.setdefault(group[0].resources, []).append(group)
            for shape, members in runnable.items():
                pool = _Pool(fitted[shape], min(sizes[shape], len(members)), results.energy,
                             energy_country, data_dir)
                try:
                    for group, records in pool.run(members, results, max_retries, progress):
                        keep(group, records)
                finally:
                    pool.close()


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


def _pool_size(shape: Resources, groups: list[list[RunSpec]], cluster: dict) -> int:
    """How many actors of this shape fit at once; none is an error now, not a wait forever."""
    suites = _suite_names(groups)
    by_cpu = math.floor(cluster.get("CPU", 0) / shape.cpus)
    by_gpu = len(groups)  # a shape without GPUs: they set no limit
    if shape.gpus > 0:
        by_gpu = math.floor(cluster.get("GPU", 0) / shape.gpus + 1e-9)
    if by_gpu == 0:
        raise SchedulingError(
            f"{suites}: each run asks for {shape.gpus:g} GPU(s) and the Ray cluster has "
            f"{cluster.get('GPU', 0):g}; add GPU workers or ask for less")
    if by_cpu == 0:
        raise SchedulingError(
            f"{suites}: each run asks for {shape.cpus} CPU(s) and the Ray cluster has "
            f"{cluster.get('CPU', 0):g}")
    return min(len(groups), by_cpu, by_gpu)


def _suite_names(groups: list[list[RunSpec]]) -> str:
    """The suites of the groups, as a message names them."""
    return ", ".join(sorted({g[0].suite for g in groups}))


class _Pool:
    """Actors of one resource shape, each given the next group as soon as it is free."""

    def __init__(self, shape: Resources, size: int, energy_dir: Path, country: str,
                 data_dir: Path | None):
        options = {"num_cpus": shape.cpus, "num_gpus": shape.gpus, "max_restarts": 0}
        self.make = lambda: Worker.options(**options).remote(
            str(energy_dir), country, str(data_dir) if data_dir else None)
        self.actors = [self.make() for _ in range(size)]

    def run(self, groups: list[list[RunSpec]], results: Results, max_retries: int,
            progress: RunProgress) -> Iterator[tuple[list[RunSpec], list[dict]]]:
        queue = deque((group, 0) for group in groups)
        idle, busy = list(self.actors), {}
        # Each needed run's files packed once, however many groups read them.
        inputs = {p.run_id: _pack(results.artifact_dir(p))
                  for g in groups for p in g[0].needs.values()}
        while queue or busy:
            while idle and queue:
                actor, (group, attempt) = idle.pop(), queue.popleft()
                needed = {p.run_id: inputs[p.run_id] for p in group[0].needs.values()}
                busy[actor.run.remote(group, needed)] = (actor, group, attempt)
                progress.running(group_label(group))
            [ref], _ = ray.wait(list(busy), num_returns=1)
            actor, group, attempt = busy.pop(ref)
            try:
                records = ray.get(ref)
            except WORKER_DEATHS as err:
                ray.kill(actor, no_restart=True)
                self.actors.remove(actor)
                replacement = self.make()
                self.actors.append(replacement)
                idle.append(replacement)
                reason = f"{type(err).__name__}: {_first_line(err)}"
                if attempt < max_retries:
                    progress.note(f"worker died running {group_label(group)} ({reason}); "
                                  f"retry {attempt + 1}/{max_retries}")
                    queue.appendleft((group, attempt + 1))
                    continue
                records = ex.failed_records(
                    group, f"its worker died {attempt + 1} times; last: {reason}")
            except rex.RayTaskError as err:
                # Not the run (execute records those) but dlrepro itself: do not retry.
                idle.append(actor)
                records = ex.failed_records(group, str(err))
            else:
                idle.append(actor)
            yield group, records

    def close(self) -> None:
        try:  # codecarbon writes its totals; all actors at once, so one slow one costs one wait
            ray.get([actor.close.remote() for actor in self.actors], timeout=30)
        except (rex.RayError, TimeoutError):
            pass
        for actor in self.actors:
            ray.kill(actor, no_restart=True)


@contextmanager
def _connected(address: str | None, num_cpus: int | None) -> Iterator[str]:
    """Connect to ``address`` (or $RAY_ADDRESS), else start an embedded instance; leave as found."""
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        where = f"Ray cluster at {address}"
        temp_dir = None
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        temp_dir = tempfile.mkdtemp(prefix="dlrepro-ray-")
        cpus = num_cpus or os.cpu_count() or 1
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, _temp_dir=temp_dir,
                 log_to_driver=False, configure_logging=False)
        where = f"embedded Ray instance, {cpus} CPU(s), on this machine"
    try:
        yield where
    finally:
        ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


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
