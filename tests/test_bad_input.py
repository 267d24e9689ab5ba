"""Every class of bad input is refused before any work: exit 2, one line `FILE: key.path: message`,
the results folder untouched. One broken file per class, each derived from a valid one."""

import http.server
import os
import pickle
import socket
import socketserver
import threading

from pathlib import Path

import pytest

from conftest import copy_suite, edited, probe, write_cifar, write_suite
from dlrepro import runners
from dlrepro.cli import main
from dlrepro.experiments.image_sets import CIFAR_FOLDER
from test_suite_files import VALID

CLAIM = '[[claims]]\nid = "c"\ntext = "t"\n'
GRID = '[[grid]]\nmodel = ["perceptron"]\nfeatures = ["raw", "phi"]\ncoding = ["pm1"]\n'


def edit(old: str, new: str) -> str:
    return edited(VALID, (old, new))


BROKEN = {  # class: (suite text, the key path the message must name)
    # strict types: a number is a number
    "string for an int": (
        edit("[[grid]]", '[parameters]\nepochs = "100"\n[[grid]]'),
        "parameters.epochs",
    ),
    "boolean for an int": (
        edit("[[grid]]", "[parameters]\nepochs = true\n[[grid]]"),
        "parameters.epochs",
    ),
    "boolean seed": (edit("seeds = [0, 1]", "seeds = [true]"), "profiles.quick.seeds.0"),
    # non-finite numbers
    "inf parameter": (edit("[[grid]]", "[parameters]\nlr = inf\n[[grid]]"), "parameters.lr"),
    "nan grid value": (edit('coding = ["pm1"]', 'coding = ["pm1"]\nlr = [1.0, nan]'), "grid.0.lr"),
    "nan claim value": (
        VALID + CLAIM + 'kind = "threshold"\nmetric = "accuracy"\nop = "<"\nvalue = nan\n',
        "claims.0.value",
    ),
    "claim without a kind": (
        VALID + CLAIM + 'metric = "accuracy"\nop = "<"\nvalue = 1\n',
        "claims.0.kind",
    ),
    "inf claim tolerance": (
        VALID + CLAIM + 'kind = "approx"\nmetric = "accuracy"\nvalue = 1\ntolerance = inf\n',
        "claims.0.tolerance",
    ),
    # seeds
    "duplicate seeds": (edit("seeds = [0, 1]", "seeds = [0, 0]"), "profiles.quick.seeds"),
    "negative seed": (edit("seeds = [0, 1]", "seeds = [-1]"), "profiles.quick.seeds.0"),
    "seed numpy cannot take": (
        edit("seeds = [0, 1]", "seeds = [4294967296]"),
        "profiles.quick.seeds.0",
    ),
    # empty grids in every spelling
    "empty grid list": (edit(GRID, "grid = []\n"), "grid"),
    "empty grid table": (edit(GRID, "grid = {}\n"), "grid"),
    "grid list of an empty table": (edit(GRID, "grid = [{}]\n"), "grid"),
    "empty profile grid table": (
        edit("seeds = [0, 1]", "seeds = [0, 1]\ngrid = {}"),
        "profiles.quick.grid",
    ),
    "empty profile grid list": (
        edit("seeds = [0, 1]", "seeds = [0, 1]\ngrid = []"),
        "profiles.quick.grid",
    ),
    "empty axis": (edit('features = ["raw", "phi"]', "features = []"), "grid.0.features"),
    # grid shape
    "parameter set by two axes": (
        edit('coding = ["pm1"]', 'coding = ["pm1"]\npair = [{ coding = "01" }]'),
        "grid.0.pair",
    ),
    "axis mixing values and tables": (
        edit('coding = ["pm1"]', 'coding = ["pm1", { coding = "01" }]'),
        "grid.0.coding",
    ),
    "tied entry missing a required parameter": (
        edit(
            'model = ["perceptron"]\nfeatures = ["raw", "phi"]',
            'features = ["raw", "phi"]\nm = [{ model = "perceptron" }, { lr = 0.5 }]',
        ),
        "grid.0.m.1",
    ),
    # claims that could never give a verdict
    "where selecting nothing": (
        VALID
        + CLAIM
        + 'kind = "threshold"\nmetric = "accuracy"\nwhere = { coding = "01" }\n'
        'op = "<"\nvalue = 1\n',
        "claims.0.where",
    ),
    "left selecting nothing": (
        VALID
        + CLAIM
        + 'kind = "compare"\nmetric = "accuracy"\nleft = { model = "logistic" }\n'
        'right = { model = "perceptron" }\nop = "<"\n',
        "claims.0.left",
    ),
    "over a parameter that does not vary": (
        VALID
        + CLAIM
        + 'kind = "monotone"\nmetric = "accuracy"\nover = "coding"\ndirection = "increasing"\n',
        "claims.0.over",
    ),
    "by a parameter that does not vary": (
        VALID
        + CLAIM
        + 'kind = "compare"\nmetric = "accuracy"\nleft = { features = "raw" }\n'
        'right = { features = "phi" }\nop = "<"\nby = ["model"]\n',
        "claims.0.by",
    ),
    "metric never logged": (
        VALID + CLAIM + 'kind = "threshold"\nmetric = "loss"\nop = "<"\nvalue = 1\n',
        "claims.0.metric",
    ),
    # published numbers and the claim options that carry them
    "published without a source": (
        VALID + CLAIM + 'kind = "approx"\nmetric = "accuracy"\nvalue = 1\ntolerance = 0\n'
        'published = { why = "exact: a count" }\n',
        "claims.0.published.source",
    ),
    "published with an empty why": (
        VALID + CLAIM + 'kind = "approx"\nmetric = "accuracy"\nvalue = 1\ntolerance = 0\n'
        'published = { source = "002", why = "" }\n',
        "claims.0.published.why",
    ),
    "published on a threshold": (
        VALID + CLAIM + 'kind = "threshold"\nmetric = "accuracy"\nop = "<"\nvalue = 1\n'
        'published = { source = "002", why = "exact" }\n',
        "claims.0.published",
    ),
    "worst on a threshold": (
        VALID + CLAIM + 'kind = "threshold"\nmetric = "accuracy"\nop = "<"\nvalue = 1\n'
        'reduce = "worst"\n',
        "claims.0",
    ),
    "nan compare factor": (
        VALID + CLAIM + 'kind = "compare"\nmetric = "accuracy"\nleft = { features = "raw" }\n'
        'right = { features = "phi" }\nop = "<"\nfactor = nan\n',
        "claims.0.factor",
    ),
    "zero compare factor": (
        VALID + CLAIM + 'kind = "compare"\nmetric = "accuracy"\nleft = { features = "raw" }\n'
        'right = { features = "phi" }\nop = "<"\nfactor = 0\n',
        "claims.0.factor",
    ),
    # what was refused before
    "malformed toml": ("name = ", ""),
    "unknown top-level key": ("colour = 'red'\n" + VALID, "colour"),
    "unknown experiment": (edit('experiment = "xor"', 'experiment = "nope"'), "experiment"),
    "unknown parameter in grid": (
        edit('coding = ["pm1"]', 'coding = ["pm1"]\nwidth = [3]'),
        "grid.0.width",
    ),
    "unknown parameter in profile": (
        edit("seeds = [0, 1, 2]", "seeds = [0]\nparameters = { epochz = 3 }"),
        "profiles.full.parameters.epochz",
    ),
    "bad parameter value": (edit('coding = ["pm1"]', 'coding = ["ternary"]'), "grid.0.coding"),
    "unknown profile": (VALID + "[profiles.huge]\nseeds = [0]\n", "profiles.huge"),
    "missing profile": (edit("[profiles.full]\nseeds = [0, 1, 2]\n", ""), "profiles"),
    "unknown claim kind": (
        VALID + CLAIM + 'kind = "vibes"\nmetric = "accuracy"\n',
        "claims.0.kind",
    ),
}


