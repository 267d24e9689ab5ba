"""What every experiment's figures share (drawing code: no run module imports it)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlrepro.formatting import assignments
from dlrepro.schema import Metric


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


def shown(table: pd.DataFrame, key: str, slide: Iterable) -> list:
    """The values of ``key`` a figure draws: the slide's that ran, unless ``--set`` swept ``key``
    (``table.attrs["swept"]``) or none of them ran; then every value that ran."""
    ran = sorted(table[key].dropna().unique())
    kept = [value for value in ran if value in set(slide)]
    return ran if key in table.attrs.get("swept", ()) or not kept else kept


def sweeps(table: pd.DataFrame, metrics: dict[str, Metric], parameters: Iterable[str],
           out_dir: Path) -> list[Path]:
    """A figure per parameter ``--set`` swept (``table.attrs["swept"]``, ``against``) of the
    declared ``metrics`` but timings, which the machine sets, not the parameter."""
    declared = [name for name, metric in metrics.items() if not metric.timing]
    drawn = [against(table, key, declared, parameters, out_dir)
             for key in table.attrs.get("swept", ())]
    return [path for path in drawn if path]


def against(table: pd.DataFrame, key: str, metrics: list[str], parameters: Iterable[str],
            out_dir: Path) -> Path | None:
    """Each of ``metrics``' final values against the parameter ``key`` (a panel per metric): the
    mean over seeds ± their standard deviation, a line per configuration of the other
    ``parameters`` that vary; None if no run with ``key`` logged one of them."""
    import matplotlib.pyplot as plt

    finals = table[table["step"].isna() & table[key].notna() & table["metric"].isin(metrics)]
    drawn = [metric for metric in metrics if (finals["metric"] == metric).any()]
    if not drawn:
        return None
    others = [name for name in parameters
              if name != key and name in finals and finals[name].nunique() > 1]
    rows_of_panels, legend = math.ceil(len(drawn) / 4), 3.5 if others else 0
    width = 4.4 * min(len(drawn), 4)
    fig, axes = plt.subplots(rows_of_panels, min(len(drawn), 4), squeeze=False,
                             figsize=(width + legend, 3.4 * rows_of_panels + 0.4))
    for ax in axes.flat[len(drawn):]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, drawn):
        rows = finals[finals["metric"] == metric]
        for values, line in rows.groupby(others or (lambda _: ""), dropna=False):
            stats = line.groupby(key)["value"].agg(["mean", "std"])
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o",
                        capsize=3, label=assignments(zip(others, values)))
        ax.set_yscale(**_scale(rows["value"]))
        ax.set_xscale(**_scale(rows[key]))
        ax.set_xticks(sorted(rows[key].unique()))
        ax.set(title=metric, xlabel=key)
    if others:  # the configurations once, beside the panels
        fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="center right", fontsize=7)
    seeds = finals.groupby("run_id")["seed"].first().nunique()
    fig.suptitle(f"Final values against {key}, swept with --set (mean ± sd over {seeds} seed(s))")
    return save(fig, out_dir / f"against_{key}.png",
                layout_rect=(0, 0, width / (width + legend), 1))


def _scale(values: pd.Series) -> dict:
    """A log scale for positive numbers spanning over two decades (symlog where some are 0, as a
    training error that interpolates), else linear."""
    if not pd.api.types.is_numeric_dtype(values) or values.min() < 0:
        return {"value": "linear"}
    positive = values[values > 0]
    if not len(positive) or values.max() < 100 * positive.min():
        return {"value": "linear"}
    if len(positive) < len(values):
        return {"value": "symlog", "linthresh": positive.min()}
    return {"value": "log"}


def mosaic(images: np.ndarray, per_row: int) -> np.ndarray:
    """Images [N, H, W] as one picture, ``per_row`` to a row, with a thin grey frame between
    them."""
    import torch
    from torchvision.utils import make_grid

    grid = make_grid(torch.from_numpy(images)[:, None], nrow=per_row, padding=1, pad_value=128)
    return grid[0].numpy()
