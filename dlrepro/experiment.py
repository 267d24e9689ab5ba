"""The experiment contract: what a suite can name under ``experiment``.

An experiment is a package ``dlrepro/experiments/<name>/`` in two halves (``_template`` is a
commented one to copy):

- ``__init__.py``, the *declaration*, torch-free so that suite files are checked in a blink:
  ``Params`` (a subclass of ``dlrepro.experiment.Params``: strict, finite, unknown keys refused),
  ``METRICS``, every metric the experiment logs (name → ``Metric``; nothing else can be logged),
  and, if its runs read a data set, ``datasets(params)``: the names of ``dlrepro.data.DATASETS``
  they read, checked before any run starts.
- ``experiment.py``, the *implementation*: either ``run(params, ctx)`` (one seed) or
  ``run_seeds(params, ctxs)`` (the seeds of one configuration at once, as a stacked model), and
  ``figures(table, out_dir, artifacts) -> list[Path]``, which draws the slide's figures from the
  result table (metrics of successful runs joined with their parameters; possibly empty) and the
  runs' files under ``artifacts/<run_id>/``.

A run gets a ``RunContext``: its seed (every RNG is seeded from it before the run starts), its
device, the data folder, ``log`` for metrics, ``artifact`` for the files it writes and ``input``
for the files of the runs its suite ``needs``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import math
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from dlrepro.schema import Metric

if TYPE_CHECKING:
    import torch

PACKAGE = "dlrepro.experiments"
IMPLEMENTATION = "experiment"  # the module of an experiment's package that imports torch


class Params(BaseModel):
    """Base of every experiment's parameters: validated as strictly as the suite file they come from."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ContractError(Exception):
    """An experiment package that does not keep the contract; the message names the module."""


PFS_DAY = 1e15 * 86_400  # FLOP in a petaflop/s-day
WORK, ENERGY_PER_WORK = "train_flops", "kwh_per_pfs_day"


@dataclass
class RunContext:
    """What an experiment's ``run`` gets besides its parameters."""

    seed: int
    device: torch.device
    data_dir: Path | None
    artifact_dir: Path
    declared: frozenset[str]
    inputs: dict[str, Path] = field(default_factory=dict)  # a suite's ``needs``: name -> the producer's files
    metrics: list[dict] = field(default_factory=list)

    def log(self, metric: str, value: float, step: int | None = None) -> None:
        """Record a metric; an undeclared name or a NaN / infinite value fails the run here and now."""
        if metric not in self.declared:
            raise ValueError(f"metric {metric!r} is not declared in the experiment's METRICS")
        value = float(value)
        if not math.isfinite(value):
            where = f" at step {step}" if step is not None else ""
            raise ValueError(f"metric {metric!r} is {value}{where}: a run that logs NaN or infinity is not counted")
        self.metrics.append({"metric": metric, "step": step, "value": value})

    def artifact(self, name: str) -> Path:
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return self.artifact_dir / name

    def input(self, need: str, name: str) -> Path:
        """A file written by the run this suite ``needs`` under the name ``need``."""
        path = self.inputs[need] / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the run needed as {need!r} left no {name}")
        return path

    def log_energy_per_work(self, kwh: float) -> None:
        """002: "1 petaflop/s-day ≈ 100 GPUs for a day ≈ 500 kWh". A run that logs ``train_flops`` and
        declares ``kwh_per_pfs_day`` gets that figure for itself, from the energy measured around it
        (known only once the run is over, so the executor calls this)."""
        work = [m["value"] for m in self.metrics if m["metric"] == WORK and m["step"] is None]
        if ENERGY_PER_WORK in self.declared and work and work[0] > 0 and math.isfinite(kwh) and kwh > 0:
            self.log(ENERGY_PER_WORK, kwh * PFS_DAY / work[0])

    def seed_everything(self) -> None:
        """Python's, numpy's and torch's global generators, from this run's seed."""
        import random

        import numpy as np
        import torch

        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)


