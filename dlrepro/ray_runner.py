"""The Ray runner: each run group is one Ray task, on an embedded instance or a cluster; Ray
places, retries and keeps the worker processes (docs/ray.md)."""

from __future__ import annotations

import functools
import io
import math
import os
import shutil
import signal
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import ray
import torch
from ray import exceptions as rex

from dlrepro import execute as ex
from dlrepro.console import RunProgress, note
from dlrepro.devices import DeviceChoice
from dlrepro.energy import EnergyMeter
from dlrepro.errors import Refused
from dlrepro.experiments.image_sets import verify
from dlrepro.files import ENV_VAR
from dlrepro.formatting import counted
from dlrepro.layout import Results
from dlrepro.planning import (cannot_honour, datasets_read, group_label, groups, unmet,
                              waves)
from dlrepro.schema import Resources
from dlrepro.suite import RunSpec

# Ray narrows a GPU task's CUDA_VISIBLE_DEVICES to its GPUs, but a kept process's CUDA stays on
# the GPUs it saw first: GPU tasks see every GPU of their node and pick theirs. A task Ray gave no
# GPU stays off the node's GPUs, whatever torch sees there.
SEE_EVERY_GPU = {"env_vars": {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}}
# With nothing back for this long, the driver checks that no run waits for nodes that are gone.
STRANDED_AFTER_S = 10


@functools.cache
def _this_process(country: str) -> SimpleNamespace:
    """What a worker process keeps from group to group: codecarbon, the data sets checked, and
    Ray's session folder, where its own folders go, beside the worker's logs: Ray ends kept
    workers without running atexit, and a killed one runs no ``finally`` (an embedded instance's
    session goes with it). Ray 2.60 has no public call for the folder."""
    ex.warm_up()
    session = ray._private.worker.global_worker.node.get_session_dir_path()
    energy = Path(tempfile.mkdtemp(prefix="dlrepro-energy-", dir=session))
    return SimpleNamespace(session=session, energy=energy, checked=set(), groups=0,
                           meter=EnergyMeter(energy, country).__enter__())


