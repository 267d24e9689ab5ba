"""The experiment contract: what a suite can name under ``experiment``.

An experiment is a package ``dlrepro/experiments/<name>/`` of three modules (``_template`` is a
commented one to copy):

- ``__init__.py``, the *declaration*, torch-free so that suite files are checked in a blink:
  ``Params`` (a subclass of ``dlrepro.experiment.Params``: strict, finite, unknown keys refused),
  ``METRICS``, every metric the experiment logs (name → ``Metric``; nothing else can be logged),
  and, if its runs read a data set, ``datasets(params)``: the names of ``dlrepro.data.DATASETS``
  they read, checked before any run starts.
- ``run.py``, what a run executes: either ``run(params, ctx)`` (one seed) or
  ``run_seeds(params, ctxs)`` (the seeds of one configuration at once, as a stacked model), and
  everything they call. It imports neither a ``figures`` module nor ``dlrepro.plotting``.
- ``figures.py``: ``figures(table, out_dir, files, published) -> list[Path]``, which draws the
  slide's figures from the result table (metrics of successful runs joined with their parameters;
  never empty), the runs' files (a ``RunFiles``: ``files.load(run_id, name)``) and the suite's
  published numbers (its ``approx`` claims marked ``published``, for figures that draw one as a
  reference: a number printed in a course lives in the suite file, not in code).

A package that breaks the contract is refused in one line naming the file and the line: a
module that does not import (when a suite names the experiment for the declaration and, from its
source, for ``run.py``'s syntax; when first used for the others), a declaration that imports torch,
pandas or Ray (even through a dlrepro module: read from the source, so that finding out imports
nothing heavy), a runner whose arguments are swapped (``run(ctx, params)``).

A run's identity (``code_hash``, part of every run_id) is the source of the declaration, of
``run.py`` and of the dlrepro modules they import, transitively; ``figures.py`` and what it alone
imports are ``figures_hash``, which only decides when the report redraws. Editing a figure reruns
nothing.

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
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_serializer

from dlrepro.schema import Approx, Metric

if TYPE_CHECKING:
    import numpy as np
    import torch

PACKAGE = "dlrepro.experiments"
RUN, FIGURES = "run", "figures"  # the modules beside the declaration (they import torch)
# What run.py defines (one of them), with the arguments the runner passes, in order.
RUNNERS = {"run": "params, ctx", "run_seeds": "params, ctxs"}
# What a declaration may not import, even through a dlrepro module: a suite loads without them.
HEAVY = frozenset({"torch", "torchvision", "pandas", "ray"})
CONTEXT_NAMES = frozenset({"ctx", "ctxs", "context", "contexts"})


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
        mode = getattr(self, self.MODE) if self.MODE else None
        return {name: value for name, value in values.items() if self._used(name, mode)}

    def _used(self, name: str, mode: Any) -> bool:
        return self.MODE is None or name not in self.USED_BY or mode in self.USED_BY[name]


class ContractError(Exception):
    """An experiment package that does not keep the contract; the message names the module."""


PFS_DAY = 1e15 * 86_400  # FLOP in a petaflop/s-day
WORK, ENERGY_PER_WORK = "train_flops", "kwh_per_pfs_day"


def file_in(run_dir: Path, name: str) -> Path:
    """Where a run keeps its file ``name``: one flat folder per run, whoever writes or reads it."""
    if not name or Path(name).name != name:
        raise ValueError(f"{name!r}: a run's file is named without a folder")
    return run_dir / name


def _written(run_dir: Path, name: str, whose: str) -> Path:
    path = file_in(run_dir, name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {whose} left no {name}")
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

    def log(self, metric: str, value: float, step: int | None = None) -> None:
        """Record a metric; an undeclared name or a NaN / infinite value fails the run here."""
        if metric not in self.declared:
            raise ValueError(f"metric {metric!r} is not declared in the experiment's METRICS")
        value = float(value)
        if not math.isfinite(value):
            where = f" at step {step}" if step is not None else ""
            raise ValueError(f"metric {metric!r} is {value}{where}: a run that logs NaN or "
                             "infinity is not counted")
        self.metrics.append({"metric": metric, "step": step, "value": value})

    def artifact(self, name: str) -> Path:
        """Where this run writes its file ``name`` (the folder is created)."""
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return file_in(self.artifact_dir, name)

    def input(self, need: str, name: str) -> Path:
        """A file written by the run this suite ``needs`` under the name ``need``."""
        return _written(self.inputs[need], name, f"the run needed as {need!r}")

    def log_energy_per_work(self, kwh: float) -> None:
        """002: "1 petaflop/s-day ≈ 100 GPUs for a day ≈ 500 kWh". A run that logs ``train_flops``
        and declares ``kwh_per_pfs_day`` gets that figure for itself, from the energy measured
        around it (known only once the run is over, so the executor calls this)."""
        work = [m["value"] for m in self.metrics if m["metric"] == WORK and m["step"] is None]
        measured = math.isfinite(kwh) and kwh > 0
        if ENERGY_PER_WORK in self.declared and work and work[0] > 0 and measured:
            self.log(ENERGY_PER_WORK, kwh * PFS_DAY / work[0])

    def seed_everything(self) -> None:
        """Python's, numpy's and torch's global generators, from this run's seed."""
        import random

        import numpy as np
        import torch

        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)


class RunFiles:
    """The files a suite's runs wrote, as its figures read them: ``<folder>/<run_id>/<name>``."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, run_id: str, name: str) -> Path:
        """The file ``name`` of run ``run_id``; FileNotFoundError naming the run if it left none."""
        return _written(self.folder / run_id, name, f"run {run_id}")

    def load(self, run_id: str, name: str) -> np.ndarray | Any:
        """A ``.npy`` array or an ``.npz`` archive (its arrays by key), through numpy."""
        import numpy as np

        return np.load(self.path(run_id, name))


