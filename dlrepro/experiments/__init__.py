"""The experiments a suite can name. Each is a module here with:

- ``Params``: a pydantic model of its parameters (unknown ones are rejected);
- ``run(params, ctx)``: one run; it logs metrics with ``ctx.log`` and may write artifacts;
- optionally ``figures(table, out_dir)``: draws the slide's figures from the result table
  (metrics joined with run parameters) and returns the paths written.
"""

import functools
import hashlib
import importlib
import inspect
import pkgutil
from types import ModuleType


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    if name not in available():
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}")


@functools.cache
def code_hash(module: ModuleType) -> str:
    """Hash of the experiment's source: part of every run_id, so an edit reruns its runs."""
    return hashlib.sha256(inspect.getsource(module).encode()).hexdigest()[:12]
