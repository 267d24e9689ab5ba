"""E5's DCGAN and its judge.

The DCGAN recipe (EXPERIMENTS.md) sized for 28 × 28: G maps z ~ N(0, I) (100-d) through
ConvTranspose2d 7×7 → 14×14 → 28×28 with BatchNorm and ReLU, tanh out; D mirrors it with
LeakyReLU(0.2), BatchNorm except on its input, and one logit out. Adam lr 2e-4, β1 = 0.5, batch
128, weights N(0, 0.02). The loop is pytorch/examples' dcgan, over images resident on the device.

Before training (step 0) and at each recorded epoch: the samples of a fixed noise, and a Fréchet
distance between generated and real test digits on the features of the E6 classifier (its last
hidden layer: Inception weights cannot be downloaded); the same distance between real training and
real test digits is the floor. Metrics per epoch (step): ``loss_d``, ``loss_g``, ``d_real`` (mean
D(x)), ``d_fake`` (mean D(G(z)) before D's step), ``epoch_time_s``; at step 0 and each recorded
epoch ``frechet_distance`` and ``sample_confidence`` (the classifier's mean max-softmax on samples),
and ``digit_likeness``: where that confidence lies between the untrained G's (0) and real digits'
(1); final ``fd_floor``, ``real_confidence``, ``fd_ratio`` (last recorded over first),
``train_time_s``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dlrepro.experiments.image_sets import as_bytes, images
from dlrepro.experiment import RunContext
from dlrepro.experiments.gan import Params
from dlrepro.experiments.mnist_classifier.trained import Trained
from dlrepro.experiments.nets import EpochClock, in_batches

NOISE = 100
GRID = 64  # fixed-noise samples kept per recorded epoch
LOSSES = ("loss_d", "loss_g", "d_real", "d_fake")


def generator(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (NOISE, 1, 1)),
        nn.ConvTranspose2d(NOISE, 2 * width, 7, bias=False),  # 7 × 7
        nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # 14 × 14
        nn.BatchNorm2d(width), nn.ReLU(),
        nn.ConvTranspose2d(width, 1, 4, 2, 1, bias=False), nn.Tanh())  # 28 × 28


def discriminator(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),  # 14 × 14
        nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),  # 7 × 7
        nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 1, 7, bias=False), nn.Flatten(0))  # a logit


def init_weights(module: nn.Module) -> None:
    """DCGAN's N(0, 0.02) for convolutions; BatchNorm scales N(1, 0.02), shifts 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½) between Gaussians fitted to two
    feature sets [N, k].

    Tr (Σa Σb)^½ is computed as Σ √λ of the symmetric Σa^½ Σb Σa^½ (same eigenvalues),
    in float64: no complex square roots to discard, unlike scipy's sqrtm.
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return ((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross).item()


def sample(g: nn.Module, noise: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] from G, in its training mode (batch statistics), as pytorch/examples
    does."""
    return in_batches(g, noise).add(1).div(2)


class Judge:
    """The E6 classifier's view of generated digits, against real test digits."""

    def __init__(self, classifier: Trained, train_x: torch.Tensor, test_x: torch.Tensor,
                 samples: int):
        self.classifier = classifier
        self.test_features = classifier.features(test_x[:samples])
        self.floor = frechet_distance(classifier.features(train_x[:samples]), self.test_features)
        self.real_confidence = classifier.confidence(test_x[:samples])

    def distance(self, images: torch.Tensor) -> float:
        return frechet_distance(self.classifier.features(images), self.test_features)

    def confidence(self, images: torch.Tensor) -> float:
        return self.classifier.confidence(images)


def train_epoch(g: nn.Module, d: nn.Module, opt_g, opt_d, real: torch.Tensor,
                batch_size: int) -> list[float]:
    """One epoch of pytorch/examples' DCGAN step; the means of ``LOSSES`` over its batches."""
    device = real.device
    sums = torch.zeros(len(LOSSES), device=device)  # summed on the device: no sync per batch
    order = torch.randperm(len(real), device=device)
    steps = 0
    for i in range(0, len(real) - batch_size + 1, batch_size):  # whole batches: BatchNorm
        x = real[order[i:i + batch_size]]
        fake = g(torch.randn(len(x), NOISE, device=device))
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
    return (sums / steps).tolist()  # waits for the device: the epoch's clock is honest


def run(params: Params, ctx: RunContext) -> None:
    train_x, _ = images(params.dataset, ctx.data_dir, train=True, device=ctx.device)
    test_x, _ = images(params.dataset, ctx.data_dir, train=False, device=ctx.device)
    real = train_x[: params.train_size] * 2 - 1  # tanh's range
    classifier = Trained(ctx.input("classifier", "model.pt"), ctx.device)
    judge = Judge(classifier, train_x, test_x, params.fd_samples)
    ctx.log("fd_floor", judge.floor)
    ctx.log("real_confidence", judge.real_confidence)

    g, d = generator(params.width).to(ctx.device), discriminator(params.width).to(ctx.device)
    g.apply(init_weights), d.apply(init_weights)
    opt_g = torch.optim.Adam(g.parameters(), lr=params.lr, betas=(params.beta1, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=params.lr, betas=(params.beta1, 0.999))
    fixed = torch.randn(GRID, NOISE, device=ctx.device)
    fd_noise = torch.randn(params.fd_samples, NOISE, device=ctx.device)
    grids, distances, confidences = {}, [], []

    def record(epoch: int) -> None:
        generated = sample(g, fd_noise)
        distances.append(judge.distance(generated))
        confidences.append(judge.confidence(generated))
        ctx.log("frechet_distance", distances[-1], epoch)
        ctx.log("sample_confidence", confidences[-1], epoch)
        if epoch:  # [0] is the untrained G, the scale's zero
            scale = judge.real_confidence - confidences[0]
            ctx.log("digit_likeness", (confidences[-1] - confidences[0]) / scale, epoch)
        grids[f"epoch_{epoch}"] = as_bytes(sample(g, fixed))

    record(0)  # the untrained G: what "digit-like" is measured against
    clock = EpochClock(ctx)
    for epoch in range(1, params.record_epochs[-1] + 1):
        with clock.epoch(epoch):
            means = train_epoch(g, d, opt_g, opt_d, real, params.batch_size)
        for name, value in zip(LOSSES, means):
            ctx.log(name, value, epoch)
        if epoch in params.record_epochs:
            record(epoch)
    clock.finish()
    ctx.log("fd_ratio", distances[-1] / distances[1])  # [0] is the untrained G
    np.savez_compressed(ctx.artifact("samples.npz"), **grids)
