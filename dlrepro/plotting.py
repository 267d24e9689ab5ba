"""What every experiment's figures share."""

from pathlib import Path


def save(fig, path: Path, *, layout_rect: tuple | None = None) -> Path:
    """Lay out, write as PNG (creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=layout_rect)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