@dataclass(frozen=True)
class Experiment:
    """One experiment package: its declaration at once, its run and figures modules on first use."""

    name: str
    params: type[Params]
    metrics: dict[str, Metric]
    folder: Path
    # The data sets a run with these params reads.
    datasets: Callable[[Params], set[str]] = lambda params: set()

    @functools.cached_property
    def implementation(self) -> ModuleType:
        """``run.py``, checked against the contract: one runner, no drawing code imported."""
        module = self._module(RUN)
        runners = [n for n in RUNNERS if callable(getattr(module, n, None))]
        if len(runners) != 1:
            raise ContractError(f"{module.__name__}: define exactly one of "
                                f"{' and '.join(f'{n}({a})' for n, a in RUNNERS.items())}")
        _check_signature(module.__name__, getattr(module, runners[0]), 2)
        drawing = sorted(p.relative_to(_PACKAGE_ROOT.parent).as_posix()
                         for p in _imported_sources([self._file(RUN)]) if _draws(p))
        if drawing:
            raise ContractError(f"{module.__name__}: imports {', '.join(drawing)}; a run module "
                                f"must not import drawing code (it belongs in {FIGURES}.py)")
        if not self._file(FIGURES).is_file():
            raise ContractError(f"{PACKAGE}.{self.name}.{FIGURES}: no such module; an "
                                f"experiment's figures live in {FIGURES}.py beside its declaration")
        return module

    @functools.cached_property
    def drawing(self) -> ModuleType:
        """``figures.py``, checked against the contract."""
        module = self._module(FIGURES)
        if not callable(getattr(module, "figures", None)):
            raise ContractError(f"{module.__name__}: no figures(table, out_dir, files, published)")
        _check_signature(module.__name__, module.figures, 4)
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
        """The figures of the runs under ``artifacts``; none from a table with no successful run."""
        if not len(table):
            return []
        return self.drawing.figures(table, out_dir, RunFiles(artifacts), list(published))

    @functools.cached_property
    def code_hash(self) -> str:
        """What a run executes: the declaration, ``run.py`` and, transitively, the dlrepro modules
        they import (data loading, shared networks…). Part of every run_id, so that an edit to
        any of them reruns its runs, and an edit to drawing code does not."""
        return _hash_sources([self.folder / "__init__.py", self._file(RUN)])

    @functools.cached_property
    def figures_hash(self) -> str:
        """What the figures are drawn by: ``figures.py`` and the dlrepro modules it imports."""
        return _hash_sources([self._file(FIGURES)])

    def _file(self, module: str) -> Path:
        return self.folder / f"{module}.py"

    def _module(self, module: str) -> ModuleType:
        name = f"{PACKAGE}.{self.name}.{module}"
        if not self._file(module).is_file():
            raise ContractError(f"{name}: no such module; an experiment keeps it in "
                                f"{module}.py beside its declaration")
        return _import(name)