def refused(args: list[str], capsys, results) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert not results.exists(), "bad input must write nothing"
    return err


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_suite_file_is_refused(case, tmp_path, capsys):
    text, key = BROKEN[case]
    path = write_suite(tmp_path, text)
    results = tmp_path / "results"
    err = refused(
        ["run", str(path), "--profile", "smoke", "--results", str(results)], capsys, results
    )
    assert f"{path}: {key}: " in err or (not key and f"{path}: " in err), err


def test_a_suite_path_that_is_a_directory(tmp_path, capsys):
    folder = tmp_path / "xor.toml"
    folder.mkdir()
    err = refused(["run", str(folder), "--results", str(tmp_path / "r")], capsys, tmp_path / "r")
    assert f"{folder}: is a directory" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_suite_file(tmp_path, capsys):
    path = write_suite(tmp_path, VALID)
    path.chmod(0)
    err = refused(["run", str(path), "--results", str(tmp_path / "r")], capsys, tmp_path / "r")
    assert "not readable" in err


def test_a_byte_order_mark_is_read(tmp_path):
    path = write_suite(tmp_path, VALID, "bom")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert main(["run", str(path), "--profile", "smoke", "--results", str(tmp_path / "r")]) == 0


def test_a_results_folder_that_is_a_file(tmp_path, capsys):
    results = tmp_path / "results"
    results.write_text("")
    assert main(["run", "xor", "--profile", "smoke", "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"dlrepro: error: {results}: the results folder is a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_results_folder_that_is_not_writable(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    err = refused(
        ["run", "xor", "--profile", "smoke", "--results", str(locked / "r")], capsys, locked / "r"
    )
    assert "not writable" in err


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_results_folder_on_a_filesystem_that_takes_no_files(capsys):
    assert (
        main(["run", "xor", "--profile", "smoke", "--results", "/proc/self/dlrepro-results"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the results folder is not writable" in err, err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--runner", "../suites/xor"], "is not a runner name"),
        (["--runner", "nope"], "no runner named 'nope'"),
        (["--address", "127.0.0.1:6379"], "--address: the 'local' runner runs in this process"),
        (["--runner", "ray", "--address", "http://127.0.0.1:8265"],
         "--address http://127.0.0.1:8265: the runner takes the cluster's HOST:PORT, without a "
         "scheme"),
        (["--runner", "ray", "--address", "127.0.0.1"],
         "--address 127.0.0.1: not HOST:PORT (the head's port is 6379)"),
    ],
)
def test_runner_and_flags(args, words, tmp_path, capsys):
    err = refused(
        ["run", "xor", "--profile", "smoke", "--results", str(tmp_path / "r"), *args],
        capsys,
        tmp_path / "r",
    )
    assert words in err


@pytest.mark.parametrize("text, words", [
    ('kind = "ray"\nnum_cpus = 0\n', "num_cpus: Input should be greater than or equal to 1"),
    ('kind = "local"\nworkers = 4\n', "workers: unknown key"),
    ('kind = "slurm"\n', "kind: Input tag 'slurm' found using 'kind' does not match"),
    ('kind = "ray"\naddress =\n', "not valid TOML: Invalid value (at line 2"),
    ("", "kind: required, and given nowhere"),
    (None, "is a directory, not a runner file"),
])
def test_a_broken_runner_file_is_refused(text, words, tmp_path, capsys, monkeypatch):
    """``text`` None: the runner file is a directory."""
    file = tmp_path / "runners" / "broken.toml"
    file.parent.mkdir()
    if text is None:
        file.mkdir()
    else:
        file.write_text(text)
    monkeypatch.setattr(runners, "runners_dir", lambda: tmp_path / "runners")
    err = refused(["run", "xor", "--profile", "smoke", "--results", str(tmp_path / "r"),
                   "--runner", "broken"], capsys, tmp_path / "r")
    assert f"{tmp_path / 'runners' / 'broken.toml'}: {words}" in err, err


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]"])
def test_an_address_where_nothing_listens_is_refused_at_once(host, tmp_path, capsys):
    family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
    with socket.socket(family) as bound:  # held, not listening: connections are refused
        try:
            bound.bind((host.strip("[]"), 0))
        except OSError:
            pytest.skip(f"no {host} loopback on this machine")
        address = f"{host}:{bound.getsockname()[1]}"
        err = refused(["run", "xor", "--profile", "smoke", "--runner", "ray", "--address",
                       address, "--results", str(tmp_path / "r")], capsys, tmp_path / "r")
    assert err.endswith(f"--address {address}: no Ray cluster answers there (Connection refused)")


def test_the_job_servers_address_in_ray_address_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")  # what `ray job` reads
    err = refused(["run", "xor", "--profile", "smoke", "--runner", "ray", "--results",
                   str(tmp_path / "r")], capsys, tmp_path / "r")
    assert "$RAY_ADDRESS http://127.0.0.1:8265: the runner takes the cluster's HOST:PORT" in err


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):  # not on the stderr the test reads
        pass


