"""E3's figures: the published trajectories against ours with the local models each step
minimises, where the descent ends by step size, and the 2-D basins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.func import grad

from dlrepro.experiment import RunFiles
from dlrepro.experiments.gradient_descent.run import loss, valley
from dlrepro.experiments.plotting import panels, save, select
from dlrepro.schema import Approx


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles,
            published: list[Approx]) -> list[Path]:
    written = []
    runs = select(table, mode="trajectory")
    if not runs.empty:
        configs = runs[["eta", "w0"]].drop_duplicates().sort_values(["eta", "w0"]).values.tolist()
        fig, axes = panels(len(configs), 5, 4)
        for ax, (eta, w0) in zip(axes, configs):
            iterates = select(runs, "iterate", eta=eta, w0=w0).sort_values("step")["value"]
            _draw_descent(ax, eta, w0, iterates.to_numpy(), _published_iterates(published, eta, w0))
        written.append(save(fig, out_dir / "gd_trajectories.png"))
    # a panel per value that ran of the parameter a mode's title names, as a sweep's may vary
    for mode, key, draw in (("sweep", "w0", _draw_sweep), ("basins", "eta", _draw_basins)):
        runs = select(table, mode=mode)
        if runs.empty:  # as under --only, which also drops the columns of modes not run
            continue
        runs = runs.drop_duplicates(key).sort_values(key)
        fig, axes = panels(len(runs), 6.5, 4.5)
        for ax, (_, run) in zip(axes, runs.iterrows()):
            draw(ax, files.load(run["run_id"], f"{mode}.npz"), run)
        written.append(save(fig, out_dir / f"gd_{mode}.png"))
    return written


def _published_iterates(published: list[Approx], eta: float, w0: float) -> list[float] | None:
    """The slide's iterates from this start at this step size: the suite's claim on them."""
    return next((claim.value for claim in published if claim.metric == "iterate"
                 and claim.where.get("eta") == eta and claim.where.get("w0") == w0), None)


def _draw_descent(ax, eta: float, w0: float, iterates: np.ndarray,
                  published: list[float] | None) -> None:
    """The curve, the iterates, and the quadratic model (curvature 1/η) each step minimises."""
    u = torch.linspace(0, 1, 400, dtype=torch.float64)
    ax.plot(u, loss(u), "k", lw=1.5, label="L(u)")
    w = torch.tensor(iterates, dtype=torch.float64)
    slope = grad(lambda x: loss(x).sum())(w)
    for t in range(min(4, len(w) - 1)):
        span = torch.linspace(w[t] - 0.25, w[t] + 0.25, 100, dtype=torch.float64)
        model = loss(w[t]) + slope[t] * (span - w[t]) + (span - w[t]) ** 2 / (2 * eta)
        ax.plot(span, model, "--", color="C1", lw=0.9, label="local model" if t == 0 else None)
    ax.plot(w, loss(w), "o-", color="C0", ms=4, lw=0.8, label="iterates")
    if published:
        ax.plot(published, loss(torch.tensor(published)), "x", color="C3", ms=7, label="published")
    ax.set_ylim(float(loss(u).min()) - 0.02, float(loss(u).max()) + 0.02)
    ax.set_xlim(0, 1)
    ax.set_title(f"η = {eta:g}, w0 = {w0:g}")
    ax.set_xlabel("w")
    ax.legend(fontsize=8, loc="upper center")


def _draw_sweep(ax, data, run: pd.Series) -> None:
    etas, tail = data["etas"], data["tail"]
    theory = float(data["theory"])
    ax.plot(np.repeat(etas[None], len(tail), 0).ravel(), tail.ravel(), ",", color="C0")
    ax.axvline(theory, color="C3", ls="--", label=f"2 / L''(u*) = {theory:.3f}")
    ax.set_xlabel("η")
    ax.set_ylabel("last 16 iterates")
    ax.set_title(f"Where the descent ends, by step size (from w0 = {run['w0']:g})")
    ax.legend()


def _draw_basins(ax, data, run: pd.Series) -> None:
    g = torch.linspace(0, 1, 200, dtype=torch.float64)
    u, v = torch.meshgrid(g, g, indexing="xy")
    ax.contourf(u, v, valley(torch.stack([u, v], -1)), levels=30, cmap="viridis")
    for path in np.transpose(data["path"], (1, 0, 2)):
        ax.plot(path[:, 0], path[:, 1], "w-", lw=0.7)
        ax.plot(path[0, 0], path[0, 1], "wo", ms=3)
    ax.plot(*data["minima"].T, "r*", ms=12, label="minima (deep, shallow)")
    ax.set_xlabel("u")
    ax.set_ylabel("v")
    ax.set_title(f"2-D: each start ends in one basin (η = {run['eta']:g})")
    ax.legend(loc="lower right", fontsize=8)
