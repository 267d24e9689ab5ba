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


def panels(count: int, width: float, height: float, extra_height: float = 0) -> tuple:
    """A figure of ``count`` panels of ``width`` × ``height`` inches, at most four a row (so a
    sweep's many stay readable), and its panels; ``extra_height`` inches for titles or legends."""
    import matplotlib.pyplot as plt

    rows, columns = math.ceil(count / 4), min(count, 4)
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(width * columns, height * rows + extra_height))
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, axes.flat[:count]


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
    finals = table[table["step"].isna() & table[key].notna() & table["metric"].isin(metrics)]
    drawn = [metric for metric in metrics if (finals["metric"] == metric).any()]
    if not drawn:
        return None
    others = [name for name in parameters
              if name != key and name in finals and finals[name].nunique() > 1]
    grouping = others or (lambda _: "")
    labels = [_configuration(others, values)
              for values, _ in finals.groupby(grouping, dropna=False)]
    legend_height = 0.25 * math.ceil(len(labels) / 3) + 0.15 if others else 0
    fig, axes = panels(len(drawn), 4.4, 3.4, extra_height=0.4 + legend_height)
    for ax, metric in zip(axes, drawn):
        rows = finals[finals["metric"] == metric]
        for values, line in rows.groupby(grouping, dropna=False):
            label = _configuration(others, values)
            stats = line.groupby(key)["value"].agg(["mean", "std"])
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o",
                        capsize=3, label=label, color=f"C{labels.index(label) % 10}")
        ax.set_yscale(**_scale(rows["value"]))
        ax.set_xscale(**_scale(rows[key]))
        ax.set_xticks(sorted(rows[key].unique()))
        ax.set(title=metric, xlabel=key)
    if others:  # each configuration once, below the panels, whichever panels draw it
        handles = {}
        for ax in axes:
            handles |= dict(zip(*reversed(ax.get_legend_handles_labels())))
        fig.legend([handles[label] for label in labels], labels, loc="lower center",
                   ncol=min(len(labels), 3), fontsize=8)
    seeds = finals.groupby("run_id")["seed"].first().nunique()
    fig.suptitle(f"Final values against {key}, swept with --set (mean ± sd over {seeds} seed(s))")
    return save(fig, out_dir / f"against_{key}.png",
                layout_rect=(0, legend_height / fig.get_figheight(), 1, 1))


def _configuration(names: list[str], values: tuple) -> str:
    """A line's configuration, named by the parameters it has: "mode=basins", not "w0=nan"."""
    return assignments((name, value) for name, value in zip(names, values) if pd.notna(value))


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
