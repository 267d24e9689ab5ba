"""What every experiment's figures share (drawing code: no run module imports it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def save(fig, path: Path, *, layout_rect: tuple | None = None) -> Path:
    """Lay out, write as PNG (creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=layout_rect)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def select(table: pd.DataFrame, metric: str | None = None, *, curve: bool | None = None,
           **where: Any) -> pd.DataFrame:
    """The rows of ``table`` of one ``metric`` (any, if None) whose columns have the values
    ``where`` gives (parameters, ``seed``, ``run_id``); ``curve=True`` keeps the values logged with
    a step, ``curve=False`` the final ones."""
    keep = pd.Series(True, index=table.index)
    if metric is not None:
        keep &= table["metric"] == metric
    for column, value in where.items():
        keep &= table[column] == value
    if curve is not None:
        keep &= table["step"].notna() == curve
    return table[keep]


def mosaic(images: np.ndarray, per_row: int) -> np.ndarray:
    """Images [N, H, W] as one picture, ``per_row`` to a row, with a thin grey frame between
    them."""
    import torch
    from torchvision.utils import make_grid

    grid = make_grid(torch.from_numpy(images)[:, None], nrow=per_row, padding=1, pad_value=128)
    return grid[0].numpy()
