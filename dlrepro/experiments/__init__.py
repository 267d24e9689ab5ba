"""The experiments a suite can name. Each is a module here with:

- ``Params``: a pydantic model of its parameters (unknown ones are rejected);
- ``run(params, ctx)``: one run; it logs metrics with ``ctx.log`` and may write files under
  ``ctx.artifact(name)``; or ``run_seeds(params, ctxs)``: the runs of several seeds with the same
  parameters at once (stacked models), each seed's metrics logged on its own ctx;
- optionally ``METRICS``: declarations of the metrics it logs (as a suite's ``[metrics]``), shared
  by every suite that runs it; a suite's own declaration of a metric wins;
- optionally ``figures(table, out_dir, artifacts)``: draws the slide's figures from the result
  table (metrics joined with run parameters) and the runs' files under ``artifacts/<run_id>/``,
  and returns the paths written.
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
