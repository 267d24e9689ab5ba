"""TEMPLATE — what a run executes. Imports torch freely; never a figures module or
dlrepro.experiments.plotting (drawing code is figures.py's). This module, the declaration and every
dlrepro module they import are the run's identity: editing any of them reruns the runs.

Define exactly one of ``run(params, ctx)`` (one seed per call) and ``run_seeds(params, ctxs)``
(every seed of one configuration at once, e.g. as a stacked model: each ctx logs its own seed's
metrics). The global generators are already seeded from ``ctx.seed`` when it is called; anything
it raises, or a NaN it logs, makes the run "failed" with the traceback — the others go on.
"""

from __future__ import annotations

import time

import torch

from dlrepro.experiment import RunContext
from . import Params  # the declaration of this package, whatever its name
from dlrepro.experiments.nets import mlp


def run(params: Params, ctx: RunContext) -> None:
    start = time.perf_counter()
    x = torch.linspace(-1, 1, 64, device=ctx.device)[:, None]
    model = mlp([1, params.width, 1]).to(ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=params.lr)
    for step in range(1, params.steps + 1):
        loss = (model(x) - x.abs()).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ctx.log("loss", loss.item(), step)  # a curve: one value per step
    ctx.log("loss", loss.item())  # a final value: no step
    ctx.log("train_time_s", time.perf_counter() - start)
    torch.save(model.state_dict(), ctx.artifact("model.pt"))  # files go under ctx.artifact(name)
