"""E3's descents and figures.

w_{t+1} = w_t − η ∇L(w_t) minimises the local model L(w_t) + ∇L(w_t)(w − w_t) + (w − w_t)² / (2η).
The 1-D loss is EXPERIMENTS.md's reconstruction of the plotted curve.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.func import grad, hessian

from dlrepro.experiment import RunContext
from dlrepro.experiments.gradient_descent import Params
from dlrepro.plotting import save

GLOBAL_MIN, SHALLOW_MIN = 0.2974, 0.8107  # EXPERIMENTS.md, after 200 steps
PUBLISHED = {  # (η, w0): the slides' 12 iterates
    (0.125, 0.578): [.578, .550, .513, .465, .411, .361, .327, .310, .302, .299, .298, .297],
    (0.125, 0.683): [.683, .691, .699, .710, .721, .734, .747, .759, .771, .781, .789, .795],
    (0.5, 0.578): [.578, .468, .251, .366, .224, .404, .211, .420, .214, .417, .213, .418],
}
SETTLED = 1e-9  # |Δw| below which an iterate is a fixed point (float64)
DIVERGED = 1e3  # |w| beyond which a descent on [0, 1] has left for good


def loss(u: torch.Tensor) -> torch.Tensor:
    """EXPERIMENTS.md's double well on [0, 1], elementwise."""
    return (0.4222 * (u - 0.4193) ** 2 + 0.146
            - 0.1426 * torch.exp(-(u - 0.2717) ** 2 / (2 * 0.1822 ** 2))
            - 0.1313 * torch.exp(-(u - 0.9118) ** 2 / (2 * 0.1771 ** 2)))


def valley(p: torch.Tensor) -> torch.Tensor:
    """The 2-D variant: the double well along u, a parabolic valley v = 0.3 + 0.4u across it.
    Its minima are the 1-D ones, lifted onto the valley floor."""
    u, v = p[..., 0], p[..., 1]
    return loss(u) + 2.0 * (v - (0.3 + 0.4 * u)) ** 2


def descend(f, w0: torch.Tensor, eta: torch.Tensor | float, steps: int) -> torch.Tensor:
    """All iterates w_0..w_steps, for a batch of independent starts (and step sizes), at once.

    ``f`` maps one point (a scalar, or the last axis of a point) to its loss, elementwise over the
    batch; the gradient of the sum is then each start's own gradient."""
    g = grad(lambda w: f(w).sum())
    path = [w0]
    for _ in range(steps):
        path.append(path[-1] - eta * g(path[-1]))
    return torch.stack(path)


def curvature(u: float) -> float:
    with warnings.catch_warnings():  # torch.func's forward mode calls torch.jit.script itself and warns about it
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
        return hessian(loss)(torch.tensor(u, dtype=torch.float64)).item()


def run(p: Params, ctx: RunContext) -> None:
    {"trajectory": _trajectory, "sweep": _sweep, "basins": _basins}[p.mode](p, ctx)


def _trajectory(p: Params, ctx: RunContext) -> None:
    path = descend(loss, torch.tensor(p.w0, dtype=torch.float64), p.eta, p.steps + 2)
    for t, w in enumerate(path[:p.iterates].tolist()):
        ctx.log("iterate", w, step=t)
    end, nxt, after = path[-3].item(), path[-2].item(), path[-1].item()
    diverged = not (np.isfinite([end, nxt, after]).all() and abs(end) <= DIVERGED)
    period = 0 if diverged else 1 if abs(nxt - end) < SETTLED else 2 if abs(after - end) < SETTLED else 0
    ctx.log("period", period)
    ctx.log("diverged", float(diverged))
    if diverged:  # no finite place to report
        return
    ctx.log("final", end)
    ctx.log("final_loss", loss(path[-3]).item())
    if period == 2:
        ctx.log("cycle_low", min(end, nxt))
        ctx.log("cycle_high", max(end, nxt))
        ctx.log("cycle_amplitude", abs(nxt - end))
    published = PUBLISHED.get((p.eta, p.w0))
    if published:
        gap = (path[:len(published)] - torch.tensor(published, dtype=torch.float64)).abs().max().item()
        ctx.log("published_max_gap", gap)


