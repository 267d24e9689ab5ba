"""E1's figure: each trained model's decision regions, raw features against Φ."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from dlrepro.experiment import RunFiles
from dlrepro.experiments.xor.run import xor_points
from dlrepro.experiments.plotting import save, select

CODINGS = {"pm1": "±1", "01": "0/1"}
FEATURES = {"raw": "raw", "phi": "Φ"}


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles, published: list) -> list[Path]:
    """Decision regions of each model in input space, raw features vs Φ, for the lowest seed."""
    import matplotlib.pyplot as plt

    trained = table[table["model"] != "worked_neuron"]
    if trained.empty:
        return []
    trained = select(trained, seed=trained["seed"].min())
    models = [m for m in ("perceptron", "logistic") if m in set(trained["model"])]
    panels = [(c, f) for c in CODINGS for f in FEATURES
              if len(select(trained, coding=c, features=f))]
    size = (3.2 * len(panels), 3.2 * len(models))
    fig, axes = plt.subplots(len(models), len(panels), figsize=size, squeeze=False)
    for row, model in enumerate(models):
        for col, (coding, features) in enumerate(panels):
            run = select(trained, model=model, coding=coding, features=features)
            value = dict(zip(run["metric"], run["value"]))
            _draw_panel(axes[row][col], coding, features, value)
            accuracy = value.get("accuracy", math.nan)
            axes[row][col].set_title(f"{model}, {FEATURES[features]}, {CODINGS[coding]}\n"
                                     f"accuracy {accuracy:.0%}", fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False)
    fig.suptitle("XOR: a linear rule on (xu, xv) vs on Φ(xu, xv) = (xu, xv, xu·xv); "
                 "shaded: predicted class")
    return [save(fig, out_dir / "xor_decision_regions.png", layout_rect=(0, 0.05, 1, 1))]


def _draw_panel(ax, coding: str, features: str, value: dict) -> None:
    import numpy as np

    low = -1.0 if coding == "pm1" else 0.0
    grid = np.linspace(low - 0.6, 1.6, 200)
    u, v = np.meshgrid(grid, grid)
    z = value.get("w_1", 0) * u + value.get("w_2", 0) * v + value.get("b", 0)
    if features == "phi":
        z = z + value.get("w_3", 0) * u * v
    ax.contourf(u, v, z > 0, levels=[-0.5, 0.5, 1.5], colors=["#d6e4f0", "#f6d5c8"])
    if np.ptp(z) > 0:
        ax.contour(u, v, z, levels=[0], colors="k", linewidths=1)
    x, target = xor_points(coding, "raw")
    for label, marker, colour in ((-1.0, "o", "#1f5f99"), (1.0, "s", "#b3402a")):
        pts = x[target == label]
        ax.scatter(pts[:, 0], pts[:, 1], marker=marker, s=70, c=colour, edgecolors="k",
                   label="xu ≠ xv (XOR true)" if label > 0 else "xu = xv (XOR false)")
    ax.set_xlabel("xu")
    ax.set_ylabel("xv")
    ax.set_aspect("equal")
