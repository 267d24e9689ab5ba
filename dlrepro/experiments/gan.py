"""E5: DCGAN samples by epoch, on MNIST (002, «Modèles génératifs adversariaux»; the slides show
Radford et al.'s LSUN bedrooms after 1, 2, 5, 10 and 20 epochs).

The DCGAN recipe (EXPERIMENTS.md) sized for 28 × 28: G maps z ~ N(0, I) (100-d) through
ConvTranspose2d 7×7 → 14×14 → 28×28 with BatchNorm and ReLU, tanh out; D mirrors it with
LeakyReLU(0.2), BatchNorm except on its input, and one logit out. Adam lr 2e-4, β1 = 0.5, batch
128, weights N(0, 0.02). The loop is pytorch/examples' dcgan, over images resident on the device.

Before training (step 0) and at each recorded epoch: the samples of a fixed noise, and a Fréchet distance between generated and
real test digits on the features of the E6 classifier this suite ``needs`` (its last hidden
layer: Inception weights cannot be downloaded); the same distance between real training and real
test digits is the floor. Metrics per epoch (step): ``loss_d``, ``loss_g``, ``d_real`` (mean D(x)),
``d_fake`` (mean D(G(z)) before D's step), ``epoch_time_s``; at step 0 and each recorded epoch
``frechet_distance`` and ``sample_confidence`` (the classifier's mean max-softmax on samples), and
``digit_likeness``: where that confidence lies between the untrained G's (0) and real digits' (1);
final ``fd_floor``, ``real_confidence``, ``fd_ratio`` (last recorded over first), ``train_time_s``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn
from torch.nn import functional as F

from dlrepro.data import in_batches, mnist
from dlrepro.experiments import mnist_classifier
from dlrepro.plotting import as_bytes, mosaic, save

NOISE = 100
GRID = 64  # fixed-noise samples kept per recorded epoch
METRICS = {
    "loss_d": {"better": "two-sided", "description": "D's loss, mean over the epoch's batches", "rel_tolerance": 0.5},
    "loss_g": {"better": "two-sided", "description": "G's loss, mean over the epoch's batches", "rel_tolerance": 0.5},
    "d_real": {"better": "two-sided", "description": "mean D(x) on real batches", "tolerance": 0.2},
    "d_fake": {"better": "two-sided", "description": "mean D(G(z)) before D's step", "tolerance": 0.2},
    "frechet_distance": {"better": "lower", "description": "generated vs real test digits, on the E6 classifier's "
                         "features; step = epoch", "rel_tolerance": 0.5},
    "fd_floor": {"better": "lower", "description": "the same distance between real training and real test digits",
                 "rel_tolerance": 0.2},
    "fd_ratio": {"better": "lower", "description": "Fréchet distance at the last recorded epoch over the first's",
                 "tolerance": 0.3},
    "sample_confidence": {"better": "higher", "description": "E6 classifier's mean max-softmax on samples",
                          "tolerance": 0.1},
    "real_confidence": {"better": "higher", "description": "the same on real test digits", "tolerance": 0.02},
    "digit_likeness": {"better": "higher", "description": "where sample_confidence lies from the untrained G's (0) "
                       "to real digits' (1)", "tolerance": 0.15},
    "epoch_time_s": {"better": "lower", "timing": True},
    "train_time_s": {"better": "lower", "timing": True},
}


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_epochs: list[int] = Field([1, 2, 5, 10, 20], min_length=1, description="epochs whose samples are kept")
    batch_size: int = Field(128, ge=2)
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    width: int = Field(64, ge=1, description="D's first and G's last hidden channels (doubled in the middle)")
    train_size: int = Field(60_000, ge=100, le=60_000, description="the first N training images")
    fd_samples: int = Field(10_000, ge=100, le=10_000, description="samples and test digits per Fréchet distance")

    @field_validator("record_epochs")
    @classmethod
    def _increasing(cls, epochs: list[int]) -> list[int]:
        if epochs[0] < 1 or any(b <= a for a, b in zip(epochs, epochs[1:])):
            raise ValueError("must be increasing epoch numbers from 1")
        return epochs


def generator(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (NOISE, 1, 1)),
        nn.ConvTranspose2d(NOISE, 2 * width, 7, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),     # 7 × 7
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),  # 14 × 14
        nn.ConvTranspose2d(width, 1, 4, 2, 1, bias=False), nn.Tanh())                                 # 28 × 28


def discriminator(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),                                  # 14 × 14
        nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),  # 7 × 7
        nn.Conv2d(2 * width, 1, 7, bias=False), nn.Flatten(0))                                        # a logit


def init_weights(module: nn.Module) -> None:
    """DCGAN's N(0, 0.02) for convolutions; BatchNorm scales N(1, 0.02), shifts 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½) between Gaussians fitted to two feature sets [N, k].

    Tr (Σa Σb)^½ is computed as Σ √λ of the symmetric Σa^½ Σb Σa^½ (same eigenvalues), in float64:
    no complex square roots to discard, unlike scipy's sqrtm.
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return ((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross).item()


def sample(g: nn.Module, noise: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] from G, in its training mode (batch statistics), as pytorch/examples does."""
    return in_batches(g, noise).add(1).div(2)


def run(params: Params, ctx) -> None:
    train_x, _ = mnist(ctx.data_dir, train=True, device=ctx.device)
    test_x, _ = mnist(ctx.data_dir, train=False, device=ctx.device)
    real = train_x[: params.train_size] * 2 - 1  # tanh's range
    classifier = mnist_classifier.Trained(ctx.input("classifier", "model.pt"), ctx.device)
    test_features = classifier.features(test_x[: params.fd_samples])
    ctx.log("fd_floor", frechet_distance(classifier.features(train_x[: params.fd_samples]), test_features))
    real_confidence = classifier.confidence(test_x[: params.fd_samples])
    ctx.log("real_confidence", real_confidence)

    g, d = generator(params.width).to(ctx.device), discriminator(params.width).to(ctx.device)
    g.apply(init_weights), d.apply(init_weights)
    opt_g = torch.optim.Adam(g.parameters(), lr=params.lr, betas=(params.beta1, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=params.lr, betas=(params.beta1, 0.999))
    fixed = torch.randn(GRID, NOISE, device=ctx.device)
    fd_noise = torch.randn(params.fd_samples, NOISE, device=ctx.device)
    grids, distances, confidences, total = {}, [], [], 0.0

    def record(epoch: int) -> None:
        generated = sample(g, fd_noise)
        distances.append(frechet_distance(classifier.features(generated), test_features))
        confidences.append(classifier.confidence(generated))
        ctx.log("frechet_distance", distances[-1], epoch)
        ctx.log("sample_confidence", confidences[-1], epoch)
        if epoch:  # [0] is the untrained G, the scale's zero
            ctx.log("digit_likeness", (confidences[-1] - confidences[0]) / (real_confidence - confidences[0]), epoch)
        grids[f"epoch_{epoch}"] = as_bytes(sample(g, fixed))

    record(0)  # the untrained G: what "digit-like" is measured against
    for epoch in range(1, params.record_epochs[-1] + 1):
        start = time.perf_counter()
        sums = torch.zeros(4, device=ctx.device)  # loss_d, loss_g, D(x), D(G(z)), summed on the device
        order = torch.randperm(len(real), device=ctx.device)
        steps = 0
        for i in range(0, len(real) - params.batch_size + 1, params.batch_size):  # whole batches: BatchNorm
            x = real[order[i:i + params.batch_size]]
            fake = g(torch.randn(len(x), NOISE, device=ctx.device))
            real_logit, fake_logit = d(x), d(fake.detach())
            loss_d = (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                      + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            fooled = d(fake)
            loss_g = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            sums += torch.stack([loss_d.detach(), loss_g.detach(), real_logit.detach().sigmoid().mean(),
                                 fake_logit.detach().sigmoid().mean()])
            steps += 1
        means = (sums / steps).tolist()  # waits for the device: the clock is honest
        seconds = time.perf_counter() - start
        total += seconds
        for name, value in zip(("loss_d", "loss_g", "d_real", "d_fake"), means):
            ctx.log(name, value, epoch)
        ctx.log("epoch_time_s", seconds, epoch)
        if epoch in params.record_epochs:
            record(epoch)
    ctx.log("train_time_s", total)
    ctx.log("fd_ratio", distances[-1] / distances[1])  # [0] is the untrained G
    np.savez_compressed(ctx.artifact("samples.npz"), **grids)


def figures(table: pd.DataFrame, out_dir: Path, artifacts: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    paths = []
    first = table[table["seed"] == table["seed"].min()]["run_id"].iloc[0]
    grids = np.load(artifacts / first / "samples.npz")
    epochs = sorted((int(k.split("_")[1]) for k in grids.files))
    fig, axes = plt.subplots(1, len(epochs), figsize=(2.6 * len(epochs), 2.9), squeeze=False)
    for ax, epoch in zip(axes[0], epochs):
        ax.imshow(mosaic(grids[f"epoch_{epoch}"], 8), cmap="gray", vmin=0, vmax=255)
        ax.set(xticks=[], yticks=[], title=f"epoch {epoch}" if epoch else "untrained")
    fig.suptitle("DCGAN samples of a fixed noise, by epoch (MNIST)", fontsize=11)
    paths.append(save(fig, out_dir / "samples_by_epoch.png", layout_rect=(0, 0, 1, 0.92)))

    def per_epoch(metric: str):
        return table[(table["metric"] == metric) & table["step"].notna()].groupby("step")["value"]

    fig, (ax_fd, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    fd = per_epoch("frechet_distance").agg(["mean", "std"])
    ax_fd.errorbar(fd.index, fd["mean"], yerr=fd["std"].fillna(0), marker="o", capsize=3, label="generated vs test")
    floor = table[table["metric"] == "fd_floor"]["value"].mean()
    ax_fd.axhline(floor, color="grey", linestyle="--", label=f"floor: train vs test ({floor:.3g})")
    ax_fd.set(title="Fréchet distance on the E6 classifier's features", xlabel="epoch", yscale="log")
    ax_fd.set_xticks(fd.index)
    ax_fd.legend(fontsize=8)
    for metric in ("loss_d", "loss_g", "d_real", "d_fake"):
        curve = per_epoch(metric).mean()
        ax_loss.plot(curve.index, curve.values, marker=".", label=metric)
    ax_loss.set(title="D and G by epoch (mean over batches and seeds)", xlabel="epoch")
    ax_loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.legend(fontsize=8)
    paths.append(save(fig, out_dir / "frechet_distance.png"))
    return paths
