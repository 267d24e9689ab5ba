"""What every experiment on an image set shares: its parameters, declared once (torch-free, like
every declaration), and the set loaded as tensors (torch imported then). Most read the 28 × 28
grey sets (MNIST, Fashion-MNIST); the classifiers and the t-SNE maps also CIFAR-10."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from dlrepro.data import CIFAR10, DATASETS, DOWNLOAD_DIR, GreySet, cifar10
from dlrepro.experiment import Params

if TYPE_CHECKING:
    import torch

TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000
# A figure's names for the labels 0 … 9 where they are not digits.
CLASSES = {CIFAR10: ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                     "ship", "truck"]}


class ImageParams(Params):
    dataset: GreySet = Field("mnist", description="the 28 × 28 set read: mnist, or "
                             "fashion_mnist (clothing)")
    train_size: int = Field(TRAIN_IMAGES, ge=100, le=TRAIN_IMAGES,
                            description="the first N training images")


class TestedImageParams(ImageParams):
    test_size: int = Field(TEST_IMAGES, ge=100, le=TEST_IMAGES,
                           description="the first N test images")


def datasets(params: ImageParams) -> set[str]:
    """The contract's ``datasets``: the one set the run reads."""
    return {params.dataset}


def titles(names: Iterable[str]) -> str:
    """How figures name the sets a table's runs read: ``MNIST``, ``Fashion-MNIST``."""
    return " / ".join(DATASETS[name].title for name in sorted(set(names)))


def images(name: str, root: Path | None, train: bool,
           device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A set as float images [N, C, H, W] in [0, 1] (1 × 28 × 28, CIFAR-10's 3 × 32 × 32) and
    int64 labels, on ``device``; the files were checked by ``verify`` or ``absent`` before."""
    import torch
    from torchvision import datasets

    if name == CIFAR10:
        rows, labels = cifar10(root, train)
        pixels = torch.from_numpy(rows).view(-1, 3, 32, 32)
        return pixels.to(device).float().div_(255), torch.from_numpy(labels).to(device)
    loader = getattr(datasets, DATASETS[name].folder)
    loaded = loader(root or DOWNLOAD_DIR, train=train, download=False)
    return loaded.data.to(device).unsqueeze(1).float().div_(255), loaded.targets.to(device)


def as_bytes(images: torch.Tensor):
    """Images [..., 1, 28, 28] in [0, 1] as [..., 28, 28] bytes (a numpy array): what a run keeps
    for its figures, the inverse of ``images``."""
    import torch

    return (images.clamp(0, 1) * 255).round().to(torch.uint8).squeeze(-3).cpu().numpy()