@dataclass(frozen=True)
class Experiment:
    """One experiment package: its declaration at once, its implementation on first use."""

    name: str
    params: type[Params]
    metrics: dict[str, Metric]
    folder: Path
    datasets: Callable[[Params], set[str]] = lambda params: set()  # the data sets a run with these params reads

    @functools.cached_property
    def implementation(self) -> ModuleType:
        """The module that runs and draws (imports torch); checked against the contract."""
        module_name = f"{PACKAGE}.{self.name}.{IMPLEMENTATION}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                raise ContractError(f"{module_name}: no such module; an experiment's runs live in "
                                    f"{IMPLEMENTATION}.py beside its declaration") from None
            raise
        runners = [n for n in ("run", "run_seeds") if callable(getattr(module, n, None))]
        if len(runners) != 1:
            raise ContractError(f"{module_name}: define exactly one of run(params, ctx) and run_seeds(params, ctxs)")
        _check_signature(module_name, getattr(module, runners[0]), 2)
        if not callable(getattr(module, "figures", None)):
            raise ContractError(f"{module_name}: no figures(table, out_dir, artifacts)")
        _check_signature(module_name, module.figures, 3)
        return module

    @property
    def stacks_seeds(self) -> bool:
        return hasattr(self.implementation, "run_seeds")

    def run(self, params: Params, ctxs: list[RunContext]) -> None:
        if self.stacks_seeds:
            self.implementation.run_seeds(params, ctxs)
        else:
            (ctx,) = ctxs
            self.implementation.run(params, ctx)

    def figures(self, table, out_dir: Path, artifacts: Path) -> list[Path]:
        """The implementation's figures; none from a table with no successful run."""
        return self.implementation.figures(table, out_dir, artifacts) if len(table) else []

    @functools.cached_property
    def code_hash(self) -> str:
        """Hash of the source of every dlrepro module the experiment's runs execute: its own two
        modules and, transitively, the package modules they import (data loading, shared networks…).
        Part of every run_id, so that an edit to any of them reruns its runs."""
        digest = hashlib.sha256()
        for path in sorted(_imported_sources([self.folder / "__init__.py", self.folder / f"{IMPLEMENTATION}.py"])):
            digest.update(path.relative_to(_PACKAGE_ROOT.parent).as_posix().encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:12]


_PACKAGE_ROOT = Path(__file__).resolve().parent  # dlrepro/


def _check_signature(module: str, fn: Callable, arity: int) -> None:
    try:
        inspect.signature(fn).bind(*range(arity))
    except TypeError:
        raise ContractError(f"{module}: {fn.__name__} must take {arity} positional arguments") from None


def _imported_sources(start: list[Path]) -> set[Path]:
    """The files of ``start`` and of every dlrepro module they import, transitively (read, not run)."""
    seen: set[Path] = set()
    todo = [p for p in start if p.exists()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module if node.level == 0 else _relative(path, node.module, node.level)
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                found = _module_file(name)
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def _relative(path: Path, module: str, level: int) -> str:
    package = path.parent.relative_to(_PACKAGE_ROOT.parent).parts
    return ".".join(package[: len(package) - level + 1] + tuple(module.split(".")))


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "dlrepro":
        return None
    base = _PACKAGE_ROOT.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def available() -> list[str]:
    folder = _PACKAGE_ROOT / "experiments"
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if m.ispkg and not m.name.startswith("_"))


@functools.cache
def get(name: str) -> Experiment:
    """The experiment ``name``, its declaration checked; KeyError if there is none, ContractError if broken."""
    if name not in available():
        raise KeyError(name)
    module = importlib.import_module(f"{PACKAGE}.{name}")
    return declared(module)


def declared(module: ModuleType) -> Experiment:
    """Check a declaration module (``Params``, ``METRICS``) and wrap it."""
    params: Any = getattr(module, "Params", None)
    if not (isinstance(params, type) and issubclass(params, Params)):
        raise ContractError(f"{module.__name__}: Params must be a subclass of dlrepro.experiment.Params")
    metrics: Any = getattr(module, "METRICS", None)
    if not (isinstance(metrics, dict) and metrics and all(isinstance(m, Metric) for m in metrics.values())):
        raise ContractError(f"{module.__name__}: METRICS must map every metric it logs to a dlrepro.schema.Metric")
    datasets = getattr(module, "datasets", None)
    if datasets is not None and not callable(datasets):
        raise ContractError(f"{module.__name__}: datasets must be a function of the parameters")
    return Experiment(module.__name__.rsplit(".", 1)[-1], params, dict(metrics), Path(module.__file__).parent,
                      *([datasets] if datasets else []))
