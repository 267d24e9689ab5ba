"""E4's models and training.

``pca`` is fitted exactly (eigenvectors of the training covariance); ``linear`` (Linear(784, d),
Linear(d, 784)) and ``cnn`` (the handout's, EXPERIMENTS.md) are trained with Adam on
0.5·Σ(output − input)² per image, inputs normalised by the training set's mean and std, batches
sliced from tensors resident on the device.

Metrics: ``test_mse`` (per pixel; final and per epoch), ``test_sse`` (784 × test_mse),
``train_mse`` ten times an epoch (step = images seen), ``excess_over_pca`` (% above PCA's test error
at the same d), ``midpoint_confidence``: the E6 classifier's mean max-softmax on the α = 0.5 latent
midpoints of test pairs, and ``endpoint_confidence`` on the reconstructions themselves;
``readable_accuracy``: % of the reconstructed test digits that classifier reads as their label (the
slide's "unreadable" and "near perfect", measured), beside ``original_accuracy`` on the originals;
``epoch_time_s``, ``train_time_s``. Files: ``reconstructions.npz`` (the first 36 test digits) and
``interpolation.npz`` (6 pairs × 12 α).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dlrepro.experiments.image_sets import as_bytes, images
from dlrepro.experiment import RunContext
from dlrepro.experiments.autoencoder import PAIRS_SHOWN, PIXELS, Params
from dlrepro.experiments.mnist_classifier.trained import Trained
from dlrepro.experiments.nets import EpochClock, in_batches

SHOWN, ALPHAS = 36, 12  # the slides: 36 test digits; interpolations of 12 steps
CURVE_POINTS = 10  # training-curve points per epoch


class Autoencoder(nn.Module):
    """An encoder f and a decoder g on normalised images; the code is d numbers."""

    def __init__(self, model: str, d: int):
        super().__init__()
        if model == "linear":
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, d))
            self.decoder = nn.Sequential(nn.Linear(d, PIXELS), nn.Unflatten(1, (1, 28, 28)))
            return
        self.encoder = nn.Sequential(  # 28×28 → 24 → 20 → 9 → 4 → 1
            nn.Conv2d(1, 32, 5), nn.ReLU(), nn.Conv2d(32, 32, 5), nn.ReLU(),
            nn.Conv2d(32, 32, 4, stride=2), nn.ReLU(), nn.Conv2d(32, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, d, 4), nn.Flatten())
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (d, 1, 1)), nn.ConvTranspose2d(d, 32, 4), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 3, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 5), nn.ReLU(), nn.ConvTranspose2d(32, 1, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Codec:
    """f and g in pixel space, whatever the model: what the error, the interpolation and the
    figures use."""

    def __init__(self, encode, decode):
        self.encode, self.decode = encode, decode

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return in_batches(lambda batch: self.decode(self.encode(batch)), x)

    @torch.no_grad()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        """ξ(x, x', α) = g((1 − α) f(x) + α f(x')) for every pair and α:
        [pairs, len(alphas), 1, 28, 28]."""
        za, zb = self.encode(a), self.encode(b)
        mixed = (1 - alphas[None, :, None]) * za[:, None] + alphas[None, :, None] * zb[:, None]
        return self.decode(mixed.flatten(0, 1)).unflatten(0, (len(a), len(alphas)))


def fit_pca(train_x: torch.Tensor, d: int) -> Codec:
    """The exact solution: the top-d eigenvectors of the training covariance (eigh in float64)."""
    flat = train_x.flatten(1)
    mean = flat.double().mean(0).float()
    centred = flat - mean
    _, vectors = torch.linalg.eigh((centred.T @ centred).double())  # ascending eigenvalues
    basis = vectors[:, -d:].flip(1).float()
    return Codec(lambda x: (x.flatten(1) - mean) @ basis,
                 lambda z: (z @ basis.T + mean).view(-1, 1, 28, 28))


def fit_network(params: Params, train_x: torch.Tensor, test_x: torch.Tensor,
                ctx: RunContext) -> tuple[Codec, float]:
    """Adam on 0.5·Σ(output − input)² per image, on normalised inputs; the test error is logged
    per epoch and the last one returned."""
    mean, std = train_x.mean(), train_x.std()
    inputs = (train_x - mean) / std
    model = Autoencoder(params.model, params.d).to(ctx.device)
    codec = Codec(lambda x: model.encoder((x - mean) / std),
                  lambda z: model.decoder(z) * std + mean)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    batches = math.ceil(len(inputs) / params.batch_size)
    every = math.ceil(batches / CURVE_POINTS)
    # 0.5·Σ over a normalised image → squared error per pixel
    to_pixels = 2 * std.item() ** 2 / PIXELS
    clock, seen = EpochClock(ctx), 0
    for epoch in range(1, params.epochs + 1):
        with clock.epoch(epoch):
            order = torch.randperm(len(inputs), device=ctx.device)
            # summed on the device: no sync per batch
            loss_sum, count = torch.zeros((), device=ctx.device), 0
            for b in range(batches):
                batch = inputs[order[b * params.batch_size:(b + 1) * params.batch_size]]
                loss = 0.5 * (model(batch) - batch).pow(2).sum() / len(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(batch)
                count += len(batch)
                if (b + 1) % every == 0 or b + 1 == batches:
                    seen += count
                    ctx.log("train_mse", loss_sum.item() * to_pixels / count, seen)
                    loss_sum, count = torch.zeros((), device=ctx.device), 0
        test_error = mse(codec, test_x)
        ctx.log("test_mse", test_error, epoch)
    clock.finish()
    return codec, test_error


def mse(codec: Codec, x: torch.Tensor) -> float:
    return (codec.reconstruct(x) - x).pow(2).mean().item()


def run(params: Params, ctx: RunContext) -> None:
    classifier = Trained(ctx.input("classifier", "model.pt"), ctx.device)  # before any training
    train_x, _ = images(params.dataset, ctx.data_dir, train=True, device=ctx.device)
    test_x, test_y = images(params.dataset, ctx.data_dir, train=False, device=ctx.device)
    test_x, test_y = test_x[: params.test_size], test_y[: params.test_size]
    pca = fit_pca(train_x, params.d)
    pca_error = mse(pca, test_x)
    codec, error = (pca, pca_error) if params.model == "pca" else \
        fit_network(params, train_x[: params.train_size], test_x, ctx)
    ctx.log("test_mse", error)
    ctx.log("test_sse", error * PIXELS)
    ctx.log("excess_over_pca", 100 * (error / pca_error - 1))
    ctx.log("readable_accuracy", classifier.accuracy(codec.reconstruct(test_x), test_y))
    ctx.log("original_accuracy", classifier.accuracy(test_x, test_y))

    pairs = min(params.pairs, len(test_x) // 2)
    first, second = test_x[:pairs], test_x[pairs:2 * pairs]
    midpoints = codec.interpolate(first, second, torch.tensor([0.5], device=ctx.device))[:, 0]
    ctx.log("midpoint_confidence", classifier.confidence(midpoints))
    ctx.log("endpoint_confidence", classifier.confidence(codec.reconstruct(test_x[: 2 * pairs])))

    alphas = torch.linspace(0, 1, ALPHAS, device=ctx.device)
    np.savez_compressed(ctx.artifact("reconstructions.npz"), originals=as_bytes(test_x[:SHOWN]),
                        reconstructions=as_bytes(codec.reconstruct(test_x[:SHOWN])))
    np.savez_compressed(ctx.artifact("interpolation.npz"), frames=as_bytes(
        codec.interpolate(first[:PAIRS_SHOWN], second[:PAIRS_SHOWN], alphas)))
