"""Datasets, loaded once as tensors on the run's device.

MNIST comes from a local directory in torchvision's layout (``<dir>/MNIST/raw/*-ubyte``), given by
``--data-dir`` or ``DLREPRO_DATA_DIR``; without one it is downloaded by torchvision into
``~/.cache/dlrepro/data``. ``in_batches`` evaluates a model over such a tensor without holding a
whole set's activations at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

ENV_VAR = "DLREPRO_DATA_DIR"
DOWNLOAD_DIR = Path.home() / ".cache" / "dlrepro" / "data"


class DataError(Exception):
    """Data that is missing or unreadable; the message says where it looked and how to fix it."""


def data_dir(flag: str | Path | None = None) -> Path | None:
    """The data directory the user chose (flag first, then the environment), or None to download."""
    chosen = flag or os.environ.get(ENV_VAR)
    return Path(chosen).expanduser().resolve() if chosen else None


def mnist(root: Path | None, train: bool, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images as float [N, 1, 28, 28] in [0, 1] and labels as int64, on ``device``."""
    from torchvision.datasets import MNIST

    split = "train" if train else "test"
    try:
        if root is None:
            dataset = MNIST(DOWNLOAD_DIR, train=train, download=True)
        else:
            dataset = MNIST(root, train=train, download=False)
    except RuntimeError as err:  # torchvision: "Dataset not found" or a failed download
        where = f"{root}/MNIST/raw" if root else f"the download into {DOWNLOAD_DIR}"
        raise DataError(
            f"MNIST {split} set not available from {where} ({err}). Either point --data-dir or "
            f"{ENV_VAR} at a directory holding MNIST/raw/*-ubyte, or run with internet access so "
            f"torchvision can download it.") from None
    except Exception as err:  # a truncated or corrupt idx file fails while parsing
        raise DataError(f"MNIST {split} set under {root or DOWNLOAD_DIR}/MNIST/raw is unreadable: {err}") from None
    images, labels = dataset.data, dataset.targets
    expected = 60_000 if train else 10_000
    if images.shape != (expected, 28, 28) or labels.shape != (expected,):
        raise DataError(f"MNIST {split} set under {root or DOWNLOAD_DIR} has shape {tuple(images.shape)}, "
                        f"expected ({expected}, 28, 28): the files are corrupt or not MNIST")
    return (images.to(device).unsqueeze(1).float().div_(255), labels.to(device))


@torch.no_grad()
def in_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int = 1000) -> torch.Tensor:
    """``fn`` over ``x`` in slices of ``size``, concatenated; no gradients."""
    return torch.cat([fn(x[i:i + size]) for i in range(0, len(x), size)])
