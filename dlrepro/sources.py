"""An experiment's source, read rather than run: the dlrepro modules it imports (transitively),
their hash (a run's identity), the contract checks made from the source alone (a declaration
that imports something heavy, a runner with swapped arguments, drawing code in a run module), and
an import that fails as one line naming the file and the line."""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from dlrepro.errors import Refused

RUN, FIGURES = "run", "figures"  # the modules beside the declaration (they import torch)
# What run.py defines (one of them), with the arguments the runner passes, in order.
RUNNERS = {"run": "params, ctx", "run_seeds": "params, ctxs"}
# What a declaration may not import, even through a dlrepro module: a suite loads without them.
HEAVY = frozenset({"torch", "torchvision", "pandas", "ray"})
CONTEXT_NAMES = frozenset({"ctx", "ctxs", "context", "contexts"})

PACKAGE_ROOT = Path(__file__).resolve().parent  # dlrepro/


def draws(path: Path) -> bool:
    """Drawing code: ``dlrepro/plotting.py`` and every experiment's ``figures.py``."""
    return path == PACKAGE_ROOT / "plotting.py" or (
        path.name == f"{FIGURES}.py" and path.parent.parent == PACKAGE_ROOT / "experiments")


def shown(path: Path | str) -> str:
    """A file as messages name it: from the project's root when it is in the project."""
    path = Path(path).resolve()
    return str(path.relative_to(PACKAGE_ROOT.parent) if path.is_relative_to(PACKAGE_ROOT.parent)
               else path)


def import_module(name: str) -> ModuleType:
    """Import a module of an experiment; whatever stops it (a syntax error, a missing module, a
    name error) is a Refused naming the file and the line, in one line."""
    try:
        return importlib.import_module(name)
    except SyntaxError as err:  # no frame of the broken file: the error itself says where
        raise _syntax_error(Path(err.filename or name), err) from None
    except Exception as err:
        frame = _culprit(traceback.extract_tb(err.__traceback__))
        first_line = _first_problem(err)
        raise Refused(f"{shown(frame.filename)}:{frame.lineno}: {type(err).__name__}: "
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
    ours = [f for f in real if Path(f.filename).resolve().is_relative_to(PACKAGE_ROOT)]
    return (ours or real or frames)[-1]


def parsed(path: Path) -> ast.Module:
    """A module's syntax tree; Refused naming the file and the line of a syntax error."""
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as err:
        raise _syntax_error(path, err) from None


def _syntax_error(path: Path, err: SyntaxError) -> Refused:
    return Refused(f"{shown(path)}:{err.lineno}: {type(err).__name__}: {err.msg}")


def hash_sources(start: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(imported_sources(start)):
        name = path.relative_to(PACKAGE_ROOT.parent).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def check_signature(module: str, fn: Callable, arity: int) -> None:
    try:
        inspect.signature(fn).bind(*range(arity))
    except TypeError:
        raise Refused(f"{module}: {fn.__name__} must take {arity} positional arguments") \
            from None


def imported_sources(start: list[Path]) -> set[Path]:
    """The files of ``start`` and of every dlrepro module they import, transitively (read, not
    run)."""
    seen: set[Path] = set()
    todo = [p for p in start if p.exists()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(parsed(path)):
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


def check_light(declaration: Path) -> None:
    """The declaration imports none of HEAVY when it is imported, directly or through a dlrepro
    module (read from the source: finding out by importing it would import them)."""
    todo = [(declaration, [])]
    seen = set()
    while todo:
        path, steps = todo.pop()
        seen.add(path)
        for node in _eager_imports(parsed(path).body):
            here = [*steps, f"{shown(path)}:{node.lineno}"]
            for name in _imported_names(path, node):
                if name.split(".")[0] in HEAVY:
                    raise Refused(
                        f"{shown(declaration)}: the declaration imports {name} (at "
                        f"{' → '.join(here)}); it is imported whenever a suite file loads, so it "
                        f"must not: import {name} in {RUN}.py, or inside the function that "
                        "needs it")
                found = _module_file(name)
                if found is not None and found not in seen:
                    todo.append((found, here))


def check_argument_order(path: Path) -> None:
    """``run(params, ctx)``, not ``run(ctx, params)``: read from the source, so that a suite
    loads without importing run.py (and torch)."""
    if not path.is_file():
        return  # ``implementation`` says that it is missing, when a run needs it
    for node in parsed(path).body:
        if not (isinstance(node, ast.FunctionDef) and node.name in RUNNERS):
            continue
        first_two = [*node.args.posonlyargs, *node.args.args][:2]
        if len(first_two) == 2 and (_says_context(first_two[0]) or _says_params(first_two[1])):
            given, expected = ", ".join(a.arg for a in first_two), RUNNERS[node.name]
            raise Refused(f"{shown(path)}:{node.lineno}: {node.name}({given}) takes its "
                                f"arguments in the wrong order: the runner calls "
                                f"{node.name}({expected}); write def {node.name}({expected})")


def _annotation(arg: ast.arg) -> str:
    return ast.unparse(arg.annotation) if arg.annotation else ""


def _says_context(arg: ast.arg) -> bool:
    return arg.arg in CONTEXT_NAMES or "RunContext" in _annotation(arg)


def _says_params(arg: ast.arg) -> bool:
    return arg.arg == "params" or _annotation(arg).split(".")[-1] == "Params"


def _relative(path: Path, module: str, level: int) -> str:
    package = path.parent.relative_to(PACKAGE_ROOT.parent).parts
    return ".".join(package[: len(package) - level + 1] + tuple(module.split(".")))


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "dlrepro":
        return None
    base = PACKAGE_ROOT.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None
