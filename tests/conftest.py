"""What the tests share: one way to run the command line in a process of its own, one way to
copy and edit a suite file, and the runs that many tests read, made once per test session.

Two tiers: the fast one by default, the tests marked ``slow`` (Ray clusters, MNIST training,
signals, the browser) with ``pytest -m slow``."""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SUITES = ROOT / "suites"
# What a bad suite file, a declaration or a refusal must be read without.
HEAVY = ("torch", "torchvision", "pandas", "ray")


# ---- the command line in a process of its own, as a shell runs it ----

def _env(project: Path | None, columns: int | None = None) -> dict:
    """A child's environment: ``project``'s copy of dlrepro, if given, and a terminal ``columns``
    wide, if given."""
    env = dict(os.environ)
    if project is not None:
        env["PYTHONPATH"] = str(project)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return env


def _child(*args: str | Path, project: Path | None, columns: int | None) -> dict:
    """Popen's arguments for ``python -m dlrepro ARGS``."""
    return {"args": [sys.executable, "-m", "dlrepro", *map(str, args)], "text": True,
            "env": _env(project, columns), "preexec_fn": restore_default_signals}


def dlrepro(*args: str | Path, project: Path | None = None, cwd: Path | None = None,
            columns: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``dlrepro ARGS`` run to its end; its stdout and stderr as text."""
    return subprocess.run(**_child(*args, project=project, columns=columns), cwd=cwd,
                          capture_output=True, timeout=timeout)


def start_dlrepro(*args: str | Path, columns: int | None = None, stdout=None,
                  stderr=subprocess.PIPE) -> subprocess.Popen:
    """``dlrepro ARGS`` started in the background, its stderr a pipe (stdout one if asked)."""
    return subprocess.Popen(**_child(*args, project=None, columns=columns), stdout=stdout,
                            stderr=stderr)


PROBE = """import sys
sys.modules.update(dict.fromkeys(sys.argv[1].split(), None))  # as if not installed
from dlrepro.cli import main
code = main(sys.argv[2:])
print(sorted(m for m in %r if m in sys.modules))
sys.exit(code)
""" % (HEAVY,)


def probe(*args: str | Path, without: tuple[str, ...] = (), project: Path | None = None,
          cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, str]:
    """``dlrepro ARGS`` in a child without the packages ``without``: what it did, and the HEAVY
    modules it imported (its last line of stdout)."""
    done = subprocess.run([sys.executable, "-c", PROBE, " ".join(without), *map(str, args)],
                          env=_env(project), cwd=cwd, capture_output=True, text=True, timeout=300)
    return done, (done.stdout.splitlines() or ["(nothing)"])[-1]


def copy_project(folder: Path, suites: Path = SUITES) -> Path:
    """dlrepro/, runners/ and ``suites`` copied into ``folder/project``, for a test that edits the
    source: the real one is never edited."""
    project = folder / "project"
    for source, copied in ((ROOT / "dlrepro", "dlrepro"), (ROOT / "runners", "runners"),
                           (suites, "suites")):
        shutil.copytree(source, project / copied, ignore=shutil.ignore_patterns("__pycache__"))
    return project


# ---- suite files: written, copied, edited ----

def write_suite(folder: Path, text: str, name: str = "bad") -> Path:
    """``text`` as the suite file ``folder/NAME.toml``, every NAME in it made ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text.replace("NAME", name), encoding="utf-8")
    return path


def edited(text: str, *changes: tuple[str, str]) -> str:
    """``text`` with each (old, new) change made; each old text must be in it."""
    for old, new in changes:
        assert old in text, f"no longer there: {old!r}"
        text = text.replace(old, new)
    return text


def edit(path: Path, *changes: tuple[str, str]) -> Path:
    """The file ``path`` with each (old, new) change made in place."""
    path.write_text(edited(path.read_text(encoding="utf-8"), *changes), encoding="utf-8")
    return path


def copy_suite(name: str, folder: Path, *changes: tuple[str, str], smoke: str = "",
               rename: str | None = None, claims: bool = True) -> Path:
    """suites/NAME.toml copied into ``folder``: as the suite ``rename`` if given, ``smoke`` lines
    added to its smoke profile, each (old, new) change made, and its claims left out if
    ``claims`` is false (a cut grid leaves them selecting nothing)."""
    text = (SUITES / f"{name}.toml").read_text(encoding="utf-8")
    if not claims:
        text = text[:text.index("[[claims]]")]
    if rename:
        changes = ((f'name = "{name}"', f'name = "{rename}"'), *changes)
    if smoke:
        changes = (("[profiles.smoke]\n", f"[profiles.smoke]\n{smoke}"), *changes)
    return write_suite(folder, edited(text, *changes), rename or name)


# ---- result tables, as a test compares them ----

def metrics_of(profile_dir: Path) -> pd.DataFrame:
    """A results folder's metrics table in a stable order, to compare two runners' or sweeps'."""
    table = pd.read_parquet(profile_dir / "metrics.parquet")
    return table.sort_values(["run_id", "metric", "step"], ignore_index=True)


