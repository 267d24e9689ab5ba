"""E10's figures: the slide's, one t-SNE map per layer with the points coloured by class (the
trained network, and the untrained control beside it in a figure of its own); and the separation
per layer, on the maps and in the layers' own spaces, trained against untrained."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro.experiment import RunFiles
from dlrepro.experiments.image_sets import CLASSES, titles
from dlrepro.experiments.plotting import save, select


NETWORK_COLOURS = {"trained": "C0", "untrained": "C3"}
NETWORKS = {"cnn_handout": "handout CNN", "resnet": "ResNet-20"}


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles, published: list) -> list[Path]:
    drawn = [_maps(table, files, network, out_dir) for network in ("trained", "untrained")
             if network in set(table["network"])]
    return [*drawn, _separation(table, out_dir)]


def _title(step: int) -> str:
    return f"Layer #{step}" if step else "Input"


def _maps(table: pd.DataFrame, files: RunFiles, network: str, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    rows = select(table, network=network)
    first = select(rows, seed=rows["seed"].min())["run_id"].iloc[0]
    maps = files.load(first, "maps.npz")
    steps = sorted(int(name.split("_")[1]) for name in maps.files if name.startswith("step_"))
    labels, colours = maps["labels"], plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(steps), figsize=(3.2 * len(steps), 3.6), squeeze=False)
    for ax, step in zip(axes[0], steps):
        points = maps[f"step_{step}"]
        for label in range(10):
            mine = points[labels == label]
            ax.scatter(mine[:, 0], mine[:, 1], s=2, color=colours(label), rasterized=True)
        ax.set(xticks=[], yticks=[], title=_title(step))
    handles = [plt.Line2D([], [], ls="", marker="o", color=colours(label)) for label in range(10)]
    fig.legend(handles, CLASSES.get(rows["dataset"].iloc[0], list(map(str, range(10)))),
               loc="lower center", ncol=10, frameon=False, markerscale=1.2)
    fig.suptitle(f"Encodings of {len(labels):,} {titles(rows['dataset'])} test images in the "
                 f"layers of the {network} {NETWORKS[rows['model'].iloc[0]]} (t-SNE)", fontsize=11)
    return save(fig, out_dir / f"layer_maps_{network}.png", layout_rect=(0, 0.07, 1, 0.94))


def _separation(table: pd.DataFrame, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for metric, style in (("map_knn_accuracy", "-"), ("space_knn_accuracy", ":")):
        for network, rows in select(table, metric, curve=True).groupby("network"):
            curve = rows.groupby("step")["value"].mean()
            ax.plot([_title(step) for step in curve.index], curve.values, style, marker="o",
                    color=NETWORK_COLOURS[network], label=f"{network}, {metric.split('_')[0]}")
    ax.set(title="Class separation by layer: 10-NN held-out accuracy (%)", ylabel="%")
    ax.legend(fontsize=8)
    return save(fig, out_dir / "separation.png")
