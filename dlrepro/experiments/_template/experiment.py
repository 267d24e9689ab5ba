"""TEMPLATE — the *implementation*: how one run goes, and the slide's figures. Imports torch freely.

Define exactly one of ``run(params, ctx)`` (one seed per call) and ``run_seeds(params, ctxs)``
(every seed of one configuration at once, e.g. as a stacked model: each ctx logs its own seed's
metrics). The global generators are already seeded from ``ctx.seed`` when it is called; anything
it raises, or a NaN it logs, makes the run "failed" with the traceback — the others go on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

from dlrepro.experiment import RunContext
from dlrepro.experiments._template import Params
from dlrepro.nets import mlp
from dlrepro.plotting import save


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


def figures(table: pd.DataFrame, out_dir: Path, artifacts: Path) -> list[Path]:
    """Draw from ``table`` (one row per logged value of a successful run, with the run's parameters
    and seed as columns) and the runs' files (``artifacts / run_id / name``); return what was
    written. Never called with an empty table."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    curves = table[(table["metric"] == "loss") & table["step"].notna()]
    for width, rows in curves.groupby("width"):
        curve = rows.groupby("step")["value"].mean()
        ax.plot(curve.index, curve.values, label=f"width {width}")
    ax.set(xlabel="step", ylabel="loss", yscale="log", title="Template: fitting |x|")
    ax.legend()
    return [save(fig, out_dir / "loss.png")]
