"""E6 and E7's figures: learning curves, FGSM accuracy by ε, the best model's attacked digits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro.experiments.image_sets import titles
from dlrepro.experiment import RunFiles
from dlrepro.experiments.plotting import save, select


def figures(table: pd.DataFrame, out_dir: Path, files: RunFiles, published: list) -> list[Path]:
    table = table.assign(label=table.apply(_label, axis=1))
    return [_learning_curves(table, out_dir), _fgsm_accuracy(table, out_dir),
            _fgsm_digits(table, files, out_dir)]


def _learning_curves(table: pd.DataFrame, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    for label, rows in _by_configuration(table):
        for ax, metric in ((ax_loss, "loss_sum"), (ax_err, "test_error")):
            curve = select(rows, metric, curve=True).groupby("step")["value"].mean()
            ax.plot(curve.index, curve.values, marker="o", label=label)
    ax_loss.set(title="summed batch loss per epoch", xlabel="epoch", yscale="log")
    ax_err.set(title="test error (%)", xlabel="epoch", yscale="log")
    for ax in (ax_loss, ax_err):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_err.legend(fontsize=8)
    return save(fig, out_dir / "learning_curves.png")


def _fgsm_accuracy(table: pd.DataFrame, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, rows in _by_configuration(select(table, "fgsm_accuracy")):
        curve = rows.groupby("step")["value"].mean()
        ax.plot(curve.index / 1000, curve.values, marker="o", label=label)
    ax.set(title="FGSM: x + ε·sign(∇ₓJ)", xlabel="ε (pixels in [0, 1])",
           ylabel="test accuracy (%)")
    ax.legend(fontsize=8)
    return save(fig, out_dir / "fgsm_accuracy.png")


def _fgsm_digits(table: pd.DataFrame, files: RunFiles, out_dir: Path) -> Path:
    """The best model's attacked digits: the attack, not a weak model."""
    import matplotlib.pyplot as plt

    finals = select(table, "test_error", curve=False)
    best = finals.loc[finals["value"].idxmin()]
    data = files.load(best["run_id"], "fgsm_examples.npz")
    eps_keys = sorted((k for k in data.files if k.startswith("eps_")), key=lambda k: int(k[4:]))
    fig, axes = plt.subplots(len(eps_keys), 8, figsize=(8, 1.15 * len(eps_keys)), squeeze=False)
    for row, key in enumerate(eps_keys):
        predicted = data["pred_" + key[4:]]
        for col in range(8):
            ax = axes[row, col]
            image = data[key][col]  # grey [H, W], or colour [3, H, W]
            ax.imshow(image.transpose(1, 2, 0) if image.ndim == 3 else image, cmap="gray",
                      vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            right = predicted[col] == data["labels"][col]
            ax.set_title(str(predicted[col]), fontsize=9, color="black" if right else "red")
        axes[row, 0].set_ylabel(f"ε = {int(key[4:]) / 1000:g}", fontsize=8)
    fig.suptitle(f"Adversarial {titles(table['dataset'])} images and predictions "
                 f"({best['label']}; red: wrong)", fontsize=10)
    return save(fig, out_dir / "fgsm_digits.png", layout_rect=(0, 0, 1, 0.95))


def _by_configuration(table: pd.DataFrame):
    """(label, rows) per configuration, batch sizes in numeric order."""
    for _, rows in table.groupby(["model", "lr", "batch_size"], sort=True):
        yield rows["label"].iloc[0], rows


def _label(row: pd.Series) -> str:
    return f"{row['model']}, lr {row['lr']:g}, batch {row['batch_size']}"
