"""Torch pieces several experiments share: the networks the slides build more than once, batched
evaluation, and the epoch clock of the training loops."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from dlrepro.experiment import RunContext

HANDOUT_CNN_HIDDEN = 200  # Fleuret's handout: Linear(256, 200); the CRM slide's version has 256


def mlp(widths: list[int], activation: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers through ``widths``, an activation between each two (none after the last)."""
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), activation()]
    return nn.Sequential(*layers[:-1])


def mnist_cnn(hidden: int = HANDOUT_CNN_HIDDEN) -> nn.Sequential:
    """Fleuret's MNIST CNN: two 5×5 convolutions with max-pooling, then 256 → hidden → 10."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(3),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, hidden), nn.ReLU(), nn.Linear(hidden, 10))


class _Residual(nn.Module):
    """A basic block: two 3 × 3 convolutions with batch norm, added to its input (a 1 × 1
    convolution's projection of it where the shape changes), then ReLU."""

    def __init__(self, channels: int, width: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
        self.shortcut = nn.Identity() if stride == 1 and channels == width else nn.Sequential(
            nn.Conv2d(channels, width, 1, stride, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet(channels: int = 3, blocks: int = 3) -> nn.Sequential:
    """He et al.'s CIFAR ResNet (CVPR 2016, section 4.2), 6 × ``blocks`` + 2 layers (3: ResNet-20):
    a convolution, three stages of ``blocks`` residual blocks (16, 32, 64 channels, the last two
    halving the size), global average pooling, 64 → 10. Flat, so that ``net[:k + 1]`` is its
    first k + 1 modules: 0 the first convolution, 1 … 3 × ``blocks`` the blocks, then the
    pooling, Flatten and the output layer."""
    layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(channels, 16, 3, 1, 1, bias=False),
                                             nn.BatchNorm2d(16), nn.ReLU())]
    width = 16
    for stage, stage_width in enumerate((16, 32, 64)):
        for block in range(blocks):
            stride = 2 if stage and not block else 1
            layers.append(_Residual(width, stage_width, stride))
            width = stage_width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def parameter_count(module: nn.Module) -> int:
    return sum(t.numel() for t in module.parameters())


@torch.inference_mode()  # not only no gradients but no autograd bookkeeping: 1.11× on an eval
def in_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               size: int = 1000) -> torch.Tensor:
    """``fn`` over ``x`` in slices of ``size``, concatenated; the result takes no gradient."""
    return torch.cat([fn(x[i:i + size]) for i in range(0, len(x), size)])


@dataclass
class Lap:
    seconds: float = 0.0


class EpochClock:
    """Times each epoch of a training loop, logs it as ``epoch_time_s`` and the sum as
    ``train_time_s``. Whatever syncs the device (an ``.item()``) must happen inside the epoch for
    the time to be honest."""

    def __init__(self, ctx: RunContext):
        self.ctx, self.total = ctx, 0.0

    @contextmanager
    def epoch(self, number: int) -> Iterator[Lap]:
        lap, start = Lap(), time.perf_counter()
        yield lap
        lap.seconds = time.perf_counter() - start
        self.total += lap.seconds
        self.ctx.log("epoch_time_s", lap.seconds, number)

    def finish(self) -> None:
        self.ctx.log("train_time_s", self.total)