def _sweep(p: Params, ctx: RunContext) -> None:
    etas = torch.linspace(p.eta_min, p.eta_max, p.eta_count, dtype=torch.float64)
    path = descend(loss, torch.full_like(etas, p.w0), etas, p.sweep_steps + 2)
    settled = (path[-2] - path[-3]).abs() < SETTLED
    unsettled = (~settled).nonzero()
    observed = etas[unsettled[0, 0]].item() if len(unsettled) else None
    converged_to = path[-3][settled]
    target = converged_to[0].item() if len(converged_to) else GLOBAL_MIN  # the minimum small steps reach
    theory = 2 / curvature(target)
    ctx.log("curvature", curvature(target))
    ctx.log("eta_critical_theory", theory)
    if len(unsettled):  # else every η of the range converged: no onset to report
        ctx.log("eta_critical_observed", observed)
        ctx.log("eta_critical_ratio", observed / theory)
    np.savez_compressed(ctx.artifact("sweep.npz"), etas=etas.numpy(), tail=path[-16:].numpy(), theory=theory)


def _basins(p: Params, ctx: RunContext) -> None:
    u, v = torch.meshgrid(torch.linspace(0.05, 0.95, p.starts, dtype=torch.float64),
                          torch.linspace(0.1, 0.9, p.starts - 1, dtype=torch.float64), indexing="ij")
    starts = torch.stack([u.flatten(), v.flatten()], dim=1)
    path = descend(valley, starts, p.eta, p.steps)
    minima = torch.tensor([[m, 0.3 + 0.4 * m] for m in (GLOBAL_MIN, SHALLOW_MIN)], dtype=torch.float64)
    distance = torch.cdist(path[-1], minima)
    nearest = distance.argmin(dim=1)
    inside = distance.min(dim=1).values < 5e-3
    ctx.log("starts", len(starts))
    ctx.log("ended_deep", int((inside & (nearest == 0)).sum()))
    ctx.log("ended_shallow", int((inside & (nearest == 1)).sum()))
    ctx.log("ended_elsewhere", int((~inside).sum()))
    np.savez_compressed(ctx.artifact("basins.npz"), path=path.numpy(), minima=minima.numpy())


def figures(table: pd.DataFrame, out_dir: Path, artifacts: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    written = []
    runs = table[table["mode"] == "trajectory"]
    if not runs.empty:
        configs = runs[["eta", "w0"]].drop_duplicates().sort_values(["eta", "w0"]).values.tolist()
        fig, axes = plt.subplots(1, len(configs), figsize=(5 * len(configs), 4), squeeze=False)
        for ax, (eta, w0) in zip(axes[0], configs):
            rows = runs[(runs["eta"] == eta) & (runs["w0"] == w0) & (runs["metric"] == "iterate")].sort_values("step")
            _draw_descent(ax, eta, w0, rows["value"].to_numpy())
        written.append(save(fig, out_dir / "gd_trajectories.png"))
    for mode, draw in (("sweep", _draw_sweep), ("basins", _draw_basins)):
        rows = table[table["mode"] == mode]
        if rows.empty:
            continue
        data = np.load(artifacts / rows["run_id"].iloc[0] / f"{mode}.npz")
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        draw(ax, data)
        written.append(save(fig, out_dir / f"gd_{mode}.png"))
    return written


def _draw_descent(ax, eta: float, w0: float, iterates: np.ndarray) -> None:
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
    published = PUBLISHED.get((eta, w0))
    if published:
        ax.plot(published, loss(torch.tensor(published)), "x", color="C3", ms=7, label="published")
    ax.set_ylim(float(loss(u).min()) - 0.02, float(loss(u).max()) + 0.02)
    ax.set_xlim(0, 1)
    ax.set_title(f"η = {eta:g}, w0 = {w0:g}")
    ax.set_xlabel("w")
    ax.legend(fontsize=8, loc="upper center")


def _draw_sweep(ax, data) -> None:
    etas, tail = data["etas"], data["tail"]
    ax.plot(np.repeat(etas[None], len(tail), 0).ravel(), tail.ravel(), ",", color="C0")
    ax.axvline(float(data["theory"]), color="C3", ls="--", label=f"2 / L''(u*) = {float(data['theory']):.3f}")
    ax.set_xlabel("η")
    ax.set_ylabel("last 16 iterates")
    ax.set_title("Where the descent ends, by step size (from w0 = 0.578)")
    ax.legend()


def _draw_basins(ax, data) -> None:
    g = torch.linspace(0, 1, 200, dtype=torch.float64)
    u, v = torch.meshgrid(g, g, indexing="xy")
    ax.contourf(u, v, valley(torch.stack([u, v], -1)), levels=30, cmap="viridis")
    for path in np.transpose(data["path"], (1, 0, 2)):
        ax.plot(path[:, 0], path[:, 1], "w-", lw=0.7)
        ax.plot(path[0, 0], path[0, 1], "wo", ms=3)
    ax.plot(*data["minima"].T, "r*", ms=12, label="minima (deep, shallow)")
    ax.set_xlabel("u")
    ax.set_ylabel("v")
    ax.set_title("2-D: each start ends in one basin")
    ax.legend(loc="lower right", fontsize=8)
