"""E5's figures: the fixed noise's samples by epoch; the Fréchet distance and losses by epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro.experiments.image_sets import titles
from dlrepro.experiment import RunFiles
from dlrepro.experiments.gan.run import LOSSES
from dlrepro.experiments.plotting import mosaic, save, select


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles, published: list) -> list[Path]:
    return [_samples(table, files, out_dir), _distance_and_losses(table, out_dir)]


def _samples(table: pd.DataFrame, files: RunFiles, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    first = select(table, seed=table["seed"].min())["run_id"].iloc[0]
    grids = files.load(first, "samples.npz")
    epochs = sorted((int(k.split("_")[1]) for k in grids.files))
    fig, axes = plt.subplots(1, len(epochs), figsize=(2.6 * len(epochs), 2.9), squeeze=False)
    for ax, epoch in zip(axes[0], epochs):
        ax.imshow(mosaic(grids[f"epoch_{epoch}"], 8), cmap="gray", vmin=0, vmax=255)
        ax.set(xticks=[], yticks=[], title=f"epoch {epoch}" if epoch else "untrained")
    fig.suptitle(f"DCGAN samples of a fixed noise, by epoch ({titles(table['dataset'])})",
                 fontsize=11)
    return save(fig, out_dir / "samples_by_epoch.png", layout_rect=(0, 0, 1, 0.92))


def _distance_and_losses(table: pd.DataFrame, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    def per_epoch(metric: str):
        return select(table, metric, curve=True).groupby("step")["value"]

    fig, (ax_fd, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    fd = per_epoch("frechet_distance").agg(["mean", "std"])
    ax_fd.errorbar(fd.index, fd["mean"], yerr=fd["std"].fillna(0), marker="o", capsize=3,
                   label="generated vs test")
    floor = select(table, "fd_floor")["value"].mean()
    ax_fd.axhline(floor, color="grey", linestyle="--", label=f"floor: train vs test ({floor:.3g})")
    ax_fd.set(title="Fréchet distance on the E6 classifier's features", xlabel="epoch",
              yscale="log")
    ax_fd.set_xticks(fd.index)
    ax_fd.legend(fontsize=8)
    for metric in LOSSES:
        curve = per_epoch(metric).mean()
        ax_loss.plot(curve.index, curve.values, marker=".", label=metric)
    ax_loss.set(title="D and G by epoch (mean over batches and seeds)", xlabel="epoch")
    ax_loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.legend(fontsize=8)
    return save(fig, out_dir / "frechet_distance.png")
