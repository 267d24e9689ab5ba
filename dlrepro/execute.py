"""Execute one run spec into a record. Every runner (local, Ray) calls this same function."""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import random
import socket
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import dlrepro
from dlrepro import experiments
from dlrepro.energy import EnergyMeter
from dlrepro.suite import RunSpec


WORKER_NAME: str | None = None


@dataclass
class RunContext:
    """What an experiment's ``run`` gets besides its parameters."""

    seed: int
    device: torch.device
    data_dir: Path | None
    artifact_dir: Path
    inputs: dict[str, Path] = field(default_factory=dict)  # a suite's ``needs``: name -> the producer's files
    metrics: list[dict] = field(default_factory=list)

    def log(self, metric: str, value: float, step: int | None = None) -> None:
        self.metrics.append({"metric": metric, "step": step, "value": float(value)})

    def artifact(self, name: str) -> Path:
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return self.artifact_dir / name

    def input(self, need: str, name: str) -> Path:
        """A file written by the run this suite ``needs`` under the name ``need``."""
        path = self.inputs[need] / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the run needed as {need!r} left no {name}")
        return path


def execute(specs: list[RunSpec], *, meter: EnergyMeter, artifact_dir: Callable[[RunSpec], Path],
            data_dir: Path | None, input_dir: Callable[[RunSpec], Path] | None = None) -> list[dict]:
    """Run specs that differ only in seed and return their records.

    An experiment with ``run_seeds`` trains them together (stacked models: one clock and one energy
    measurement, shared equally, ``batch_size`` says by how many); otherwise there is one spec.
    ``input_dir`` finds the files of the runs a spec needs (default: ``artifact_dir``).
    An exception in the experiment becomes failed records, never an exception here.
    """
    input_dir = input_dir or artifact_dir
    first = specs[0]
    module = experiments.load(first.experiment)
    if len(specs) > 1 and not hasattr(module, "run_seeds"):
        raise ValueError(f"experiment {first.experiment!r} runs one seed at a time")
    torch.set_num_threads(first.resources.cpus)
    seed_everything(first.seed)
    device = torch.device("cuda" if first.resources.gpus > 0 and torch.cuda.is_available() else "cpu")
    ctxs = [RunContext(seed=s.seed, device=device, data_dir=data_dir, artifact_dir=artifact_dir(s),
                       inputs={name: input_dir(producer) for name, producer in s.needs.items()}) for s in specs]
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    error = None
    with meter.measure(first.run_id) as energy:
        try:
            params = module.Params(**first.params)
            module.run_seeds(params, ctxs) if hasattr(module, "run_seeds") else module.run(params, ctxs[0])
        except Exception:  # recorded, not raised: one broken run must not stop the others
            error = traceback.format_exc(limit=8)
    share, elapsed = 1 / len(specs), time.perf_counter() - clock
    return [record(spec, error=error, started=started, wall_time_s=elapsed * share,
                   batch_size=len(specs), device=describe_device(device), kwh=energy.kwh * share,
                   co2_kg=energy.co2_kg * share, energy_method=energy.method, metrics=ctx.metrics)
            for spec, ctx in zip(specs, ctxs)]


def record(spec: RunSpec, *, error: str | None, started: datetime, wall_time_s: float = math.nan,
           batch_size: int = 1, device: str = "", kwh: float = math.nan, co2_kg: float = math.nan,
           energy_method: str = "not measured", metrics: list[dict] = ()) -> dict:
    """The record of one run: what the store keeps and the tables are merged from."""
    return {
        "run_id": spec.run_id, "suite": spec.suite, "experiment": spec.experiment, "profile": spec.profile,
        "params": spec.params, "seed": spec.seed, "needs": {name: p.run_id for name, p in spec.needs.items()},
        "status": "failed" if error else "ok", "error": error,
        "started_at": started.isoformat(), "finished_at": datetime.now(timezone.utc).isoformat(),
        "wall_time_s": wall_time_s, "batch_size": batch_size, "device": device, "worker": worker_name(),
        **host_info(), "energy_kwh": kwh, "co2_kg": co2_kg, "energy_method": energy_method,
        "metrics": [] if error else _finite(list(metrics)),
    }


def failed_records(group: list[RunSpec], error: str) -> list[dict]:
    """Records of a group that could not run at all (its worker died, a run it needs failed)."""
    started = datetime.now(timezone.utc)
    return [record(spec, error=error, started=started, batch_size=len(group)) for spec in group]


def worker_name() -> str:
    """Which process ran it: this one, or a Ray worker on some node (which sets ``WORKER_NAME``)."""
    return WORKER_NAME or f"local pid {os.getpid()}"


def groups(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """Specs to execute together: the seeds of one configuration when the experiment trains seeds
    together, else one spec per group. Order is kept."""
    together: dict[str, list[RunSpec]] = {}
    for spec in specs:
        stackable = hasattr(experiments.load(spec.experiment), "run_seeds")
        key = json.dumps([spec.suite, spec.params, spec.resources.model_dump()], sort_keys=True) if stackable else spec.run_id
        together.setdefault(key, []).append(spec)
    return list(together.values())


def group_label(group: list[RunSpec]) -> str:
    """How progress names a group: its configuration, and how many seeds train together."""
    return group[0].label + (f" ×{len(group)} seeds" if len(group) > 1 else "")


def warm_up() -> None:
    """Pay torch's one-off lazy imports (the first optimizer costs seconds) before any run's clock starts.
    Every runner calls this once per process."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_model()}, {torch.get_num_threads()} thread(s)"


@functools.cache
def cpu_model() -> str:
    """The CPU's marketing name (Linux), else the architecture: time is only comparable on the same one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def host_info() -> dict:
    return {
        "hostname": socket.gethostname(),
        "dlrepro_version": dlrepro.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str:
    root = Path(dlrepro.__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _finite(metrics: list[dict]) -> list[dict]:
    # JSON has no NaN/inf; None keeps "never converged" representable and round-trips as NaN.
    return [{**m, "value": m["value"] if math.isfinite(m["value"]) else None} for m in metrics]
