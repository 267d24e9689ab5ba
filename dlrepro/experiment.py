"""The experiment contract (docs/experiments.md): a package ``dlrepro/experiments/<name>/`` with a
torch-free declaration (``Params``, ``METRICS``, optional ``datasets``), ``run.py`` and
``figures.py``; the context a run gets; the source a run executes (``code_hash``)."""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import math
import pkgutil
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_serializer

from dlrepro.errors import Refused
from dlrepro.schema import Approx, Metric

if TYPE_CHECKING:
    import numpy as np
    import torch

PACKAGE = "dlrepro.experiments"
PACKAGE_ROOT = Path(__file__).resolve().parent  # dlrepro/


class Params(BaseModel):
    """Base of every experiment's parameters: validated as strictly as the suite file they come
    from. An experiment whose runs do different things by one parameter (its ``MODE``) says in
    ``USED_BY`` which modes read each of the others: a run of another mode leaves that parameter
    out of its identity and its table row, whatever the suite sets (a suite's ``[parameters]``
    may serve several modes)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    MODE: ClassVar[str | None] = None
    USED_BY: ClassVar[dict[str, frozenset[str]]] = {}

    @model_serializer(mode="wrap")
    def _only_what_is_used(self, handler) -> dict[str, Any]:
        values = handler(self)
        if self.MODE is None:
            return values
        mode, used_by = getattr(self, self.MODE), self.USED_BY
        return {n: v for n, v in values.items() if n not in used_by or mode in used_by[n]}


def _written(path: Path, whose: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {whose} left no {path.name}")
    return path


@dataclass
class RunContext:
    """What an experiment's ``run`` gets besides its parameters."""

    seed: int
    device: torch.device
    data_dir: Path | None
    artifact_dir: Path
    declared: frozenset[str]
    inputs: dict[str, Path] = field(default_factory=dict)  # ``needs``: name -> the producer's files
    metrics: list[dict] = field(default_factory=list)
    # Called with the run's energy columns (``energy.READINGS``: kWh in all and by part, and
    # ``energy_method``) once it is over and measured: a figure per kWh.
    with_energy: list[Callable[[dict[str, float | str]], None]] = field(default_factory=list)

    def log(self, metric: str, value: float, step: int | None = None) -> None:
        """An undeclared name or a NaN / infinite value fails the run here."""
        if metric not in self.declared:
            raise ValueError(f"metric {metric!r} is not declared in the experiment's METRICS")
        value = float(value)
        if not math.isfinite(value):
            where = f" at step {step}" if step is not None else ""
            raise ValueError(f"metric {metric!r} is {value}{where}: a run that logs NaN or "
                             "infinity is not counted")
        self.metrics.append({"metric": metric, "step": step, "value": value})

    def artifact(self, name: str) -> Path:
        """Where this run writes its file ``name``: one flat folder per run."""
        if not name or Path(name).name != name:
            raise ValueError(f"{name!r}: a run's file is named without a folder")
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return self.artifact_dir / name

    def input(self, need: str, name: str) -> Path:
        """A file written by the run this suite ``needs`` under the name ``need``."""
        return _written(self.inputs[need] / name, f"the run needed as {need!r}")

    def seed_everything(self) -> None:
        import random

        import numpy as np
        import torch

        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)


@dataclass(frozen=True)
class RunFiles:
    """The files a suite's runs wrote, as its figures read them: ``<folder>/<run_id>/<name>``."""

    folder: Path

    def path(self, run_id: str, name: str) -> Path:
        return _written(self.folder / run_id / name, f"run {run_id}")

    def load(self, run_id: str, name: str) -> np.ndarray | Any:
        """A ``.npy`` array or an ``.npz`` archive (its arrays by key)."""
        import numpy as np

        return np.load(self.path(run_id, name))


