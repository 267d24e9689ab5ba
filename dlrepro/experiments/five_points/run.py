"""E8's fits.

x is divided by 10 before building φ(x) = [1, x, …, x^d] (x^20 would reach 1e19 and wreck the
conditioning). For d ≥ 5 the system is under-determined and ``lstsq`` (gelsd) returns the
minimum-norm interpolant — in those scaled coordinates, which is the slide's "wild" d = 20 curve.
"""

from __future__ import annotations

import torch

from dlrepro.experiment import RunContext
from dlrepro.experiments.five_points import Params
from dlrepro.experiments.nets import mlp

X = [-3.1, 1.2, 4.3, 6.2, 9.1]
Y = [23.7, 31.3, 79.9, 101.9, 205.5]
CLASS_X = [[1.2, -3.4], [2.3, 2.8], [-0.7, 1.2], [3.2, -0.4], [-1.3, 2.3]]
CLASS_Y = [0, 0, 1, 1, 2]
SCALE = 10.0
ZERO = 1e-12  # relative MSE below which a fit interpolates (float64 residue)


def poly_fit(x: torch.Tensor, y: torch.Tensor, degree: int) -> torch.Tensor:
    """Least-squares (minimum-norm when under-determined) coefficients on φ(x / 10)."""
    design = (x[:, None] / SCALE) ** torch.arange(degree + 1, dtype=x.dtype)
    return torch.linalg.lstsq(design, y[:, None], driver="gelsd").solution.squeeze(1)


def poly_eval(coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return ((x[:, None] / SCALE) ** torch.arange(len(coef), dtype=x.dtype)) @ coef


def widths(inputs: int, outputs: int, p: Params) -> list[int]:
    """``p.layers`` linear layers of width ``p.hidden`` between the inputs and the outputs."""
    return [inputs] + [p.hidden] * (p.layers - 1) + [outputs]


def fit(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, loss_fn,
        p: Params) -> torch.nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    for _ in range(p.steps):
        loss = loss_fn(model(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model


def run(p: Params, ctx: RunContext) -> None:
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)
    variance = y.var(unbiased=False).item()
    if p.task == "poly":
        train = (poly_eval(poly_fit(x, y, p.degree), x) - y).pow(2).mean().item()
        held_out = [(poly_eval(poly_fit(x[keep], y[keep], p.degree), x[i:i + 1]) - y[i])
                    .pow(2).item()
                    for i in range(len(x)) for keep in [torch.arange(len(x)) != i]]
        # numerically zero: it interpolates
        ctx.log("train_mse", 0.0 if train < ZERO * variance else train)
        ctx.log("loo_mse", sum(held_out) / len(held_out))
    elif p.task == "mlp":
        # float32: 2× faster
        xs, ys = ((x - x.mean()) / x.std()).float(), ((y - y.mean()) / y.std()).float()
        model = fit(mlp(widths(1, 1, p)), xs[:, None], ys[:, None], torch.nn.functional.mse_loss, p)
        with torch.no_grad():
            prediction = model(xs[:, None]).squeeze(1).double() * y.std() + y.mean()
        ctx.log("train_mse", (prediction - y).pow(2).mean().item())
        ctx.log("relative_train_mse", (prediction - y).pow(2).mean().item() / variance)
    else:
        points, labels = torch.tensor(CLASS_X), torch.tensor(CLASS_Y)
        model = fit(mlp(widths(2, 3, p)), points, labels, torch.nn.functional.cross_entropy, p)
        with torch.no_grad():
            logits = model(points)  # loss −ln softmax(o)[y]; predicted class argmax o
        ctx.log("cross_entropy", torch.nn.functional.cross_entropy(logits, labels).item())
        ctx.log("accuracy", (logits.argmax(1) == labels).float().mean().item())
