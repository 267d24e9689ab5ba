"""E8's figure: the slide's three polynomial fits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from dlrepro.experiment import RunFiles
from dlrepro.experiments.five_points.run import X, Y, poly_eval, poly_fit
from dlrepro.experiments.plotting import save, select

SHOWN_DEGREES = {1, 2, 20}  # the slide's: under-fitting, a good fit, over-fitting


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles, published: list) -> list[Path]:
    """The slide's three fits (d = 1, 2, 20) on [−10, 10]; they are recomputed, least squares is
    exact."""
    import matplotlib.pyplot as plt

    degrees = sorted(set(select(table, task="poly")["degree"]) & SHOWN_DEGREES)
    if not degrees:
        return []
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)
    grid = torch.linspace(-10, 10, 400, dtype=torch.float64)
    fig, axes = plt.subplots(1, len(degrees), figsize=(4.2 * len(degrees), 3.6), squeeze=False)
    for ax, degree in zip(axes[0], degrees):
        ax.plot(grid, poly_eval(poly_fit(x, y, degree), grid), color="C3")
        ax.plot(x, y, "ko")
        ax.set_ylim(-50, 300)
        ax.set_title(f"d = {degree}")
        ax.set_xlabel("x")
    fig.suptitle("Five points, polynomial least squares: under-fitting, a good fit, over-fitting")
    return [save(fig, out_dir / "five_points_polynomials.png")]