def test_the_dashboards_port_is_refused_at_once(tmp_path, capsys):
    """The job server's address without its scheme: a web server, where ray.init would retry
    for minutes."""
    with socketserver.TCPServer(("127.0.0.1", 0), _Page) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        address = f"127.0.0.1:{web.server_address[1]}"
        err = refused(["run", "xor", "--profile", "smoke", "--runner", "ray", "--address",
                       address, "--results", str(tmp_path / "r")], capsys, tmp_path / "r")
        web.shutdown()
    assert err.endswith(f"--address {address}: a web server answers there (the dashboard and "
                        "job server's port, 8265 by default); the runner takes the cluster's GCS "
                        "port, the head's 6379")


def test_a_relative_results_folder_in_a_ray_job_is_refused(tmp_path, capsys, monkeypatch):
    """A job's working directory is a temporary copy of the checkout: results there are lost."""
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")  # what Ray gives a job's driver
    monkeypatch.chdir(tmp_path)
    err = refused(["run", "xor", "--profile", "smoke", "--runner", "ray", "--results", "r"],
                  capsys, tmp_path / "r")
    assert "--results r: in a Ray job this is inside the job's temporary working directory" in err


def test_an_unknown_profile_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "xor", "--profile", "huge"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice: 'huge'" in err, err


