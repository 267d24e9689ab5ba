"""E2's training.

The target is a terrain profile: row 319 of matplotlib's sample DEM ``jacksboro_fault_dem.npz``
(USGS, 403 points, 251–1035 m), the east-west transect with the most relief, so the most hills to
follow. x and heights are standardised.

Training: full batch, Adam (lr 1e-2) with a cosine decay to zero, and every ``lstsq_every`` steps
the output layer replaced by its least-squares optimum on the current kinks (variable projection:
the output layer is a linear problem, so solve it exactly and let Adam move only what is not).
Plain Adam (``lstsq_every = 0``) leaves H = 1000 at 0.023 after 3000 steps, no better than H = 100,
while its own kinks allow 0.009; with a solve every 100 steps H = 100 reaches 0.002–0.004 and
H = 1000 ~5e-6, an overlay, and the linear control is the best line. The initial kinks are spread
uniformly over the data range (each unit is ±(x − k_j)), so no unit starts dead or outside the
data. All seeds of one configuration train as one stacked model: the loss is the sum of the seeds'
losses, so each seed's gradients, and Adam's per-parameter steps, are its own.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from dlrepro.experiment import RunContext
from dlrepro.experiments.universal_approximation import Params

TRANSECT_ROW = 319
# Seeds stacked per model, capped so the [S, N, H] activations stay cache-sized: stacking is 4×
# faster
# at H = 10, 2.5× at H = 100, but 0.8× at H = 1000 on a 2-core CPU (benchmarks/stacked_seeds.py).
STACK_ELEMENTS = 250_000


@functools.cache
def terrain() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The standardised transect (x, y) and the raw heights in metres."""
    from matplotlib import cbook

    elevation = cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"]
    heights = np.asarray(elevation[TRANSECT_ROW], dtype=np.float64)
    x = np.arange(len(heights), dtype=np.float64)
    return (x - x.mean()) / x.std(), (heights - heights.mean()) / heights.std(), heights


def init(seeds: list[int], hidden: int, x: torch.Tensor) -> list[torch.Tensor]:
    """Stacked parameters [S, H] (b3: [S]), each seed from its own generator: kinks spread over
    x."""
    params = [[], [], [], []]
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        kinks = x.min() + (x.max() - x.min()) * torch.rand(hidden, generator=g, dtype=x.dtype)
        w1 = torch.where(torch.rand(hidden, generator=g) < 0.5, -1.0, 1.0).to(x.dtype)
        w3 = torch.randn(hidden, generator=g, dtype=x.dtype) / hidden ** 0.5
        for slot, value in zip(params, (w1, -w1 * kinks, w3, torch.zeros((), dtype=x.dtype))):
            slot.append(value)
    return [torch.stack(p).requires_grad_() for p in params]


def hidden_features(params, x: torch.Tensor, activation: str) -> torch.Tensor:
    w1, b1 = params[0], params[1]
    pre = x[None, :, None] * w1[:, None, :] + b1[:, None, :]  # [S, N, H]
    return torch.relu(pre) if activation == "relu" else pre


def predict(params, x: torch.Tensor, activation: str) -> torch.Tensor:
    weighted = hidden_features(params, x, activation) * params[2][:, None, :]
    return weighted.sum(-1) + params[3][:, None]


def train(seeds: list[int], p: Params, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    params = init(seeds, p.hidden, x)
    opt = torch.optim.Adam(params, lr=p.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p.steps)
    for step in range(p.steps):
        if p.lstsq_every and step % p.lstsq_every == 0:
            solve_output_layer(params, x, y, p.activation)
        loss = ((predict(params, x, p.activation) - y) ** 2).mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    return params


def best_output_layer(features: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The least-squares output layer on fixed features [N, H] (float64, minimum norm where the
    kinks are redundant): the design matrix with a column of ones, and its coefficients (weights,
    then bias)."""
    design = torch.cat([features, torch.ones_like(features[:, :1])], dim=1).double()
    solution = torch.linalg.lstsq(design, y.double()[:, None], driver="gelsd").solution
    return design, solution.squeeze(1)


@torch.no_grad()
def solve_output_layer(params, x: torch.Tensor, y: torch.Tensor, activation: str) -> None:
    """Set each stacked seed's output weights and bias to their optimum on its current kinks.

    The features are computed in float64: in float32 their rounding (1e-7) looks like signal to the
    solver, and the linear control's rank-2 features got huge weights fitting that noise, which the
    next Adam steps turned into a line ten times worse than the best one."""
    exact = [p.double() for p in params]
    for s, features in enumerate(hidden_features(exact, x.double(), activation)):
        coef = best_output_layer(features, y)[1].to(x.dtype)
        params[2][s], params[3][s] = coef[:-1], coef[-1]


def lstsq_mse(features: torch.Tensor, y: torch.Tensor) -> float:
    """MSE of the best output layer on fixed features [N, H]: what the kinks allow."""
    design, coef = best_output_layer(features, y)
    return (design @ coef - y).pow(2).mean().item()


def run_seeds(p: Params, ctxs: list[RunContext]) -> None:
    xs, ys, _ = terrain()
    x, y = torch.from_numpy(xs), torch.from_numpy(ys)
    per_model = max(1, STACK_ELEMENTS // (len(x) * p.hidden))
    chunks = [ctxs[i:i + per_model] for i in range(0, len(ctxs), per_model)]
    # float32: 3× faster than float64 here
    trained = [train([c.seed for c in chunk], p, x.float(), y.float()) for chunk in chunks]
    params = [torch.cat(t) for t in zip(*trained)]
    line = lstsq_mse(x[:, None], y)
    with torch.no_grad():  # evaluated in float64, so the least-squares comparisons are exact
        params = [t.double() for t in params]
        fits = predict(params, x, p.activation)
        features = hidden_features(params, x, p.activation)
    for i, ctx in enumerate(ctxs):
        mse = (fits[i] - y).pow(2).mean().item()
        ctx.log("train_mse", mse)
        bound = lstsq_mse(features[i], y)
        ctx.log("lstsq_mse", bound)
        ctx.log("optimisation_gap", mse - bound)
        ctx.log("line_mse", line)
        ctx.log("excess_over_line", mse - line)
        ctx.log("max_error", (fits[i] - y).abs().max().item())
        np.save(ctx.artifact("fit.npy"), fits[i].numpy())
