"""E8's figure: the slide's three polynomial fits, or the fits of the degrees a sweep ran."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from dlrepro.experiment import RunFiles
from dlrepro.experiments.five_points.run import X, Y, poly_eval, poly_fit
from dlrepro.experiments.plotting import panels, save, select, shown

SLIDE_DEGREES = (1, 2, 20)  # under-fitting, a good fit, over-fitting


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles, published: list) -> list[Path]:
    """The fits on [−10, 10] of the slide's degrees, or of those ``--set`` swept; they are
    recomputed, least squares is exact."""
    degrees = shown(select(table, task="poly"), "degree", SLIDE_DEGREES)
    if not degrees:
        return []
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)
    grid = torch.linspace(-10, 10, 400, dtype=torch.float64)
    fig, axes = panels(len(degrees), 4.2, 3.6)
    for ax, degree in zip(axes, degrees):
        ax.plot(grid, poly_eval(poly_fit(x, y, degree), grid), color="C3")
        ax.plot(x, y, "ko")
        ax.set_ylim(-50, 300)
        ax.set_title(f"d = {degree}")
        ax.set_xlabel("x")
    lesson = ": under-fitting, a good fit, over-fitting" if degrees == list(SLIDE_DEGREES) else ""
    fig.suptitle(f"Five points, polynomial least squares{lesson}")
    return [save(fig, out_dir / "five_points_polynomials.png")]