@pytest.fixture
def broken_data(mnist_dir, tmp_path):
    """A copy of MNIST whose test images are truncated."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_dir / "MNIST" / "raw").glob("*-ubyte"):
        (raw / f.name).write_bytes(
            f.read_bytes()[: 1000 if f.name.startswith("t10k-images") else None]
        )
    return tmp_path / "data"


def _mnist_run_refused(data: Path, tmp_path: Path, capsys) -> str:
    results = tmp_path / "r"
    return refused(["run", "mnist_mlp", "--profile", "smoke", "--data-dir", str(data),
                    "--results", str(results)], capsys, results)


def test_bad_data_is_refused_before_any_run(broken_data, tmp_path, capsys):
    err = _mnist_run_refused(broken_data, tmp_path, capsys)
    assert (f"{broken_data}/MNIST/raw/t10k-images-idx3-ubyte: truncated "
            "(1,000 bytes, expected 7,840,016)") in err


def test_an_empty_data_folder_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    err = _mnist_run_refused(tmp_path / "empty", tmp_path, capsys)
    assert "MNIST/raw/train-images-idx3-ubyte: missing" in err


def test_refusing_a_broken_file_imports_neither_torch_nor_pandas_nor_ray(tmp_path):
    path = write_suite(tmp_path, BROKEN["nan grid value"][0])
    done, imported = probe("run", path, "--results", tmp_path / "r")
    assert (done.returncode, imported) == (2, "[]"), done.stdout + done.stderr


def _seeds_at_the_top() -> str:
    return edit("[profiles.smoke]\nseeds = [0]\n", "[profiles.smoke]\n").replace(
        "[[grid]]", "seeds = [0]\n[[grid]]")


@pytest.mark.parametrize("text, words", [
    (_seeds_at_the_top(), "seeds: unknown key"),
    (edit("seeds = [0, 1]", 'seeds = [0, 1]\nexperiment = "xor"'),
     "profiles.quick.experiment: unknown key"),
    (edit("[[grid]]", 'metric = "accuracy"\n[[grid]]'), "metric: unknown key"),
    (edit("seeds = [0, 1]", "seeds = [0, 1]\nwhere = { coding = 'pm1' }"),
     "profiles.quick.where: unknown key"),
    (edit("[[grid]]", "cpus = 2\n[[grid]]"), "cpus: unknown key"),
    (VALID + CLAIM + 'kind = "threshold"\nmetric = "accuracy"\nop = "<"\nvalue = 1\nseeds = [0]\n',
     "claims.0.seeds: unknown key"),
    (VALID + CLAIM + 'kind = "threshold"\nmetirc = "accuracy"\nop = "<"\nvalue = 1\n',
     "claims.0.metirc: unknown key"),
    (VALID.replace("[[grid]]", "[[grids]]"), "grids: unknown key"),
])
def test_an_unknown_key_is_named_not_what_its_absence_makes_required(text, words, tmp_path, capsys):
    path = write_suite(tmp_path, text)
    results = tmp_path / "results"
    err = refused(["run", str(path), "--dry-run", "--results", str(results)], capsys, results)
    assert err == f"dlrepro: error: {path}: {words}"


LISTED = VALID + CLAIM + ('kind = "threshold"\nmetric = "accuracy"\nop = ">"\nvalue = 0\n'
                          'where = { features = ["raw", "phi"] }\n')


def test_a_where_list_selects_runs_of_any_of_its_values(tmp_path):
    import pandas as pd

    from dlrepro.claims import select
    from dlrepro.suite import load

    [claim] = load(write_suite(tmp_path, LISTED)).model.claims
    table = pd.DataFrame({"run_id": ["a", "b", "c"], "metric": "accuracy", "step": None,
                          "value": [1.0, 2.0, 3.0], "features": ["raw", "phi", "poly"]})
    assert select(claim, table)["run_id"].tolist() == ["a", "b"]


@pytest.mark.parametrize("listed, key, words", [
    ('["pm1", "01"]', "claims.0.where", "selects no run at profile smoke"),
    ("[]", "claims.0.where.features", "an empty list selects no run"),
])
def test_a_where_list_is_checked_like_a_value(listed, key, words, tmp_path, capsys):
    text = LISTED.replace('features = ["raw", "phi"] }', f"features = {listed} }}")
    path = write_suite(tmp_path, text)
    results = tmp_path / "results"
    err = refused(["run", str(path), "--dry-run", "--results", str(results)], capsys, results)
    assert f"{path}: {key}: " in err and words in err, err


@pytest.mark.parametrize("value, words", [
    ("range(1.5,3)", "range(1.5,3) is neither range(START,STOP[,STEP]) of integers"),
    ("range(a)", "range(a) is neither range(START,STOP[,STEP]) of integers"),
    ("linspace(0,1,2.5)", "nor linspace(START,STOP,COUNT)"),
    ("range(5,1)", "range(5,1) gives 0 values; a range gives 1 to 1,000"),
    ("range(1000000)", "range(1000000) gives 1,000,000 values; a range gives 1 to 1,000"),
], ids=["floats", "a string", "a float count", "empty", "a million values"])
def test_a_bad_range_is_refused_naming_set_and_its_key(value, words, tmp_path, capsys):
    results = tmp_path / "results"
    err = refused(["run", "five_points", "--profile", "smoke", "--set", f"degree={value}",
                   "--results", str(results)], capsys, results)
    assert err.startswith("dlrepro: error: --set: degree: ") and words in err, err


@pytest.mark.parametrize("smoke, key, words", [
    ("points = 10001", "profiles.smoke.parameters.points", "less than or equal to 10000"),
    ("points = 200, perplexity = 70.0", "profiles.smoke.parameters.perplexity",
     "at most (points − 1) / 3 = 66.3333"),
    ("points = 200, panels = [1, 4, 10]", "profiles.smoke.parameters.panels",
     "increasing module numbers from 1 to 9"),
], ids=["more points than test images", "perplexity t-SNE cannot take", "no such layer"])
def test_e10s_bad_parameters_are_refused(smoke, key, words, tmp_path, capsys):
    copy_suite("mnist_cnn", tmp_path, claims=False)
    path = copy_suite("layer_maps", tmp_path, ("parameters = { points = 1000 }",
                                               f"parameters = {{ {smoke} }}"))
    results = tmp_path / "results"
    err = refused(["run", str(path), "--profile", "smoke", "--results", str(results)], capsys,
                  results)
    assert f"{path}: {key}: " in err and words in err, err


@pytest.mark.parametrize("suite, settings, words", [
    ("mnist_cnn", ["dataset=cifar10"], "model 'cnn_handout' takes 28 × 28 grey images"),
    ("cifar_maps", ["panels=[1,13]"], "increasing module numbers from 1 to 12"),
    ("cifar_maps", ["model=cnn_handout", "panels=[1,4]"], "dataset cifar10 goes with model resnet"),
], ids=["a CNN on CIFAR-10", "no such layer of the ResNet", "CIFAR-10 through the handout CNN"])
def test_cifar10s_bad_settings_are_refused(suite, settings, words, tmp_path, capsys):
    results = tmp_path / "results"
    sets = [flag for setting in settings for flag in ("--set", setting)]
    err = refused(["run", suite, "--profile", "smoke", *sets, "--results", str(results)], capsys,
                  results)
    assert f"{suite}.toml: --set " in err and words in err, err


@pytest.mark.parametrize("file, damage, words", [
    ("data_batch_3", lambda _: b"", "not a pickled CIFAR-10 batch (EOFError"),
    ("test_batch", lambda batch: batch[:-100], "not a pickled CIFAR-10 batch"),
    ("test_batch", lambda _: pickle.dumps({"data": [[0] * 3072], "labels": [10]}),
     "not rows of 3,072 bytes, each with a label from 0 to 9"),
    ("data_batch_5", None, "missing"),
], ids=["empty", "truncated", "not images", "missing"])
def test_a_broken_cifar10_batch_is_refused_before_any_run(file, damage, words, tmp_path, capsys):
    write_cifar(tmp_path / "data", train=50, test=20)
    path = tmp_path / "data" / CIFAR_FOLDER / file
    if damage:
        path.write_bytes(damage(path.read_bytes()))
    else:
        path.unlink()
    results = tmp_path / "results"
    err = refused(["run", "cifar_resnet", "--profile", "smoke", "--data-dir",
                   str(tmp_path / "data"), "--results", str(results)], capsys, results)
    assert f"{path}: {words}" in err and "replace it with the published file" in err, err


def test_an_override_is_refused_only_at_the_profiles_that_cannot_take_it(tmp_path, capsys):
    """perplexity 400 needs 1,201 points: smoke maps 1,000, quick 2,000."""
    results = tmp_path / "results"
    err = refused(["run", "layer_maps", "--profile", "smoke", "--set", "perplexity=400",
                   "--dry-run", "--results", str(results)], capsys, results)
    assert "layer_maps.toml: --set perplexity: must be at most (points − 1) / 3 = 333" in err
    assert main(["run", "layer_maps", "--profile", "quick", "--set", "perplexity=400",
                 "--dry-run", "--results", str(results)]) == 0
