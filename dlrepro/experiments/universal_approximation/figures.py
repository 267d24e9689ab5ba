"""E2's figure: each configuration's fit over the terrain profile."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro.experiment import RunFiles
from dlrepro.experiments.universal_approximation.run import TRANSECT_ROW, terrain
from dlrepro.experiments.plotting import save, select


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles, published: list) -> list[Path]:
    import matplotlib.pyplot as plt

    xs, ys, heights = terrain()
    to_metres = heights.std()
    seed = table["seed"].min()
    configs = table[["hidden", "activation"]].drop_duplicates()
    configs = configs.sort_values(["activation", "hidden"], ascending=[False, True]).values.tolist()
    # the linear control once: all H look alike
    configs = [tuple(c) for c in configs if c[1] == "relu"] + \
        [tuple(c) for c in configs if c[1] == "none"][-1:]
    fig, axes = plt.subplots(1, len(configs), figsize=(4.2 * len(configs), 3.6), sharey=True,
                             squeeze=False)
    for ax, (hidden, activation) in zip(axes[0], configs):
        rows = select(table, hidden=hidden, activation=activation, seed=seed)
        fit = files.load(rows["run_id"].iloc[0], "fit.npy") * to_metres + heights.mean()
        mse = select(rows, "train_mse")["value"].iloc[0]
        ax.plot(xs, heights, color="0.55", lw=2.2, label="terrain profile")
        ax.plot(xs, fit, color="C3" if activation == "relu" else "C0", lw=1.1, label="fit")
        control = ", no ReLU" if activation == "none" else ""
        ax.set_title(f"H = {hidden}{control}\nMSE {mse:.2g} (standardised)", fontsize=10)
        ax.set_xlabel("x (standardised)")
    axes[0][0].set_ylabel("elevation (m)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("One hidden layer fitted to a terrain profile "
                 f"(DEM row {TRANSECT_ROW}), seed {seed}")
    return [save(fig, out_dir / "universal_approximation.png")]
