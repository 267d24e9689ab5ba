"""The experiment contract: every experiment keeps it, the template does, a broken one is refused at
load, and a run's context refuses what would make a wrong result."""

import importlib
import math
import sys
import types

import pandas as pd
import pytest

from conftest import logged
from dlrepro import experiment as contract
from dlrepro.schema import Metric


@pytest.mark.parametrize("name", contract.available())
def test_every_experiment_keeps_the_contract(name, tmp_path):
    experiment = contract.get(name)
    assert experiment.metrics and issubclass(experiment.params, contract.Params)
    experiment.implementation  # noqa: B018 — raises ContractError if broken
    assert experiment.figures(pd.DataFrame(columns=["run_id", "suite", "metric", "step", "value", "seed"]),
                              tmp_path / "figures", tmp_path / "artifacts") == []


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
    with pytest.raises(contract.ContractError, match="Params must be a subclass"):
        contract.declared(module)
    module.Params = type("Params", (contract.Params,), {})
    with pytest.raises(contract.ContractError, match="METRICS must map"):
        contract.declared(module)


def test_an_implementation_without_figures_is_refused(monkeypatch, tmp_path):
    implementation = types.ModuleType("dlrepro.experiments.broken.experiment")
    implementation.run = lambda params, ctx: None
    monkeypatch.setitem(sys.modules, implementation.__name__, implementation)
    broken = contract.Experiment("broken", contract.Params, {"x": Metric(better="lower")}, tmp_path)
    with pytest.raises(contract.ContractError, match="no figures"):
        broken.implementation  # noqa: B018


def test_a_run_cannot_log_nan_or_an_undeclared_metric(context):
    ctx = context("xor")
    with pytest.raises(ValueError, match="metric 'w_1' is nan at step 3"):
        ctx.log("w_1", math.nan, 3)
    with pytest.raises(ValueError, match="metric 'loss' is not declared"):
        ctx.log("loss", 1.0)
    ctx.log("w_1", 2.0)
    assert logged(ctx) == {"w_1": 2.0}


def test_the_cache_key_covers_the_modules_a_run_executes():
    root = contract._PACKAGE_ROOT
    sources = {p.relative_to(root).as_posix() for p in contract._imported_sources(
        [root / "experiments" / "autoencoder" / "__init__.py", root / "experiments" / "autoencoder" / "experiment.py"])}
    assert {"data.py", "nets.py", "plotting.py", "experiment.py", "experiments/mnist_classifier/experiment.py",
            "experiments/mnist_classifier/__init__.py"} <= sources
    assert "cli.py" not in sources and "report.py" not in sources
