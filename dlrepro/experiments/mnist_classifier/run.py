"""E6 and E7's training loop and FGSM.

One training loop for every model, in the handout's style: the whole training set lives on the
run's device as one tensor, mini-batches are slices of it (no DataLoader, no copies, no
augmentation), SGD (momentum for the ResNet), the loss summed over batches and printed per epoch
as the handout does. The test error is measured after every epoch; FGSM, x + ε·sign(∇ₓ J), on
the test set after the last one. The trained weights are kept as the run's ``model.pt``;
``fgsm_examples.npz`` holds the first test images attacked.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dlrepro.experiments.image_sets import images
from dlrepro.experiment import RunContext
from dlrepro.experiments.mnist_classifier import Params, trained
from dlrepro.experiments.nets import EpochClock, in_batches, parameter_count

EXAMPLES = 8  # adversarial digits kept for the figure


def load_data(params: Params, data_dir: Path | None, device: torch.device):
    """Train and test sets as resident tensors: cropped for the MLP, normalised like the handout."""
    train_x, train_y = images(params.dataset, data_dir, train=True, device=device)
    test_x, test_y = images(params.dataset, data_dir, train=False, device=device)
    train_x, train_y = train_x[: params.train_size], train_y[: params.train_size]
    test_x, test_y = test_x[: params.test_size], test_y[: params.test_size]
    if params.model == "mlp":
        train_x, test_x = train_x[..., 1:-1, 1:-1], test_x[..., 1:-1, 1:-1]
    mean, std = (train_x.mean(), train_x.std()) if params.normalise else \
        (torch.tensor(0.0), torch.tensor(1.0))
    return train_x, train_y, test_x, test_y, mean.item(), std.item()


def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return 100.0 * (predictions(model.eval(), x) != y).sum().item() / len(x)


def gradient_signs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mean: float, std: float,
                   batch: int = 1000) -> torch.Tensor:
    """sign(∇ₓ J) in pixel space, once for every ε: FGSM's x + ε·sign(∇ₓ J) only scales
    it."""
    signs = torch.empty_like(x)
    for i in range(0, len(x), batch):
        pixels = x[i:i + batch].clone().requires_grad_(True)
        loss = F.cross_entropy(model((pixels - mean) / std), y[i:i + batch])
        signs[i:i + batch] = torch.autograd.grad(loss, pixels)[0].sign()  # no weight gradients
    return signs


def predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return in_batches(lambda batch: model(batch).argmax(1), x)


def train(params: Params, ctx: RunContext) -> tuple[nn.Module, tuple]:
    """The handout's loop for any of the models; logs every epoch; returns the model and the
    data."""
    train_x, train_y, test_x, test_y, mean, std = load_data(params, ctx.data_dir, ctx.device)
    inputs, test_inputs = (train_x - mean) / std, (test_x - mean) / std
    model = trained.build(params.model, inputs.shape[1]).to(ctx.device)
    ctx.log("parameters", parameter_count(model))
    batch = slice(0, params.batch_size)
    work = flops_per_image(model, inputs[batch], train_y[batch]) * len(inputs) * params.epochs
    ctx.log("train_flops", work)
    ctx.with_energy.append(lambda energy: _energy_per_work(ctx, energy, work))
    optimizer = torch.optim.SGD(model.parameters(), lr=params.lr, momentum=params.momentum)
    clock = EpochClock(ctx)
    for epoch in range(1, params.epochs + 1):
        model.train()  # the ResNet's batch norm: batch statistics in training, running ones after
        with clock.epoch(epoch) as lap:
            order = torch.randperm(len(inputs), device=ctx.device) if params.shuffle else None
            loss_sum = torch.zeros((), device=ctx.device)  # summed on the device: no sync per batch
            wrong = torch.zeros((), device=ctx.device, dtype=torch.long)
            for i in range(0, len(inputs), params.batch_size):
                end = i + params.batch_size
                index = slice(i, end) if order is None else order[i:end]
                output = model(inputs[index])
                loss = F.cross_entropy(output, train_y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach()
                wrong += (output.argmax(1) != train_y[index]).sum()
            # .item() waits for the device: the clock is honest
            ctx.log("loss_sum", loss_sum.item(), epoch)
            ctx.log("train_error", 100.0 * wrong.item() / len(inputs), epoch)
        ctx.log("samples_per_s", len(inputs) / lap.seconds, epoch)
        test_error = error_rate(model, test_inputs, test_y)
        ctx.log("test_error", test_error, epoch)
    clock.finish()
    ctx.log("test_error", test_error)
    return model, (test_x, test_y, mean, std)


PFS_DAY = 1e15 * 86_400  # FLOP in a petaflop/s-day


def _energy_per_work(ctx: RunContext, energy: dict[str, float | str], work: float) -> None:
    """002: "1 petaflop/s-day ≈ 100 GPUs for a day ≈ 500 kWh", this run's own figure from the
    energy measured around it (known once the run is over): in all, and of the processors alone
    (without RAPL the RAM's share is a flat estimate that does not follow the work)."""
    processors = energy["energy_cpu_kwh"] + energy["energy_gpu_kwh"]
    for metric, kwh in (("kwh_per_pfs_day", energy["energy_kwh"]),
                        ("processor_kwh_per_pfs_day", processors)):
        if math.isfinite(kwh) and kwh > 0 and work > 0:
            ctx.log(metric, kwh * PFS_DAY / work)


def flops_per_image(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Forward and backward FLOPs of one training step, per image, as torch's FlopCounterMode
    counts them (no weight changes: gradients are dropped)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(inputs), targets).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(inputs)


def run(params: Params, ctx: RunContext) -> None:
    model, (test_x, test_y, mean, std) = train(params, ctx)
    trained.save(ctx.artifact("model.pt"), params.model, test_x.shape[1], model, mean, std)
    signs = gradient_signs(model, test_x, test_y, mean, std)
    examples = {"labels": test_y[:EXAMPLES].cpu().numpy()}
    for eps in params.fgsm_eps:
        adversarial = (test_x + eps * signs).clamp_(0, 1)
        predicted = predictions(model, (adversarial - mean) / std)
        key = round(eps * 1000)
        accuracy = 100.0 * (predicted == test_y).sum().item() / len(test_y)
        ctx.log("fgsm_accuracy", accuracy, key)
        examples[f"eps_{key}"] = adversarial[:EXAMPLES].squeeze(1).cpu().numpy()
        examples[f"pred_{key}"] = predicted[:EXAMPLES].cpu().numpy()
    np.savez_compressed(ctx.artifact("fgsm_examples.npz"), **examples)
