"""Execute one run spec into a record. Every runner (local, Ray) calls this same function."""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
from pydantic import ValidationError

from dlrepro import devices
from dlrepro import experiment as contract
from dlrepro.devices import DeviceChoice, host_info
from dlrepro.energy import Energy, EnergyMeter
from dlrepro.experiment import RunContext
from dlrepro.suite import RunSpec

WORKER_NAME: str | None = None  # a Ray worker sets it: which node and process ran a run


def execute(specs: list[RunSpec], *, meter: EnergyMeter, artifact_dir: Callable[[RunSpec], Path],
            data_dir: Path | None, input_dir: Callable[[RunSpec], Path] | None = None,
            device: DeviceChoice = DeviceChoice.AUTO) -> list[dict]:
    """The records of specs that differ only in seed, trained together (one clock and energy
    measurement, shared equally) where the experiment stacks seeds. ``input_dir``: the files of
    the runs a spec needs (default: ``artifact_dir``). Whatever goes wrong inside becomes failed
    records, never an exception here."""
    input_dir = input_dir or artifact_dir
    first = specs[0]
    experiment = contract.get(first.experiment)
    torch.set_num_threads(min(first.resources.cpus, os.cpu_count() or 1))
    on = _device_of(experiment, first, device)
    declared = frozenset(experiment.metrics)
    ctxs = [RunContext(seed=s.seed, device=on, data_dir=data_dir, artifact_dir=artifact_dir(s),
                       declared=declared,
                       inputs={name: input_dir(producer) for name, producer in s.needs.items()})
            for s in specs]
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    error = None
    with meter.measure(first.run_id) as energy:
        try:
            # a stacked model draws every seed's values from its own generators
            ctxs[0].seed_everything()
            experiment.run(experiment.params.model_validate(first.params), ctxs)
        except Exception:  # recorded, not raised: one broken run must not stop the others
            error = traceback.format_exc(limit=8)
    share, elapsed = 1 / len(specs), time.perf_counter() - clock
    shared = energy.columns(share)
    if error is None:
        for ctx in ctxs:
            for then in ctx.with_energy:
                then(shared)
    described = devices.describe(on.type, torch.get_num_threads())
    return [record(spec, error=error, started=started, wall_time_s=elapsed * share,
                   batch_size=len(specs), device=described, energy=shared,
                   metrics=ctx.metrics)
            for spec, ctx in zip(specs, ctxs)]


def _device_of(experiment: contract.Experiment, spec: RunSpec,
               choice: DeviceChoice) -> torch.device:
    try:
        params = experiment.params.model_validate(spec.params)
    except ValidationError:  # the run fails on them, with the message, inside its try
        return torch.device("cpu")
    return torch.device(devices.resolve(choice, reads_data=bool(experiment.datasets(params))))


def record(spec: RunSpec, *, error: str | None, started: datetime, wall_time_s: float = math.nan,
           batch_size: int = 1, device: str = "", energy: dict | None = None,
           metrics: list[dict] = (), status: str | None = None) -> dict:
    return {
        "run_id": spec.run_id, "suite": spec.suite, "experiment": spec.experiment,
        "profile": spec.profile, "params": spec.params, "seed": spec.seed,
        "needs": {name: p.run_id for name, p in spec.needs.items()},
        "status": status or ("failed" if error else "ok"), "error": error,
        "started_at": started.isoformat(), "finished_at": datetime.now(timezone.utc).isoformat(),
        "wall_time_s": wall_time_s, "batch_size": batch_size, "device": device,
        "worker": WORKER_NAME or f"local pid {os.getpid()}", **host_info(),
        "torch_version": torch.__version__,
        **(energy or Energy().columns(1)),
        "metrics": [] if error else list(metrics),
    }


def failed_records(group: list[RunSpec], error: str) -> list[dict]:
    started = datetime.now(timezone.utc)
    return [record(spec, error=error, started=started, batch_size=len(group)) for spec in group]


def warm_up() -> None:
    """Pay torch's one-off lazy imports (the first optimizer costs seconds) before any run's clock
    starts. Every runner calls this once per process."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
