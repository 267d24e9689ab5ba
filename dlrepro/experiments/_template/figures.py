"""TEMPLATE — the slide's figures, drawn from the result table and the runs' files. Editing this
module redraws the suite's figures at the next report and reruns nothing: a run's identity covers
the declaration and run.py only. Import what you need from run.py (a function to recompute a
curve); run.py must never import this module or dlrepro.experiments.plotting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro.experiment import RunFiles
from dlrepro.experiments.plotting import save, select
from dlrepro.schema import Approx


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles,
            published: list[Approx]) -> list[Path]:
    """Draw from ``table`` (one row per logged value of a successful run, with the run's
    parameters and seed as columns; never empty), the runs' files (``files.load(run_id,
    "model.npz")``, ``files.path(run_id, name)``) and ``published``, the suite's ``approx`` claims
    marked ``published`` (a number printed in the course, to draw as a reference: take it from
    there, never write it here). Draw the values that ran, never values of the shipped profiles:
    ``table.attrs["swept"]`` names the parameters a ``--set`` list swept. Return what was
    written."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for width, rows in select(table, "loss", curve=True).groupby("width"):
        curve = rows.groupby("step")["value"].mean()
        ax.plot(curve.index, curve.values, label=f"width {width}")
    for claim in published:  # e.g. a published final loss, as a horizontal line
        if claim.metric == "loss" and not isinstance(claim.value, list):
            ax.axhline(claim.value, color="grey", ls="--", label=claim.published.source)
    ax.set(xlabel="step", ylabel="loss", yscale="log", title="Template: fitting |x|")
    ax.legend()
    return [save(fig, out_dir / "loss.png")]
