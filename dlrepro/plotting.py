"""What every experiment's figures share."""

from pathlib import Path

import numpy as np
import torch


def save(fig, path: Path, *, layout_rect: tuple | None = None) -> Path:
    """Lay out, write as PNG (creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=layout_rect)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def as_bytes(images: torch.Tensor) -> np.ndarray:
    """Images [..., 1, 28, 28] in [0, 1] as [..., 28, 28] bytes: what a run keeps for figures."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).squeeze(-3).cpu().numpy()


def mosaic(images: np.ndarray, per_row: int) -> np.ndarray:
    """Images [N, H, W] as one picture, ``per_row`` to a row, a thin grey frame between them."""
    from torchvision.utils import make_grid

    grid = make_grid(torch.from_numpy(images)[:, None], nrow=per_row, padding=1, pad_value=128)
    return grid[0].numpy()
