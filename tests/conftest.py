import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
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


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """Every suite run at the smoke profile, once per test session: (results root, smoke folder)."""
    from dlrepro.cli import main

    results = tmp_path_factory.mktemp("results")
    assert main(["run", "--profile", "smoke", "--results", str(results)]) == 0
    return results, results / "smoke"


@pytest.fixture(scope="session")
def smoke_report(smoke) -> Path:
    """The smoke folder with report.md and report.html written."""
    from dlrepro.cli import main

    assert main(["report", "--profile", "smoke", "--results", str(smoke[0])]) == 0
    return smoke[1]


@pytest.fixture
def context(tmp_path):
    """A real RunContext for one experiment's run, on the CPU, writing under tmp_path/NAME."""
    import torch

    from dlrepro.experiment import RunContext, get

    def make(experiment: str, *, data_dir: Path | None = None, inputs: dict | None = None,
             name: str = "run", seed: int = 0) -> RunContext:
        return RunContext(seed=seed, device=torch.device("cpu"), data_dir=data_dir,
                          artifact_dir=tmp_path / name, declared=frozenset(get(experiment).metrics),
                          inputs=inputs or {})

    return make


def logged(ctx) -> dict:
    """What a run logged: metric (or (metric, step)) -> value."""
    return {_logged_key(m): m["value"] for m in ctx.metrics}


def _logged_key(metric: dict) -> str | tuple[str, int]:
    return metric["metric"] if metric["step"] is None else (metric["metric"], metric["step"])


def restore_default_signals() -> None:
    """In a child: a process started in the background by a non-interactive shell inherits an
    ignored SIGINT; Ctrl-C must reach dlrepro however pytest was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def interrupted_run(tmp_path):
    """Start `dlrepro run ARGS --results tmp_path`, send it `sig` (Ctrl-C's SIGINT by default) once
    `at_least` records of `suite` are written; check it exits 128 + sig with exactly the finished
    runs in the table, each record whole, and return their run_ids."""

    def run(suite: str, profile: str, at_least: int, *args: str,
            sig: int = signal.SIGINT) -> set[str]:
        cmd = [sys.executable, "-m", "dlrepro", "run", suite, "--profile", profile, *args,
               "--results", str(tmp_path)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "COLUMNS": "120"},
                                preexec_fn=restore_default_signals)
        records = tmp_path / profile / "records" / suite
        deadline = time.time() + 120
        while time.time() < deadline and len(list(records.glob("*.json"))) < at_least:
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + sig, err[-3000:]
        finished = {p.stem for p in records.glob("*.json")}
        for path in records.glob("*.json"):
            json.loads(path.read_text())  # every record is whole
        assert set(pd.read_parquet(tmp_path / profile / "runs.parquet")["run_id"]) == finished
        assert len(finished) >= at_least
        return finished

    return run


@pytest.fixture
def needs_chain(tmp_path) -> Path:
    """A copy of the autoencoder suite and the classifier suite it needs, cut at smoke to one run
    each (PCA at d = 2; the handout CNN), in a suites folder of their own."""
    suites = tmp_path / "suites"
    suites.mkdir()
    smoke_grid = 'grid = { version = [{ model = "cnn_handout", lr = 0.1, batch_size = 100 }] }\n'
    producer = (ROOT / "suites" / "mnist_cnn.toml").read_text().replace(
        "[profiles.smoke]\n", "[profiles.smoke]\n" + smoke_grid)
    producer = producer[:producer.index("[[claims]]")]  # they select what the cut removed
    consumer = (ROOT / "suites" / "autoencoder.toml").read_text().replace(
        'grid = { d = [2, 32], model = ["pca", "linear", "cnn"] }',
        'grid = { d = [2], model = ["pca"] }')
    consumer = consumer[:consumer.index("[[claims]]")]
    (suites / "mnist_cnn.toml").write_text(producer)
    (suites / "autoencoder.toml").write_text(consumer)
    return suites
