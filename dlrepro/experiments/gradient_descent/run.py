"""E3's descents.

w_{t+1} = w_t − η ∇L(w_t) minimises the local model
L(w_t) + ∇L(w_t)(w − w_t) + (w − w_t)² / (2η).
The 1-D loss is EXPERIMENTS.md's reconstruction of the plotted curve.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
from torch.func import grad, hessian

from dlrepro.experiment import RunContext
from dlrepro.experiments.gradient_descent import Params

SETTLED = 1e-9  # |Δw| below which an iterate is a fixed point (float64)
DIVERGED = 1e3  # |w| beyond which a descent on [0, 1] has left for good
BRACKETS = 10_001  # grid points on [0, 1] that bracket each local minimum before Newton refines it
NEWTON_STEPS = 20  # from a bracket 1e-4 wide, float64 precision after a handful
INSIDE = 5e-3  # distance to a minimum within which a descent has ended in its basin


def loss(u: torch.Tensor) -> torch.Tensor:
    """EXPERIMENTS.md's double well on [0, 1], elementwise."""
    return (0.4222 * (u - 0.4193) ** 2 + 0.146
            - 0.1426 * torch.exp(-(u - 0.2717) ** 2 / (2 * 0.1822 ** 2))
            - 0.1313 * torch.exp(-(u - 0.9118) ** 2 / (2 * 0.1771 ** 2)))


def valley_floor(u):
    """Where the 2-D variant's valley runs: v = 0.3 + 0.4u."""
    return 0.3 + 0.4 * u


def valley(p: torch.Tensor) -> torch.Tensor:
    """The 2-D variant: the double well along u, a parabolic valley across it. Its minima are the
    1-D ones, lifted onto the valley floor."""
    u, v = p[..., 0], p[..., 1]
    return loss(u) + 2.0 * (v - valley_floor(u)) ** 2


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
    # torch.func's forward mode calls torch.jit.script itself and warns about it
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated",
                                category=FutureWarning)
        return hessian(loss)(torch.tensor(u, dtype=torch.float64)).item()


@functools.cache
def minima() -> tuple[float, ...]:
    """The local minima of L on [0, 1], deepest first: each bracketed on a fine grid, then
    refined by Newton's method on L' (float64)."""
    u = torch.linspace(0, 1, BRACKETS, dtype=torch.float64)
    values = loss(u)
    lowest = (values[1:-1] < values[:-2]) & (values[1:-1] < values[2:])
    slope = grad(loss)
    found = []
    for start in u[1:-1][lowest].tolist():
        w = start
        for _ in range(NEWTON_STEPS):
            w -= slope(torch.tensor(w, dtype=torch.float64)).item() / curvature(w)
        found.append(w)
    return tuple(sorted(found, key=lambda m: loss(torch.tensor(m, dtype=torch.float64)).item()))


def run(p: Params, ctx: RunContext) -> None:
    {"trajectory": _trajectory, "sweep": _sweep, "basins": _basins}[p.mode](p, ctx)


def _trajectory(p: Params, ctx: RunContext) -> None:
    path = descend(loss, torch.tensor(p.w0, dtype=torch.float64), p.eta, p.steps + 2)
    for t, w in enumerate(path[:p.iterates].tolist()):
        ctx.log("iterate", w, step=t)
    end, nxt, after = path[-3].item(), path[-2].item(), path[-1].item()
    diverged = not (np.isfinite([end, nxt, after]).all() and abs(end) <= DIVERGED)
    period = 0
    if not diverged and abs(nxt - end) < SETTLED:
        period = 1
    elif not diverged and abs(after - end) < SETTLED:
        period = 2
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


def _sweep(p: Params, ctx: RunContext) -> None:
    etas = torch.linspace(p.eta_min, p.eta_max, p.eta_count, dtype=torch.float64)
    path = descend(loss, torch.full_like(etas, p.w0), etas, p.sweep_steps + 2)
    settled = (path[-2] - path[-3]).abs() < SETTLED
    unsettled = (~settled).nonzero()
    observed = etas[unsettled[0, 0]].item() if len(unsettled) else None
    converged_to = path[-3][settled]
    # the minimum small steps reach
    target = converged_to[0].item() if len(converged_to) else minima()[0]
    theory = 2 / curvature(target)
    ctx.log("curvature", curvature(target))
    ctx.log("eta_critical_theory", theory)
    if len(unsettled):  # else every η of the range converged: no onset to report
        ctx.log("eta_critical_observed", observed)
        ctx.log("eta_critical_ratio", observed / theory)
    np.savez_compressed(ctx.artifact("sweep.npz"), etas=etas.numpy(), tail=path[-16:].numpy(),
                        theory=theory)


def _basins(p: Params, ctx: RunContext) -> None:
    u, v = torch.meshgrid(torch.linspace(0.05, 0.95, p.starts, dtype=torch.float64),
                          torch.linspace(0.1, 0.9, p.starts - 1, dtype=torch.float64),
                          indexing="ij")
    starts = torch.stack([u.flatten(), v.flatten()], dim=1)
    path = descend(valley, starts, p.eta, p.steps)
    deep, shallow = minima()
    lifted = torch.tensor([[m, valley_floor(m)] for m in (deep, shallow)], dtype=torch.float64)
    distance = torch.cdist(path[-1], lifted)
    nearest = distance.argmin(dim=1)
    inside = distance.min(dim=1).values < INSIDE
    ctx.log("starts", len(starts))
    ctx.log("ended_deep", int((inside & (nearest == 0)).sum()))
    ctx.log("ended_shallow", int((inside & (nearest == 1)).sum()))
    ctx.log("ended_elsewhere", int((~inside).sum()))
    np.savez_compressed(ctx.artifact("basins.npz"), path=path.numpy(), minima=lifted.numpy())
