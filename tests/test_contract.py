"""The experiment contract: every experiment keeps it, the template does, a broken one is refused at
load, and a run's context refuses what would make a wrong result."""

import importlib
import math
import re
import subprocess
import sys
import types

import pandas as pd
import pytest

from conftest import HEAVY, copy_project, logged, probe, write_suite
from dlrepro.errors import Refused
from dlrepro import experiment as contract
from dlrepro.schema import Metric


@pytest.mark.parametrize("name", contract.available())
def test_every_experiment_keeps_the_contract(name, tmp_path):
    experiment = contract.get(name)
    assert experiment.metrics and issubclass(experiment.params, contract.Params)
    experiment.implementation  # noqa: B018 — raises Refused if broken
    experiment.drawing  # noqa: B018
    empty = pd.DataFrame(columns=["run_id", "suite", "metric", "step", "value", "seed"])
    assert experiment.figures(empty, tmp_path / "figures", tmp_path / "artifacts") == []


def test_the_template_runs_and_draws(context, tmp_path):
    template = contract.declared(importlib.import_module("dlrepro.experiments._template"))
    ctx = context("xor")  # any real context; the template's own metrics declared below
    ctx.declared = frozenset(template.metrics)
    ctx.seed_everything()
    template.run(template.params(width=4, steps=20), [ctx])
    assert logged(ctx)["loss"] < logged(ctx)[("loss", 1)]
    table = pd.DataFrame(ctx.metrics).assign(run_id="r", seed=0, width=4)
    [figure] = template.figures(table, tmp_path / "figures", tmp_path / "run")
    assert figure.stat().st_size > 5_000


def test_a_declaration_without_params_or_metrics_is_refused():
    module = types.ModuleType("dlrepro.experiments.broken")
    module.__file__ = __file__
    with pytest.raises(Refused, match="Params must be a subclass"):
        contract.declared(module)
    module.Params = type("Params", (contract.Params,), {})
    with pytest.raises(Refused, match="METRICS must map"):
        contract.declared(module)


def _broken(tmp_path, monkeypatch, run_source: str, **figures) -> contract.Experiment:
    """An experiment ``broken`` whose run.py (in tmp_path) reads ``run_source`` and whose figures
    module, if any keyword is given, has those attributes."""
    (tmp_path / "run.py").write_text(run_source)
    run = types.ModuleType("dlrepro.experiments.broken.run")
    run.run = lambda params, ctx: None
    monkeypatch.setitem(sys.modules, run.__name__, run)
    if figures:
        (tmp_path / "figures.py").write_text("")
        module = types.ModuleType("dlrepro.experiments.broken.figures")
        vars(module).update(figures)
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return contract.Experiment("broken", contract.Params, {"x": Metric(better="lower")}, tmp_path)


def test_an_experiment_without_figures_is_refused(monkeypatch, tmp_path):
    with pytest.raises(Refused, match="broken.figures: no such module"):
        _broken(tmp_path, monkeypatch, "").implementation  # noqa: B018
    drawless = _broken(tmp_path, monkeypatch, "", draw=None)
    drawless.implementation  # noqa: B018 — the run half is sound
    with pytest.raises(Refused, match="no figures"):
        drawless.drawing  # noqa: B018


def test_files_are_written_and_read_under_one_name(context, tmp_path):
    import numpy as np

    ctx = context("xor", name="producer")
    np.savez(ctx.artifact("kept.npz"), a=np.arange(3))
    reader = context("xor", inputs={"producer": tmp_path / "producer"}, name="reader")
    assert reader.input("producer", "kept.npz") == ctx.artifact("kept.npz")
    files = contract.RunFiles(tmp_path)
    assert files.load("producer", "kept.npz")["a"].tolist() == [0, 1, 2]
    with pytest.raises(FileNotFoundError, match="run producer left no other.npy"):
        files.path("producer", "other.npy")
    with pytest.raises(ValueError, match="named without a folder"):
        ctx.artifact("../elsewhere.npz")


def test_a_run_cannot_log_nan_or_an_undeclared_metric(context):
    ctx = context("xor")
    with pytest.raises(ValueError, match="metric 'w_1' is nan at step 3"):
        ctx.log("w_1", math.nan, 3)
    with pytest.raises(ValueError, match="metric 'loss' is not declared"):
        ctx.log("loss", 1.0)
    ctx.log("w_1", 2.0)
    assert logged(ctx) == {"w_1": 2.0}


def test_the_cache_key_covers_the_modules_a_run_executes_and_not_its_figures():
    root = contract.PACKAGE_ROOT
    autoencoder = root / "experiments" / "autoencoder"
    hashed = {p.relative_to(root).as_posix() for p in contract.imported_sources(
        [autoencoder / "__init__.py", autoencoder / "run.py"])}
    assert {"files.py", "experiments/nets.py", "experiment.py", "experiments/image_sets.py",
            "experiments/mnist_classifier/trained.py",
            "experiments/mnist_classifier/__init__.py"} <= hashed
    assert not {"experiments/plotting.py", "experiments/autoencoder/figures.py",
                "experiments/mnist_classifier/run.py", "experiments/mnist_classifier/figures.py",
                "cli.py", "report.py"} & hashed
    drawing = {p.relative_to(root).as_posix()
               for p in contract.imported_sources([autoencoder / "figures.py"])}
    assert {"experiments/plotting.py", "experiments/autoencoder/figures.py"} <= drawing


