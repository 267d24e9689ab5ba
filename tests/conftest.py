import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Real MNIST files: $DLREPRO_DATA_DIR, else ../shared/data beside the checkout."""
    path = Path(os.environ.get("DLREPRO_DATA_DIR", SHARED_DATA))
    if not (path / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST not found under {path} (set DLREPRO_DATA_DIR)")
    return path