_PACKAGE_ROOT = Path(__file__).resolve().parent  # dlrepro/


def _draws(path: Path) -> bool:
    """Drawing code: ``dlrepro/plotting.py`` and every experiment's ``figures.py``."""
    return path == _PACKAGE_ROOT / "plotting.py" or (
        path.name == f"{FIGURES}.py" and path.parent.parent == _PACKAGE_ROOT / "experiments")


def _shown(path: Path | str) -> str:
    """A file as messages name it: from the project's root when it is in the project."""
    path = Path(path).resolve()
    return str(path.relative_to(_PACKAGE_ROOT.parent) if path.is_relative_to(_PACKAGE_ROOT.parent)
               else path)


def _import(name: str) -> ModuleType:
    """Import a module of an experiment; whatever stops it (a syntax error, a missing module, a
    name error) is a ContractError naming the file and the line, in one line."""
    try:
        return importlib.import_module(name)
    except SyntaxError as err:  # no frame of the broken file: the error itself says where
        raise _syntax_error(Path(err.filename or name), err) from None
    except Exception as err:
        frame = _culprit(traceback.extract_tb(err.__traceback__))
        first_line = _first_problem(err)
        raise ContractError(f"{_shown(frame.filename)}:{frame.lineno}: {type(err).__name__}: "
                            f"{first_line}") from None


def _first_problem(err: Exception) -> str:
    """What went wrong in one line: for a pydantic model built at import (a ``Metric``), its
    first error's field, message and the input it got, not the count of errors."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError) and err.errors():
        first = err.errors()[0]
        field = ".".join(map(str, first["loc"])) or err.title
        return f"{err.title}.{field}: {first['msg']} (got {first.get('input')!r})"
    return next(iter(str(err).splitlines()), "")


def _culprit(frames: traceback.StackSummary) -> traceback.FrameSummary:
    """The innermost frame in the project's files (an import that failed: the line importing);
    else the innermost outside importlib's own."""
    real = [f for f in frames if not f.filename.startswith("<")]
    ours = [f for f in real if Path(f.filename).resolve().is_relative_to(_PACKAGE_ROOT)]
    return (ours or real or frames)[-1]


def _parsed(path: Path) -> ast.Module:
    """A module's syntax tree; ContractError naming the file and the line of a syntax error."""
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as err:
        raise _syntax_error(path, err) from None


def _syntax_error(path: Path, err: SyntaxError) -> ContractError:
    return ContractError(f"{_shown(path)}:{err.lineno}: {type(err).__name__}: {err.msg}")


