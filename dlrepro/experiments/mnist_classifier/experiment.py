"""E6 and E7's training loop, FGSM and figures.

One training loop for every model, in the handout's style: the whole training set lives on the
run's device as one tensor, mini-batches are slices of it (no DataLoader, no copies), plain SGD,
the loss summed over batches and printed per epoch as the handout does. The test error is measured
after every epoch; FGSM, x + ε·sign(∇ₓ J), on the test set after the last one. The trained weights
are kept as the run's ``model.pt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from dlrepro.data import images, titles
from dlrepro.experiment import WORK, RunContext
from dlrepro.experiments.mnist_classifier import Model, Params
from dlrepro.nets import HANDOUT_CNN_HIDDEN, EpochClock, in_batches, mlp, mnist_cnn, parameter_count
from dlrepro.plotting import save

EXAMPLES = 8  # adversarial digits kept for the figure
CRM_CNN_HIDDEN = 256  # the CRM slide's Linear(256, 256)
MLP_WIDTHS = [26 * 26, 16, 16, 10]  # 001: 26 × 26 inputs (the border cropped), 676 → 16 → 16 → 10


def build(model: Model) -> nn.Module:
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), *mlp(MLP_WIDTHS))
    return mnist_cnn(HANDOUT_CNN_HIDDEN if model == "cnn_handout" else CRM_CNN_HIDDEN)


class Trained:
    """A run's ``model.pt`` read back, for the suites that ``need`` it: functions of [0, 1] images."""

    def __init__(self, path: Path, device: torch.device):
        saved = torch.load(path, map_location=device)
        self.net = build(saved["model"]).to(device).eval()
        self.net.load_state_dict(saved["state_dict"])
        self.mean, self.std = saved["mean"], saved["std"]

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        return in_batches(lambda x: F.softmax(self.net(self._inputs(x)), dim=1), images)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (200 numbers for the handout CNN): what a Fréchet distance compares."""
        return in_batches(lambda x: self.net[:-1](self._inputs(x)), images)

    def confidence(self, images: torch.Tensor) -> float:
        """Mean max-softmax: how sure the classifier is that these are digits, whichever."""
        return self.probabilities(images).amax(1).mean().item()

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """% of the images read as their label: how readable they are (to a 99 %-accurate reader)."""
        return 100.0 * (self.probabilities(images).argmax(1) == labels).float().mean().item()

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        return (images.clamp(0, 1) - self.mean) / self.std


def load_data(params: Params, data_dir: Path | None, device: torch.device):
    """Train and test sets as resident tensors: cropped for the MLP, normalised like the handout."""
    train_x, train_y = images(params.dataset, data_dir, train=True, device=device)
    test_x, test_y = images(params.dataset, data_dir, train=False, device=device)
    train_x, train_y = train_x[: params.train_size], train_y[: params.train_size]
    test_x, test_y = test_x[: params.test_size], test_y[: params.test_size]
    if params.model == "mlp":
        train_x, test_x = train_x[..., 1:-1, 1:-1], test_x[..., 1:-1, 1:-1]
    mean, std = (train_x.mean(), train_x.std()) if params.normalise else (torch.tensor(0.0), torch.tensor(1.0))
    return train_x, train_y, test_x, test_y, mean.item(), std.item()


def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return 100.0 * (predictions(model, x) != y).sum().item() / len(x)


def gradient_signs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mean: float, std: float,
                   batch: int = 1000) -> torch.Tensor:
    """sign(∇ₓ J) in pixel space, once for every ε: FGSM's x + ε·sign(∇ₓ J) only scales it."""
    signs = torch.empty_like(x)
    for i in range(0, len(x), batch):
        pixels = x[i:i + batch].clone().requires_grad_(True)
        loss = F.cross_entropy(model((pixels - mean) / std), y[i:i + batch])
        signs[i:i + batch] = torch.autograd.grad(loss, pixels)[0].sign()  # no weight gradients
    return signs


def predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return in_batches(lambda batch: model(batch).argmax(1), x)


