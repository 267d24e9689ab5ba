"""A run's identity is the code that computes it: on a copy of the project, editing a figure's
title reruns nothing and redraws that suite's figures; editing a computing function reruns its
runs and the runs that read their files."""

import json
from pathlib import Path

import pytest

from conftest import copy_project, dlrepro, edit

pytestmark = pytest.mark.slow  # MNIST training, twice, in processes of their own


def _dlrepro(project: Path, *args: str) -> str:
    done = dlrepro(*args, "--profile", "smoke", "--results", project / "results", project=project,
                   cwd=project, columns=200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout + done.stderr


def _run_ids(project: Path, suite: str) -> set[str]:
    return {p.stem for p in (project / "results" / "smoke" / "records" / suite).glob("*.json")}


def _fingerprint(project: Path, suite: str) -> str:
    index = project / "results" / "smoke" / "figures" / suite / "figures.json"
    return json.loads(index.read_text())["fingerprint"]


def test_a_figure_edit_redraws_and_reruns_nothing_a_computing_edit_reruns(tmp_path, needs_chain,
                                                                          mnist_dir):
    # the cheapest suite chain with a ``needs``: the handout CNN, then PCA at d = 2 reading it
    project = copy_project(tmp_path, needs_chain)
    data = ("--data-dir", str(mnist_dir))
    _dlrepro(project, "run", "mnist_cnn", "autoencoder", *data)
    _dlrepro(project, "report")
    runs = {suite: _run_ids(project, suite) for suite in ("mnist_cnn", "autoencoder")}
    drawn = {suite: _fingerprint(project, suite) for suite in runs}
    assert all(len(ids) == 1 for ids in runs.values())

    classifier = project / "dlrepro" / "experiments" / "mnist_classifier"
    edit(classifier / "figures.py", ('fig.suptitle(f"Adversarial', 'fig.suptitle(f"Attacked'))
    said = _dlrepro(project, "run", "mnist_cnn", "autoencoder", *data)
    assert "Nothing to run" in said and said.count("1 cached, 0 to run") == 2, said
    _dlrepro(project, "report")
    assert _fingerprint(project, "mnist_cnn") != drawn["mnist_cnn"]  # redrawn
    assert _fingerprint(project, "autoencoder") == drawn["autoencoder"]  # its drawing untouched
    assert {suite: _run_ids(project, suite) for suite in runs} == runs

    error_rate = "    return 100.0 * (predictions(model.eval(), x) != y).sum().item() / len(x)"
    counted = ("    wrong = (predictions(model.eval(), x) != y).sum().item()\n"
               "    return 100.0 * wrong / len(x)")
    edit(classifier / "run.py", (error_rate, counted))
    said = _dlrepro(project, "run", "mnist_cnn", "autoencoder", *data)
    assert said.count("0 cached, 1 to run") == 2, said
    for suite, before in runs.items():  # the classifier's run, and the autoencoder's reading it
        assert _run_ids(project, suite) - before, suite
