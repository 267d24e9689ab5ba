"""E9's figure: the gradient norm per layer, sigmoid against ReLU."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro.experiment import RunFiles
from dlrepro.experiments.plotting import save, select

LINES = ("-", "--", ":", "-.")


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles, published: list) -> list[Path]:
    import matplotlib.pyplot as plt

    rows = select(table, "grad_norm", fact="vanishing")
    if rows.empty:
        return []
    depths = sorted(rows["depth"].unique())  # several when a sweep ran them: a line style each
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for activation, colour in (("sigmoid", "C0"), ("relu", "C3")):
        mine = select(rows, activation=activation)
        for (depth, seed), one in mine.groupby(["depth", "seed"]):
            name = activation if len(depths) == 1 else f"{activation}, {depth} layers"
            ax.semilogy(one["step"], one["value"], "o", ls=LINES[depths.index(depth) % 4],
                        color=colour, ms=3, lw=1, alpha=0.7,
                        label=name if seed == mine["seed"].min() else None)
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel("‖∂loss/∂W‖")
    ax.set_title(f"Gradient norm per layer, {'/'.join(map(str, depths))}-layer MLP")
    ax.legend()
    return [save(fig, out_dir / "vanishing_gradients.png")]
