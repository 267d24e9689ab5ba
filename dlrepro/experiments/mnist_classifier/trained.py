"""The classifiers' networks, and a trained one read back from its run's ``model.pt``: what the
suites that ``need`` a classifier (autoencoder, gan, layer maps) import, without the training
loop."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from dlrepro.experiments.mnist_classifier import Model
from dlrepro.experiments.nets import HANDOUT_CNN_HIDDEN, in_batches, mlp, mnist_cnn, resnet

CRM_CNN_HIDDEN = 256  # the CRM slide's Linear(256, 256)
# 001: 26 × 26 inputs (the border cropped), 676 → 16 → 16 → 10
MLP_WIDTHS = [26 * 26, 16, 16, 10]


def build(model: Model, channels: int = 1) -> nn.Module:
    """The network, for images of ``channels`` colours (the ResNet's; the others' are grey).
    Convolutions' weights are channels-last: the handout CNN's steps run 1.3-1.5× faster on the
    CPUs measured, the CRM CNN's 0.95-1.5× by batch size and CPU (docs/performance.md)."""
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), *mlp(MLP_WIDTHS))
    net = resnet(channels) if model == "resnet" else \
        mnist_cnn(HANDOUT_CNN_HIDDEN if model == "cnn_handout" else CRM_CNN_HIDDEN)
    return net.to(memory_format=torch.channels_last)


def save(path: Path, model: Model, channels: int, net: nn.Module, mean: float,
         std: float) -> None:
    """What ``Trained`` reads back: the architecture, the weights, the normalisation."""
    torch.save({"model": model, "channels": channels, "state_dict": net.state_dict(),
                "mean": mean, "std": std}, path)


class Trained:
    """A run's ``model.pt`` read back, for the suites that ``need`` it: functions of [0, 1]
    images."""

    def __init__(self, path: Path, device: torch.device):
        saved = torch.load(path, map_location=device)
        self.model, self.channels = saved["model"], saved["channels"]
        self.net = build(self.model, self.channels).to(device).eval()
        self.net.load_state_dict(saved["state_dict"])
        self.mean, self.std = saved["mean"], saved["std"]

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        return in_batches(lambda x: F.softmax(self.net(self._inputs(x)), dim=1), images)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (200 numbers for the handout CNN): what a Fréchet distance
        compares."""
        return in_batches(lambda x: self.net[:-1](self._inputs(x)), images)

    def confidence(self, images: torch.Tensor) -> float:
        """Mean max-softmax: how sure the classifier is that these are digits, whichever."""
        return self.probabilities(images).amax(1).mean().item()

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """% of the images read as their label: how readable they are (to a 99 %-accurate
        reader)."""
        return 100.0 * (self.probabilities(images).argmax(1) == labels).float().mean().item()

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        return (images.clamp(0, 1) - self.mean) / self.std