def _hash_sources(start: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(_imported_sources(start)):
        name = path.relative_to(_PACKAGE_ROOT.parent).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _check_signature(module: str, fn: Callable, arity: int) -> None:
    try:
        inspect.signature(fn).bind(*range(arity))
    except TypeError:
        raise ContractError(f"{module}: {fn.__name__} must take {arity} positional arguments") \
            from None


def _imported_sources(start: list[Path]) -> set[Path]:
    """The files of ``start`` and of every dlrepro module they import, transitively (read, not
    run)."""
    seen: set[Path] = set()
    todo = [p for p in start if p.exists()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(_parsed(path)):
            for name in _imported_names(path, node):
                found = _module_file(name)
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def _imported_names(path: Path, node: ast.AST) -> list[str]:
    """The modules an import statement of ``path`` may import (a name imported from a package may
    be a module); none for any other node."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        base = node.module if node.level == 0 else _relative(path, node.module, node.level)
        return [base] + [f"{base}.{alias.name}" for alias in node.names]
    return []


def _eager_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when a module is imported: not those inside a function,
    nor under ``if TYPE_CHECKING``."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _eager_imports(node.orelse)
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for block in ("body", "orelse", "finalbody"):
                yield from _eager_imports(getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                yield from _eager_imports(handler.body)


def _check_light(declaration: Path) -> None:
    """The declaration imports none of HEAVY when it is imported, directly or through a dlrepro
    module (read from the source: finding out by importing it would import them)."""
    todo = [(declaration, [])]
    seen = set()
    while todo:
        path, steps = todo.pop()
        seen.add(path)
        for node in _eager_imports(_parsed(path).body):
            here = [*steps, f"{_shown(path)}:{node.lineno}"]
            for name in _imported_names(path, node):
                if name.split(".")[0] in HEAVY:
                    raise ContractError(
                        f"{_shown(declaration)}: the declaration imports {name} (at "
                        f"{' → '.join(here)}); it is imported whenever a suite file loads, so it "
                        f"must not: import {name} in {RUN}.py, or inside the function that "
                        "needs it")
                found = _module_file(name)
                if found is not None and found not in seen:
                    todo.append((found, here))


def _check_argument_order(path: Path) -> None:
    """``run(params, ctx)``, not ``run(ctx, params)``: read from the source, so that a suite
    loads without importing run.py (and torch)."""
    if not path.is_file():
        return  # ``implementation`` says that it is missing, when a run needs it
    for node in _parsed(path).body:
        if not (isinstance(node, ast.FunctionDef) and node.name in RUNNERS):
            continue
        first_two = [*node.args.posonlyargs, *node.args.args][:2]
        if len(first_two) == 2 and (_says_context(first_two[0]) or _says_params(first_two[1])):
            given, expected = ", ".join(a.arg for a in first_two), RUNNERS[node.name]
            raise ContractError(f"{_shown(path)}:{node.lineno}: {node.name}({given}) takes its "
                                f"arguments in the wrong order: the runner calls "
                                f"{node.name}({expected}); write def {node.name}({expected})")


def _annotation(arg: ast.arg) -> str:
    return ast.unparse(arg.annotation) if arg.annotation else ""


def _says_context(arg: ast.arg) -> bool:
    return arg.arg in CONTEXT_NAMES or "RunContext" in _annotation(arg)


def _says_params(arg: ast.arg) -> bool:
    return arg.arg == "params" or _annotation(arg).split(".")[-1] == "Params"


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
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)])
                  if m.ispkg and not m.name.startswith("_"))


@functools.cache
def get(name: str) -> Experiment:
    """The experiment ``name``, its declaration checked, and what its run module's source shows;
    KeyError if there is none, ContractError naming the file and line if broken."""
    if name not in available():
        raise KeyError(name)
    _check_light(_PACKAGE_ROOT / "experiments" / name / "__init__.py")
    experiment = declared(_import(f"{PACKAGE}.{name}"))
    _check_argument_order(experiment._file(RUN))
    experiment.code_hash  # noqa: B018 — parses run.py and its imports: a syntax error is named now
    return experiment


def declared(module: ModuleType) -> Experiment:
    """Check a declaration module (``Params``, ``METRICS``) and wrap it."""
    name = module.__name__
    params: Any = getattr(module, "Params", None)
    if not (isinstance(params, type) and issubclass(params, Params)):
        raise ContractError(f"{name}: Params must be a subclass of dlrepro.experiment.Params")
    metrics: Any = getattr(module, "METRICS", None)
    if not (isinstance(metrics, dict) and metrics
            and all(isinstance(m, Metric) for m in metrics.values())):
        raise ContractError(f"{name}: METRICS must map every metric it logs to a "
                            "dlrepro.schema.Metric")
    datasets = getattr(module, "datasets", None)
    if datasets is not None and not callable(datasets):
        raise ContractError(f"{name}: datasets must be a function of the parameters")
    return Experiment(name.rsplit(".", 1)[-1], params, dict(metrics), Path(module.__file__).parent,
                      *([datasets] if datasets else []))