# ---- a broken experiment package: one line naming the file and the line, exit 2 ----

SUITE = """name = "broken"
title = "t"
experiment = "broken"
source = { seed = "002", slide = "s" }
grid = { width = [1] }
profiles = { smoke = { seeds = [0] }, quick = { seeds = [0] }, full = { seeds = [0] } }
"""
SOUND = {
    "__init__.py": "from dlrepro.experiment import Params as BaseParams\n"
                   "from dlrepro.schema import Metric\n\n\n"
                   "class Params(BaseParams):\n    width: int\n\n\n"
                   'METRICS = {"loss": Metric(better="lower")}\n',
    "run.py": 'def run(params, ctx):\n    ctx.log("loss", 1.0)\n',
    "figures.py": "def figures(table, out_dir, files, published):\n    return []\n",
}


def _cli_in_copy(tmp_path, *args: str, **files: str) -> tuple[subprocess.CompletedProcess, str]:
    """``dlrepro ARGS`` run on a copy of the project with a suite ``broken`` of an experiment
    ``broken``: SOUND but for ``files`` (a path in its package, or ``dlrepro/...``). What it did,
    and the heavy modules it imported."""
    copy = copy_project(tmp_path)
    package = copy / "dlrepro" / "experiments" / "broken"
    package.mkdir()
    for name, text in {**SOUND, **files}.items():
        target = copy / name if name.startswith("dlrepro/") else package / name
        target.write_text(text)
    write_suite(copy / "suites", SUITE, "broken")
    return probe(*args, project=copy, cwd=tmp_path)


def _refused(out: subprocess.CompletedProcess, file: str, words: str) -> str:
    """The one line of a refusal, which names ``file`` with a line number and says ``words``."""
    assert out.returncode == 2, out.stdout + out.stderr
    [line] = out.stderr.splitlines()
    assert "Traceback" not in line
    assert re.search(rf"{re.escape(file)}:\d+", line), line
    assert words in line, line
    return line


@pytest.mark.parametrize("source, words", [
    ("def broken(:\n", "SyntaxError: invalid syntax"),
    ("import no_such_module\n", "ModuleNotFoundError: No module named 'no_such_module'"),
    ("WIDTH = undefined_name\n", "NameError: name 'undefined_name' is not defined"),
    ("WRONG = Metric(better='none')\n", "ValidationError: Metric.better: Input should be "
     "'higher', 'lower' or 'two-sided' (got 'none')"),
])
def test_a_declaration_that_does_not_import_is_one_line(source, words, tmp_path):
    out, imported = _cli_in_copy(tmp_path, "run", "broken", "--dry-run",
                                 **{"__init__.py": SOUND["__init__.py"] + source})
    line = _refused(out, "dlrepro/experiments/broken/__init__.py", words)
    assert "broken.toml: experiment: experiment 'broken' is broken: " in line
    assert imported == "[]", "a broken declaration is refused without torch"


def test_no_declaration_imports_torch_pandas_or_ray():
    """A suite file loads, and a bad one is refused, in well under a second: every experiment's
    declaration, and the contract itself, import nothing heavy."""
    declarations = ("import sys; from dlrepro import experiment as contract; "
                    "[contract.get(name) for name in contract.available()]; "
                    f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", declarations], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("source, words", [
    ("def run(params, ctx):\n    pass\nx = (\n", "SyntaxError: '(' was never closed"),
    ("import no_such_module\n" + SOUND["run.py"], "No module named 'no_such_module'"),
    (SOUND["run.py"] + "undefined_name()\n", "NameError: name 'undefined_name'"),
])
def test_a_run_module_that_does_not_import_is_one_line(source, words, tmp_path):
    out, _ = _cli_in_copy(tmp_path, "run", "broken", "--profile", "smoke", "--results", "r",
                          **{"run.py": source})
    line = _refused(out, "dlrepro/experiments/broken/run.py", words)
    assert "broken.toml: experiment: experiment 'broken' is broken: " in line
    assert not (tmp_path / "r" / "smoke" / "runs").exists()


def test_a_figures_module_that_does_not_import_is_one_line(tmp_path):
    out, _ = _cli_in_copy(tmp_path, "run", "broken", "--profile", "smoke", "--results", "r",
                          **{"figures.py": "\nfrom dlrepro.experiments.nets import no_such_name\n"})
    assert out.returncode == 0, out.stdout + out.stderr
    report, _ = probe("report", "--profile", "smoke", "--results", "r",
                      project=tmp_path / "project", cwd=tmp_path)
    line = _refused(report, "dlrepro/experiments/broken/figures.py",
                    "ImportError: cannot import name 'no_such_name'")
    assert "figures.py:2: " in line
