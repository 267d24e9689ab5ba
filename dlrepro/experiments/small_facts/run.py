"""E9's facts, computed; the vanishing-gradient probe uses PyTorch's default initialisation, a
random batch and a mean-squared loss against random targets."""

from __future__ import annotations

import torch

from dlrepro.experiment import RunContext
from dlrepro.experiments.small_facts import Params
from dlrepro.experiments.nets import mlp, mnist_cnn, parameter_count


def run(p: Params, ctx: RunContext) -> None:
    if p.fact == "autograd":  # 002: t = [1, 2, 4], ∇ Σ t² = [2, 4, 8]
        t = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
        (t ** 2).sum().backward()
        for i, value in enumerate(t.grad.tolist()):
            ctx.log("gradient", value, step=i)
    elif p.fact == "conv_derivative":
        # 002: (0,0,0,0,1,2,3,4,4,4,4) ⊛ (−1, 1) = (0,0,0,1,1,1,1,0,0,0)
        signal = torch.tensor([[[0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4]]], dtype=torch.float32)
        out = torch.nn.functional.conv1d(signal, torch.tensor([[[-1.0, 1.0]]]))
        for i, value in enumerate(out.flatten().tolist()):
            ctx.log("derivative", value, step=i)
    elif p.fact == "parameter_counts":
        # 002: a linear map between two 256×256 colour images (too big to build)
        side = 256 * 256 * 3
        # the count formula, checked on a map one can build
        small = torch.nn.Linear(7, 7, bias=False)
        if parameter_count(small) != 7 ** 2:
            raise AssertionError("a bias-free linear map n → n should have n² parameters")
        ctx.log("image_linear_map_params", side ** 2)
        # 001: 676 → 16 → 16 → 10
        ctx.log("mlp_001_params", parameter_count(mlp([676, 16, 16, 10])))
        ctx.log("cnn_handout_params", parameter_count(mnist_cnn()))  # 002's handout CNN
    elif p.fact == "sequential_shapes":  # 002's nn.Sequential example and its printed sizes
        f = torch.nn.Sequential(torch.nn.Linear(3, 9), torch.nn.ReLU(), torch.nn.Linear(9, 2),
                                torch.nn.ReLU(),
                                torch.nn.Linear(2, 2))
        printed = [(9, 3), (9,), (2, 9), (2,), (2, 2), (2,)]
        ctx.log("shapes_match", float([tuple(t.shape) for t in f.parameters()] == printed))
        for i, t in enumerate(f.parameters()):
            ctx.log("parameter_sizes", t.numel(), step=i)
        ctx.log("output_shape_match", float(tuple(f(torch.empty(5, 3).normal_()).shape) == (5, 2)))
    else:
        _vanishing(p, ctx)


def _vanishing(p: Params, ctx: RunContext) -> None:
    activation = torch.nn.Sigmoid if p.activation == "sigmoid" else torch.nn.ReLU
    model = mlp([p.width] * (p.depth + 1), activation)
    x, target = torch.randn(p.batch, p.width), torch.randn(p.batch, p.width)
    torch.nn.functional.mse_loss(model(x), target).backward()
    norms = [m.weight.grad.norm().item() for m in model if isinstance(m, torch.nn.Linear)]
    for layer, norm in enumerate(norms, start=1):
        ctx.log("grad_norm", norm, step=layer)
    ctx.log("first_to_last_grad_ratio", norms[0] / norms[-1])