@ray.remote(max_calls=0, retry_exceptions=False)
def run_group(specs: list[RunSpec], sweep: tuple[str, str | None, str | None],
              producers: list[str], *archives: bytes) -> tuple[list[dict], int, tuple]:
    """Execute one group; ``archives``: the files of the ``producers`` it reads. Its records, with
    their files; which try this was; this process's codecarbon log (name, groups run, tar)."""
    country, data_dir, drivers_env = sweep
    process = _this_process(country)
    node, pid, gpus = ray.get_runtime_context().get_node_id(), os.getpid(), ray.get_gpu_ids()
    on_gpus = f" GPU {','.join(map(str, gpus))}" if gpus else ""
    if gpus and torch.cuda.is_available():  # on the GPU Ray gave it (a fake GPU: none there)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        torch.cuda.set_device(visible.split(",").index(str(gpus[0])) if visible else int(gpus[0]))
    ex.WORKER_NAME = f"ray {ray.util.get_node_ip_address()} pid {pid}{on_gpus}"
    # The driver's data directory, unless this node was given its own: a $DLREPRO_DATA_DIR other
    # than the driver's (the same one: a worker of the driver's machine inherits it).
    own = os.environ.get(ENV_VAR)
    data = Path(own) if own and own != drivers_env else data_dir and Path(data_dir)
    scratch = Path(tempfile.mkdtemp(prefix="dlrepro-artifacts-", dir=process.session))
    try:
        needed = datasets_read(specs) - process.checked
        verify(needed, data)  # on this node, once a process
        process.checked |= needed
        for producer, archive in zip(producers, archives):
            _unpack(archive, scratch / "inputs" / producer)
        records = ex.execute(specs, meter=process.meter, artifact_dir=lambda s: scratch / s.run_id,
                             input_dir=lambda s: scratch / "inputs" / s.run_id, data_dir=data,
                             device=DeviceChoice.AUTO if gpus else DeviceChoice.CPU)
        for record in records:
            record["artifacts"] = _pack(scratch / record["run_id"])
    except Refused as err:
        records = ex.failed_records(specs, f"on Ray node {node}: {err}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for record in records:
        record["node"] = node
        record["energy_method"] += f"; on Ray node {node}, in worker process {pid}"
    process.meter.flush()
    process.groups += 1
    # Ray 2.60 has no public call for it.
    attempt = ray._private.worker.global_worker.core_worker.get_current_task_attempt_number()
    return records, attempt, (f"ray-{node[:12]}-{pid}", process.groups, _pack(process.energy))


def run_ray(specs: list[RunSpec], results: Results, *, address: str | None, num_cpus: int | None,
            max_retries: int, energy_country: str, data_dir: Path | None,
            on_record: Callable[[dict], None], progress: RunProgress) -> None:
    logs: dict[str, int] = {}  # each worker's codecarbon log, as the driver has it: groups run
    tried: dict[str, int] = {}  # by group: the times it ran before it was placed anew

    def keep(group: list[RunSpec], records: list[dict], attempt: int = 0, log: tuple = ()):
        attempt += tried.get(group[0].run_id, 0)
        if attempt:
            note(f"its worker died running {group_label(group)}; retry {attempt}/{max_retries} "
                 "ran it")
        if log and log[1] > logs.get(log[0], 0):  # the newest: groups come back in any order
            logs[log[0]] = log[1]
            _unpack(log[2], results.energy / log[0])
        for spec, record in zip(group, records):
            _unpack(record.pop("artifacts", None), results.artifact_dir(spec))
            results.put(record)  # after its files: a stored record always has them
            on_record(record)
            progress.finished(spec.label, record)

    with _connected(address, num_cpus) as where:
        note(where)
        shapes = fitted_shapes(specs, live_nodes(), note)  # one Ray cannot run: now
        progress.at_once = {shape: at_once for shape, (_, at_once) in shapes.items()}
        sweep = (energy_country, data_dir and str(data_dir), os.environ.get(ENV_VAR))
        shipped: dict[str, ray.ObjectRef] = {}

        def submit(group: list[RunSpec]) -> ray.ObjectRef:
            producers = {p.run_id: p for p in group[0].needs.values()}
            for run_id, producer in producers.items():
                if run_id not in shipped:
                    shipped[run_id] = ray.put(_pack(results.artifact_dir(producer)))
            task = run_group.options(max_retries=max_retries - tried.get(group[0].run_id, 0),
                                     **shapes[group[0].resources][0])
            return task.remote(group, sweep, list(producers), *[shipped[r] for r in producers])

        for wave in waves(specs):
            running: dict[ray.ObjectRef, list[RunSpec]] = {}
            for group in groups(wave):
                blocked = unmet(group[0], results)
                if blocked:
                    keep(group, ex.failed_records(group, blocked))
                    continue
                running[submit(group)] = group
                progress.running(group_label(group))
            while running:
                ready, _ = ray.wait(list(running), timeout=STRANDED_AFTER_S)
                if not ready:
                    stranded = _stranded(specs, shapes)
                    for ref in [ref for ref in running if running[ref][0].resources in stranded]:
                        group = running.pop(ref)
                        tried[group[0].run_id] = tried.get(group[0].run_id, 0) + _failed_tries(ref)
                        ray.cancel(ref)  # waiting for nodes that are gone: placed anew
                        running[submit(group)] = group
                    continue
                group = running.pop(ready[0])
                try:
                    outcome = ray.get(ready[0])
                except rex.RayTaskError as err:  # dlrepro itself, not a run (execute records those)
                    outcome = ex.failed_records(group, str(err)),
                except rex.RayError as err:  # its worker or node died once more than Ray retries
                    outcome = ex.failed_records(group, f"its worker died {max_retries + 1} times; "
                                                f"last: {type(err).__name__}: {_first_line(err)}"),
                keep(group, *outcome)


def _failed_tries(ref: ray.ObjectRef) -> int:
    """How many times the task of ``ref`` failed, from Ray's state API (a cluster's dashboard)."""
    from ray.util import state

    try:
        return sum(attempt.state == "FAILED" for attempt in state.get_task(ref, timeout=10) or [])
    except Exception:  # no dashboard: the retry goes unsaid, and Ray may retry it once more
        return 0


def _stranded(specs: list[RunSpec], shapes: dict[Resources, tuple[dict, int]]) -> set[Resources]:
    """The shapes kept off the GPU nodes that the other nodes, lost, can no longer hold: from now
    on they go on any node (``shapes`` updated)."""
    try:
        now = fitted_shapes(specs, live_nodes(), lambda _: None)
    except Refused:  # some shape no node holds any more: its runs wait for a node to join
        return set()
    stranded = {shape for shape, (options, _) in shapes.items()
                if "label_selector" in options and "label_selector" not in now[shape][0]}
    shapes.update({shape: now[shape] for shape in stranded})
    return stranded


def fitted_shapes(specs: list[RunSpec], nodes: dict[str, dict],
                  note: Callable[[str], None]) -> dict[Resources, tuple[dict, int]]:
    """Each resource shape the specs ask for, fitted to the ``nodes`` (resources by node id): Ray's
    options for its runs, how many run at once. Refused: a shape no node can hold (not a wait
    forever)."""
    total = {kind: sum(has.get(kind, 0) for has in nodes.values()) for kind in ("CPU", "GPU")}
    for line in cannot_honour(specs, math.floor(total["CPU"]), total["GPU"], "the Ray cluster"):
        note(line)
    gpu_nodes = [node for node, has in nodes.items() if has.get("GPU")]
    others = [has for node, has in nodes.items() if node not in gpu_nodes]
    together, shapes = groups(specs), {}
    for shape in dict.fromkeys(spec.resources for spec in specs):
        cpus = min(shape.cpus, math.floor(total["CPU"])) or shape.cpus
        gpus = shape.gpus if total["GPU"] else 0
        options = {"num_cpus": cpus, "num_gpus": gpus}
        at_once = _holds(cpus, gpus, nodes.values())
        if gpus:
            options["runtime_env"] = SEE_EVERY_GPU
        elif gpu_nodes and _holds(cpus, gpus, others):
            # Runs without a GPU leave the GPU nodes' CPUs to the runs that need their GPUs (Ray's
            # fallback_strategy would spill them there whenever the other nodes are busy).
            options["label_selector"] = {"ray.io/node-id": f"!in({','.join(gpu_nodes)})"}
            at_once = _holds(cpus, gpus, others)
        if not at_once:
            suites = ", ".join(sorted({spec.suite for spec in specs if spec.resources == shape}))
            raise Refused(f"{suites}: each run asks for {cpus} CPU(s) and {gpus:g} GPU(s), and no "
                          f"node of the Ray cluster has that much ({total['CPU']:g} CPU(s), "
                          f"{total['GPU']:g} GPU(s) in all)")
        shapes[shape] = options, min(at_once, sum(g[0].resources == shape for g in together))
    return shapes


def _holds(cpus: int, gpus: float, nodes) -> int:
    """How many runs of this shape the nodes hold at once."""
    count = 0
    for node in nodes:
        by_cpu = math.floor(node.get("CPU", 0) / cpus + 1e-9)
        count += min(by_cpu, math.floor(node.get("GPU", 0) / gpus + 1e-9)) if gpus else by_cpu
    return count


def plan_on_cluster(specs: list[RunSpec], *, address: str | None, num_cpus: int | None
                    ) -> tuple[list[str], dict[Resources, int] | None, str | None]:
    """What the specs would take on the cluster at ``address`` (connected to, nothing run), or on
    an embedded instance of this machine's CPUs (not started): lines for a person, how many runs
    of each shape it holds at once, and why it cannot run them (else None)."""
    if address:
        with _connected(address, None):
            nodes = live_nodes()
    else:
        nodes = {"this machine": {"CPU": num_cpus or os.cpu_count() or 1}}
    lines: list[str] = []
    try:
        shapes = fitted_shapes(specs, nodes, lines.append)
    except Refused as err:
        shapes, problem = {}, str(err)
    else:
        problem = None
    cpus, gpus = (sum(has.get(kind, 0) for has in nodes.values()) for kind in ("CPU", "GPU"))
    where = f"the Ray cluster at {address}" if address else "an embedded Ray instance"
    lines.append(f"On {where}: {len(nodes)} node(s), {cpus:g} CPU(s), {gpus:g} GPU(s):")
    for shape, (options, at_once) in shapes.items():
        runs = counted(sum(spec.resources == shape for spec in specs), "run")
        lines.append(f"  {options['num_cpus']} CPU(s) and {options['num_gpus']:g} GPU(s) a run: "
                     f"{runs} to do, {at_once} at once")
    return lines, {shape: at_once for shape, (_, at_once) in shapes.items()} or None, problem


def live_nodes() -> dict[str, dict]:
    return {node["NodeID"]: node["Resources"] for node in ray.nodes() if node["Alive"]}


@contextmanager
def _connected(address: str | None, num_cpus: int | None) -> Iterator[str]:
    """Connect to the cluster at ``address``, else start an embedded instance; leave as found."""
    # ray.init makes SIGTERM a bare sys.exit; the command's own handler, put back, stops the
    # sweep as Ctrl-C does (`ray job stop` sends SIGTERM, and SIGKILL 3 s later).
    on_sigterm = signal.getsignal(signal.SIGTERM)
    temp_dir = None
    if address:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, rex.AuthenticationError) as err:
            raise Refused(f"cannot connect to the Ray cluster at {address}: "
                          f"{_first_line(err)} ({_token_hint()})") from None
        where = f"Ray cluster at {address}"
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
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return "if the cluster uses token authentication: RAY_AUTH_MODE=token here too"
    return "is this shell's token ($RAY_AUTH_TOKEN, else ~/.ray/auth_token) the cluster's?"


def _first_line(err: Exception) -> str:
    return next(iter(str(err).strip().splitlines()), "")


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