@dataclass(frozen=True)
class Experiment:
    """One experiment package: its declaration at once, its run and figures modules on first use."""

    name: str
    params: type[Params]
    metrics: dict[str, Metric]
    folder: Path
    datasets: Callable[[Params], set[str]] = lambda params: set()  # those a run reads

    @functools.cached_property
    def implementation(self) -> ModuleType:
        module = import_module(self._module("run"))
        runners = [n for n in ("run", "run_seeds") if callable(getattr(module, n, None))]
        if len(runners) != 1:
            raise Refused(f"{module.__name__}: define exactly one of run(params, ctx) and "
                          "run_seeds(params, ctxs)")
        self._module("figures")  # refused before a run, not once runs are done
        return module

    @functools.cached_property
    def drawing(self) -> ModuleType:
        module = import_module(self._module("figures"))
        if not callable(getattr(module, "figures", None)):
            raise Refused(f"{module.__name__}: no figures(table, out_dir, files, published)")
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

    def figures(self, table, out_dir: Path, artifacts: Path,
                published: Sequence[Approx] = ()) -> list[Path]:
        """The figures of the runs under ``artifacts``; none from a table with no run."""
        if not len(table):
            return []
        return self.drawing.figures(table, out_dir, RunFiles(artifacts), list(published))

    @functools.cached_property
    def code_hash(self) -> str:
        """What a run executes: the declaration, ``run.py`` and, transitively, the dlrepro modules
        they import (data loading, shared networks…). Part of every run_id, so that an edit to
        any of them reruns its runs, and an edit to drawing code does not."""
        return hash_sources([self.folder / "__init__.py", self.folder / "run.py"])

    @functools.cached_property
    def figures_hash(self) -> str:
        return hash_sources([self.folder / "figures.py"])

    def _module(self, module: str) -> str:
        """The name of one of the package's modules; Refused if its file is missing."""
        name = f"{PACKAGE}.{self.name}.{module}"
        if not (self.folder / f"{module}.py").is_file():
            raise Refused(f"{name}: no such module; an experiment keeps it in {module}.py beside "
                          "its declaration")
        return name


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE_ROOT / "experiments")])
                  if m.ispkg and not m.name.startswith("_"))


@functools.cache
def get(name: str) -> Experiment:
    """The experiment ``name``, its declaration checked and its run module parsed (a syntax error
    there is named now, not at the first run); KeyError if there is none, Refused if broken."""
    if name not in available():
        raise KeyError(name)
    experiment = declared(import_module(f"{PACKAGE}.{name}"))
    experiment.code_hash  # noqa: B018
    return experiment


def declared(module: ModuleType) -> Experiment:
    name = module.__name__
    params: Any = getattr(module, "Params", None)
    if not (isinstance(params, type) and issubclass(params, Params)):
        raise Refused(f"{name}: Params must be a subclass of dlrepro.experiment.Params")
    metrics: Any = getattr(module, "METRICS", None)
    if not (isinstance(metrics, dict) and metrics
            and all(isinstance(m, Metric) for m in metrics.values())):
        raise Refused(f"{name}: METRICS must map every metric it logs to a "
                      "dlrepro.schema.Metric")
    datasets = getattr(module, "datasets", None)
    if datasets is not None and not callable(datasets):
        raise Refused(f"{name}: datasets must be a function of the parameters")
    return Experiment(name.rsplit(".", 1)[-1], params, dict(metrics), Path(module.__file__).parent,
                      *([datasets] if datasets else []))


# ---- an experiment's source, read rather than run ----


def import_module(name: str) -> ModuleType:
    """Whatever stops an experiment's module importing is Refused naming the file and line."""
    try:
        return importlib.import_module(name)
    except SyntaxError as err:  # no frame of the broken file: the error itself says where
        raise _refused_at(err.filename or name, err.lineno, err, err.msg) from None
    except Exception as err:
        # The last frame in dlrepro: this function's own when the error is in another package.
        frame = [f for f in traceback.extract_tb(err.__traceback__)
                 if Path(f.filename).resolve().is_relative_to(PACKAGE_ROOT)][-1]
        raise _refused_at(frame.filename, frame.lineno, err, _first_problem(err)) from None


def _first_problem(err: Exception) -> str:
    """What went wrong in one line: for a pydantic model built at import (a ``Metric``), its
    first error's field, message and the input it got, not the count of errors."""
    if isinstance(err, ValidationError) and err.errors():
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or err.title
        return f"{err.title}.{where}: {first['msg']} (got {first.get('input')!r})"
    return next(iter(str(err).splitlines()), "")


def _refused_at(file: str | Path, line: int | None, err: Exception, problem: str) -> Refused:
    """A file named from the project's root when it is in it."""
    path = Path(file).resolve()
    if path.is_relative_to(PACKAGE_ROOT.parent):
        path = path.relative_to(PACKAGE_ROOT.parent)
    return Refused(f"{path}:{line}: {type(err).__name__}: {problem}")


def hash_sources(start: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(imported_sources(start)):
        name = path.relative_to(PACKAGE_ROOT.parent).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def imported_sources(start: list[Path]) -> set[Path]:
    """The files of ``start`` and of every dlrepro module they import, transitively, read rather
    than run (a name imported from a package may be a module)."""
    seen: set[Path] = set()
    todo = [p for p in start if p.exists()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as err:
            raise _refused_at(path, err.lineno, err, err.msg) from None
        package = ".".join(path.parent.relative_to(PACKAGE_ROOT.parent).parts)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = importlib.util.resolve_name("." * node.level + node.module, package)
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            todo += [found for found in map(_module_file, names) if found and found not in seen]
    return seen


def _module_file(name: str) -> Path | None:
    if name.split(".")[0] != "dlrepro":
        return None
    base = PACKAGE_ROOT.parent.joinpath(*name.split("."))
    return next((c for c in (base.with_suffix(".py"), base / "__init__.py") if c.is_file()), None)
