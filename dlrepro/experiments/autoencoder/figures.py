"""E4's figures: the slide's reconstructions and interpolations, the error against d (with the
published errors the suite cites) and the training curves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro.experiments.image_sets import titles
from dlrepro.experiment import RunFiles
from dlrepro.experiments.autoencoder import PIXELS
from dlrepro.experiments.plotting import mosaic, save, select
from dlrepro.schema import Approx

SLIDE_INTERPOLATIONS = (("pca", 32), ("cnn", 8), ("cnn", 32))


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles,
            published: list[Approx]) -> list[Path]:
    finals = table[table["step"].isna()]
    first_seed = select(finals, seed=finals["seed"].min())
    run_of = first_seed.drop_duplicates("run_id").set_index(["model", "d"])["run_id"]
    ds = sorted(table["d"].unique())
    paths = [_reconstructions(run_of, ds, titles(table["dataset"]), files, out_dir),
             *_interpolations(run_of, table.attrs.get("swept", ()), files, out_dir),
             _error_vs_d(finals, ds, _references(published, table), out_dir)]
    curves = select(table, "train_mse", curve=True)
    return paths + ([_training_curves(curves, out_dir)] if len(curves) else [])


def _references(published: list[Approx], table: pd.DataFrame) -> list[Approx]:
    """The published errors per image that apply to the table's data (MNIST numbers on MNIST)."""
    return [claim for claim in published if claim.metric == "test_sse"
            and all((table[k] == v).all() for k, v in claim.applies.items())]


def _reconstructions(run_of: pd.Series, ds: list[int], dataset: str, files: RunFiles,
                     out_dir: Path) -> Path:
    """The slide: the first 36 test images, then their reconstructions g∘f(X) by each model at
    each d."""
    import matplotlib.pyplot as plt

    models = [m for m in ("cnn", "pca", "linear") if m in run_of.index.get_level_values(0)]
    size = (2.1 * (len(ds) + 1), 2.3 * len(models))
    fig, axes = plt.subplots(len(models), len(ds) + 1, figsize=size, squeeze=False)
    for row, model in enumerate(models):
        for col, d in enumerate([None, *ds]):
            ax = axes[row, col]
            ax.set_xticks([]), ax.set_yticks([])
            if d is None:
                originals = files.load(run_of.iloc[0], "reconstructions.npz")["originals"]
                ax.imshow(mosaic(originals, 6), cmap="gray")
                ax.set_title("X (test)", fontsize=9)
            elif (model, d) in run_of:
                shown = files.load(run_of[model, d], "reconstructions.npz")["reconstructions"]
                ax.imshow(mosaic(shown, 6), cmap="gray", vmin=0, vmax=255)
                ax.set_title(f"d = {d}", fontsize=9)
            else:
                ax.axis("off")
            if row:
                ax.set_title("")
        axes[row, 0].set_ylabel(model.upper() if model != "linear" else "linear AE", fontsize=10)
    fig.suptitle(f"g∘f(X): the first 36 test images of {dataset} reconstructed", fontsize=11)
    return save(fig, out_dir / "reconstructions.png", layout_rect=(0, 0, 1, 0.95))


def _interpolations(run_of: pd.Series, swept: tuple, files: RunFiles,
                    out_dir: Path) -> list[Path]:
    """The slide's three interpolations (PCA at d = 32, the autoencoder at d = 8 and 32), or, for a
    sweep of d, the autoencoder's (else the first model's) at each d that ran."""
    import matplotlib.pyplot as plt

    pairs = [(m, d) for m, d in SLIDE_INTERPOLATIONS if (m, d) in run_of]
    if "d" in swept or not pairs:
        models = run_of.index.get_level_values(0)
        model = next(m for m in ("cnn", *models) if m in models)
        pairs = [(m, d) for m, d in run_of.index if m == model]
    if not pairs:
        return []
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.5 * len(pairs), 3.8), squeeze=False)
    for ax, (model, d) in zip(axes[0], pairs):
        frames = files.load(run_of[model, d], "interpolation.npz")["frames"]
        ax.imshow(mosaic(frames.reshape(-1, 28, 28), frames.shape[1]), cmap="gray", vmin=0,
                  vmax=255)
        ax.set(xticks=[], yticks=[], title=f"{'PCA' if model == 'pca' else 'autoencoder'}, d = {d}",
               xlabel="α from 0 to 1")
    fig.suptitle("Latent interpolation g((1 − α) f(x) + α f(x'))", fontsize=11)
    return [save(fig, out_dir / "interpolation.png", layout_rect=(0, 0, 1, 0.93))]


def _error_vs_d(finals: pd.DataFrame, ds: list[int], references: list[Approx],
                out_dir: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    fig, (ax_mse, ax_conf) = plt.subplots(1, 2, figsize=(10, 4))
    for model, rows in finals.groupby("model"):
        for ax, metric in ((ax_mse, "test_mse"), (ax_conf, "midpoint_confidence")):
            curve = select(rows, metric).groupby("d")["value"].agg(["mean", "std"])
            ax.errorbar(curve.index, curve["mean"], yerr=curve["std"].fillna(0), marker="o",
                        capsize=3, label=model)
    for claim in references:  # at the d the claim compares with, in the figure's unit
        d, error = claim.where["d"], claim.value / PIXELS
        ax_mse.plot(d, error, "k*", markersize=9)
        label = f"{claim.value:g} per image, published"  # a reference, not the model's own
        ax_mse.annotate(f"{label}\n({claim.source or claim.published.source})", (d, error),
                        fontsize=7, xytext=(-6, 0), textcoords="offset points", ha="right",
                        va="center")
    ax_mse.set(title="test reconstruction error", xlabel="d",
               ylabel="MSE per pixel (pixels in [0, 1])", xscale="log", yscale="log")
    ax_conf.set(title="E6 classifier's confidence on α = 0.5 midpoints", xlabel="d",
                ylabel="mean max-softmax", xscale="log")
    shown = [str(d) for d in ds]
    for i in range(len(ds) - 1):  # d = 30 beside 32: its tick, without a label over 32's
        if ds[i + 1] <= 1.15 * ds[i]:
            shown[i] = ""
    for ax in (ax_mse, ax_conf):
        ax.set_xticks(ds, shown)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.legend(fontsize=8)
    return save(fig, out_dir / "error_vs_d.png")


def _training_curves(curves: pd.DataFrame, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    models = sorted(set(curves["model"]))  # the trained ones: cnn, linear
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), sharey=True,
                             squeeze=False)
    axes = axes[0]
    for ax, model in zip(axes, models):
        for d, rows in select(curves, model=model).groupby("d"):
            curve = rows.groupby("step")["value"].mean()
            ax.plot(curve.index, curve.values, label=f"d = {d}")
        ax.set(title=f"{'CNN' if model == 'cnn' else 'linear'} autoencoder",
               xlabel="training images seen", yscale="log")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training MSE per pixel")
    return save(fig, out_dir / "training_curves.png")
