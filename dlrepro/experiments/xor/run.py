"""E1's runs.

The perceptron is Rosenblatt's: start from zero, visit the points in order, and on a mistake
(y·z ≤ 0, targets ±1) update w += η·y·x, b += η·y. With ±1 targets this is 003's rule
w' = w + η/2·(y − ŷ)x, except that z = 0 counts as a mistake; it is the rule that gives the
handout's result (w = (0, 0, −4), b = 0 after 2 epochs with ±1 coding and η = 1).
The logistic model σ(w·x + b) is trained by full-batch gradient descent on the cross-entropy.
"""

from __future__ import annotations

import torch

from dlrepro.experiment import RunContext
from dlrepro.experiments.xor import Params

# 001's worked neuron: x = (1, 0, 1), w = (0, 1, 2), b = 2 gives z = 4 and ReLU(z) = 4.
NEURON_X, NEURON_W, NEURON_B = (1.0, 0.0, 1.0), (0.0, 1.0, 2.0), 2.0


def xor_points(coding: str, features: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The four points in the handout's order and their targets as ±1 (label 1 when xu ≠ xv)."""
    low = -1.0 if coding == "pm1" else 0.0
    x = torch.tensor([[low, low], [low, 1.0], [1.0, low], [1.0, 1.0]])
    target = torch.tensor([-1.0, 1.0, 1.0, -1.0])
    if features == "phi":
        x = torch.cat([x, (x[:, 0] * x[:, 1]).unsqueeze(1)], dim=1)
    return x, target


def run(p: Params, ctx: RunContext) -> None:
    if p.model == "worked_neuron":
        neuron = torch.nn.Linear(3, 1)
        with torch.no_grad():
            neuron.weight.copy_(torch.tensor([NEURON_W]))
            neuron.bias.fill_(NEURON_B)
            z = neuron(torch.tensor(NEURON_X))
        ctx.log("neuron_z", z.item())
        ctx.log("neuron_relu", torch.relu(z).item())
        return
    x, target = xor_points(p.coding, p.features)
    train = perceptron if p.model == "perceptron" else logistic
    w, b, errors, converged_at = train(x, target, p)
    for epoch, count in enumerate(errors, start=1):
        ctx.log("errors", count, step=epoch)
    accuracies = [1 - e / len(target) for e in errors]
    ctx.log("accuracy", accuracies[-1])
    ctx.log("best_accuracy", max(accuracies))
    ctx.log("converged", float(converged_at is not None))
    if converged_at is not None:  # never converged: no value, not a NaN
        ctx.log("epochs_to_converge", converged_at)
    for i, wi in enumerate(w.tolist(), start=1):
        ctx.log(f"w_{i}", wi)
    ctx.log("b", b)


def misclassified(w: torch.Tensor, b: float, x: torch.Tensor, target: torch.Tensor) -> int:
    """Points on the wrong side (z = 0 predicts the negative class, as a threshold unit does)."""
    predicted = torch.where(x @ w + b > 0, 1.0, -1.0)
    return int((predicted != target).sum())


def perceptron(x: torch.Tensor, target: torch.Tensor, p: Params):
    """Weights, bias, misclassified points after each epoch, and the first epoch without an
    update."""
    w, b = torch.zeros(x.shape[1]), 0.0
    errors, converged_at = [], None
    for epoch in range(1, p.epochs + 1):
        updates = 0
        for xi, yi in zip(x, target):
            if yi * (w @ xi + b) <= 0:
                w += p.lr * yi * xi
                b += p.lr * yi.item()
                updates += 1
        errors.append(misclassified(w, b, x, target))
        if updates == 0 and converged_at is None:
            converged_at = epoch
    return w, b, errors, converged_at


def logistic(x: torch.Tensor, target: torch.Tensor, p: Params):
    """Weights, bias, misclassified points after each step, and the first step after which none
    is."""
    model = torch.nn.Linear(x.shape[1], 1)
    torch.nn.init.normal_(model.weight, std=p.init_std)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.SGD(model.parameters(), lr=p.lr)
    label = (target + 1) / 2
    errors = []
    for _ in range(p.epochs):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), label)
        opt.zero_grad()
        loss.backward()
        opt.step()
        errors.append(misclassified(model.weight.detach().squeeze(0), model.bias.item(), x, target))
    converged_at = next((i for i, e in enumerate(errors, start=1) if e == 0), None)
    return model.weight.detach().squeeze(0), model.bias.item(), errors, converged_at