def untimed(table: pd.DataFrame, suites: list[Path]) -> pd.DataFrame:
    """The metrics that do not measure time: those are what a rerun must give again."""
    from dlrepro.suite import load

    timing = {name for path in suites for name, m in load(path).metrics.items() if m.timing}
    return table[~table["metric"].isin(timing)].reset_index(drop=True)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Real MNIST files: $DLREPRO_DATA_DIR, else ../shared/data beside the checkout."""
    path = Path(os.environ.get("DLREPRO_DATA_DIR", SHARED_DATA))
    if not (path / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST not found under {path} (set DLREPRO_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def xor_smoke(tmp_path_factory) -> Path:
    """xor run at smoke, and again with --set epochs=7, into one results root: a profile folder
    and an override folder. Tests may add reports to it, never runs."""
    from dlrepro.cli import main

    root = tmp_path_factory.mktemp("xor")
    for extra in ([], ["--set", "epochs=7"]):
        assert main(["run", "xor", "--profile", "smoke", "--results", str(root), *extra]) == 0
    return root


def write_cifar(folder: Path, train: int = 500, test: int = 200) -> None:
    """torchvision's CIFAR-10 layout under ``folder``, with ``train`` and ``test`` images: each
    class a colour of its own under noise, so that there is something to learn."""
    import pickle

    import numpy as np

    from dlrepro.experiments.image_sets import CIFAR_FILES, CIFAR_FOLDER

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (10, 3, 1))
    (folder / CIFAR_FOLDER).mkdir(parents=True)
    for name, size in zip(CIFAR_FILES, [train // 5] * 5 + [test]):
        labels = rng.integers(0, 10, size)
        pixels = np.clip(colours[labels] + rng.normal(0, 60, (size, 3, 1024)), 0, 255)
        batch = {"data": pixels.astype(np.uint8).reshape(size, 3072), "labels": labels.tolist()}
        if name == "test_batch":  # its keys as bytes, as a batch pickled by Python 3 may have them
            batch = {key.encode(): value for key, value in batch.items()}
        (folder / CIFAR_FOLDER / name).write_bytes(pickle.dumps(batch))


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """Every suite run at the smoke profile, once per test session, on the real MNIST sets and a
    small CIFAR-10 written here: (results root, smoke folder)."""
    from dlrepro.cli import main

    data, results = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("results")
    mnist = Path(os.environ.get("DLREPRO_DATA_DIR", SHARED_DATA))
    for name in ("MNIST", "FashionMNIST"):
        (data / name).symlink_to(mnist / name)
    write_cifar(data)
    assert main(["run", "--profile", "smoke", "--results", str(results),
                 "--data-dir", str(data)]) == 0
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

    def run(suite: str | Path, profile: str, at_least: int, *args: str,
            sig: int = signal.SIGINT) -> set[str]:
        proc = start_dlrepro("run", suite, "--profile", profile, *args, "--results", tmp_path,
                             columns=120, stdout=subprocess.PIPE)
        records = tmp_path / profile / "records" / Path(suite).stem
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


def cut_needs_chain(folder: Path) -> Path:
    """A copy of the autoencoder suite and the classifier suite it needs, cut at smoke to one run
    each (PCA at d = 2; the handout CNN), in the suites folder ``folder/suites``."""
    suites = folder / "suites"
    copy_suite("mnist_cnn", suites, claims=False, smoke='grid = { version = [{ model = '
               '"cnn_handout", lr = 0.1, batch_size = 100 }] }\n')
    copy_suite("autoencoder", suites, ('grid = { d = [2, 32], model = ["pca", "linear", "cnn"] }',
                                       'grid = { d = [2], model = ["pca"] }'), claims=False)
    return suites


@pytest.fixture
def needs_chain(tmp_path) -> Path:
    """The cut needs chain, for a test to edit."""
    return cut_needs_chain(tmp_path)


@dataclass
class ChainRun:
    suites: Path  # the cut needs chain: not to be edited
    results: Path  # its run at smoke, on the local runner: not to be run into
    said: str  # what the run wrote on stderr


@pytest.fixture(scope="session")
def needs_chain_run(tmp_path_factory, mnist_dir) -> ChainRun:
    """The cut needs chain run once per test session at smoke: the classifier trained first."""
    from dlrepro.cli import main

    folder = tmp_path_factory.mktemp("needs")
    suites, results, said = cut_needs_chain(folder), folder / "results", io.StringIO()
    with contextlib.redirect_stderr(said):
        assert main(["run", str(suites / "autoencoder.toml"), "--profile", "smoke",
                     "--results", str(results), "--data-dir", str(mnist_dir)]) == 0
    return ChainRun(suites, results, said.getvalue())


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """The session's one Ray cluster (tests/simulated_cluster.py), token authentication on; a test
    that removes a node gets the whole cluster back for the next."""
    from simulated_cluster import NO_SHARED_DISK, SimulatedCluster

    driver = tmp_path_factory.mktemp("driver")  # the driver's disk: results, data
    hook = tmp_path_factory.mktemp("node-python")
    (hook / "sitecustomize.py").write_text(NO_SHARED_DISK)
    node_data = os.environ.get("DLREPRO_DATA_DIR", str(SHARED_DATA))
    node_env = {"PYTHONPATH": os.pathsep.join([str(hook), str(ROOT)]),
                "DLREPRO_DRIVER_ONLY": str(driver), "DLREPRO_DATA_DIR": node_data}
    temp_dir = tempfile.mkdtemp(prefix="dlrepro-cl-")  # short: Ray's socket paths have a limit
    simulated = SimulatedCluster.start(temp_dir, driver, node_env)
    try:
        yield simulated
    finally:
        simulated.process.stdin.close()  # every node stopped
        try:
            simulated.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            simulated.process.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def cluster_to_break(cluster):
    """The session's cluster, for a test that removes nodes: brought back whole after it."""
    yield cluster
    cluster.restore()