def train(params: Params, ctx: RunContext) -> tuple[nn.Module, tuple]:
    """The handout's loop for any of the models; logs every epoch; returns the model and the data."""
    train_x, train_y, test_x, test_y, mean, std = load_data(params, ctx.data_dir, ctx.device)
    inputs, test_inputs = (train_x - mean) / std, (test_x - mean) / std
    model = build(params.model).to(ctx.device)
    ctx.log("parameters", parameter_count(model))
    batch = slice(0, params.batch_size)
    ctx.log(WORK, flops_per_image(model, inputs[batch], train_y[batch]) * len(inputs) * params.epochs)
    optimizer = torch.optim.SGD(model.parameters(), lr=params.lr)
    clock = EpochClock(ctx)
    for epoch in range(1, params.epochs + 1):
        with clock.epoch(epoch) as lap:
            order = torch.randperm(len(inputs), device=ctx.device) if params.shuffle else None
            loss_sum = torch.zeros((), device=ctx.device)  # summed on the device: no sync per batch
            wrong = torch.zeros((), device=ctx.device, dtype=torch.long)
            for i in range(0, len(inputs), params.batch_size):
                index = slice(i, i + params.batch_size) if order is None else order[i:i + params.batch_size]
                output = model(inputs[index])
                loss = F.cross_entropy(output, train_y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach()
                wrong += (output.argmax(1) != train_y[index]).sum()
            ctx.log("loss_sum", loss_sum.item(), epoch)  # .item() waits for the device: the clock is honest
            ctx.log("train_error", 100.0 * wrong.item() / len(inputs), epoch)
        ctx.log("samples_per_s", len(inputs) / lap.seconds, epoch)
        test_error = error_rate(model, test_inputs, test_y)
        ctx.log("test_error", test_error, epoch)
    clock.finish()
    ctx.log("test_error", test_error)
    return model, (test_x, test_y, mean, std)


def flops_per_image(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Forward and backward FLOPs of one training step, per image, as torch's FlopCounterMode counts
    them (no weight changes: gradients are dropped)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(inputs), targets).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(inputs)


def run(params: Params, ctx: RunContext) -> None:
    model, (test_x, test_y, mean, std) = train(params, ctx)
    torch.save({"model": params.model, "state_dict": model.state_dict(), "mean": mean, "std": std},
               ctx.artifact("model.pt"))
    signs = gradient_signs(model, test_x, test_y, mean, std)
    examples = {"labels": test_y[:EXAMPLES].cpu().numpy()}
    for eps in params.fgsm_eps:
        adversarial = (test_x + eps * signs).clamp_(0, 1)
        predicted = predictions(model, (adversarial - mean) / std)
        key = round(eps * 1000)
        ctx.log("fgsm_accuracy", 100.0 * (predicted == test_y).sum().item() / len(test_y), key)
        examples[f"eps_{key}"] = adversarial[:EXAMPLES].squeeze(1).cpu().numpy()
        examples[f"pred_{key}"] = predicted[:EXAMPLES].cpu().numpy()
    np.savez_compressed(ctx.artifact("fgsm_examples.npz"), **examples)


def figures(table: pd.DataFrame, out_dir: Path, artifacts: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    table = table.assign(label=table.apply(_label, axis=1))
    paths = []
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    for label, rows in _by_configuration(table):
        for ax, metric in ((ax_loss, "loss_sum"), (ax_err, "test_error")):
            curve = rows[(rows["metric"] == metric) & rows["step"].notna()].groupby("step")["value"].mean()
            ax.plot(curve.index, curve.values, marker="o", label=label)
    ax_loss.set(title="summed batch loss per epoch", xlabel="epoch", yscale="log")
    ax_err.set(title="test error (%)", xlabel="epoch", yscale="log")
    for ax in (ax_loss, ax_err):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_err.legend(fontsize=8)
    paths.append(save(fig, out_dir / "learning_curves.png"))

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, rows in _by_configuration(table[table["metric"] == "fgsm_accuracy"]):
        curve = rows.groupby("step")["value"].mean()
        ax.plot(curve.index / 1000, curve.values, marker="o", label=label)
    ax.set(title="FGSM: x + ε·sign(∇ₓJ)", xlabel="ε (pixels in [0, 1])", ylabel="test accuracy (%)")
    ax.legend(fontsize=8)
    paths.append(save(fig, out_dir / "fgsm_accuracy.png"))

    finals = table[(table["metric"] == "test_error") & table["step"].isna()]
    best = finals.loc[finals["value"].idxmin()]  # the best model's digits: the attack, not a weak model
    run_id, label = best["run_id"], best["label"]
    data = np.load(artifacts / run_id / "fgsm_examples.npz")
    eps_keys = sorted((k for k in data.files if k.startswith("eps_")), key=lambda k: int(k[4:]))
    fig, axes = plt.subplots(len(eps_keys), 8, figsize=(8, 1.15 * len(eps_keys)), squeeze=False)
    for row, key in enumerate(eps_keys):
        predicted = data["pred_" + key[4:]]
        for col in range(8):
            ax = axes[row, col]
            ax.imshow(data[key][col], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            right = predicted[col] == data["labels"][col]
            ax.set_title(str(predicted[col]), fontsize=9, color="black" if right else "red")
        axes[row, 0].set_ylabel(f"ε = {int(key[4:]) / 1000:g}", fontsize=8)
    fig.suptitle(f"Adversarial {titles(table['dataset'])} images and predictions ({label}; red: wrong)", fontsize=10)
    paths.append(save(fig, out_dir / "fgsm_digits.png", layout_rect=(0, 0, 1, 0.95)))
    return paths


def _by_configuration(table: pd.DataFrame):
    """(label, rows) per configuration, batch sizes in numeric order."""
    for _, rows in table.groupby(["model", "lr", "batch_size"], sort=True):
        yield rows["label"].iloc[0], rows


def _label(row: pd.Series) -> str:
    return f"{row['model']}, lr {row['lr']:g}, batch {row['batch_size']}"
