"""E10's CIFAR-10 half: without CIFAR-10 its runs are not run and every claim and the gate say
why; with a few CIFAR-format batches the test writes (each class a colour of its own, so that
there is something to learn), the ResNet trains, its layers are mapped and the claims are judged."""

import pandas as pd
import pytest

from conftest import dlrepro, write_cifar
from dlrepro.experiments.image_sets import CIFAR_FOLDER


def test_without_cifar10_its_runs_are_not_run_and_each_claim_and_the_gate_say_why(tmp_path):
    data, results = tmp_path / "data", tmp_path / "results"
    data.mkdir()
    why = f"CIFAR-10 not found in {data} (torchvision's layout: {CIFAR_FOLDER}/data_batch_1"
    out = dlrepro("run", "cifar_maps", "--profile", "quick", "--data-dir", data,
                  "--results", results)
    assert out.returncode == 0, out.stderr
    assert "cifar_maps: 2 runs at profile quick, 0 cached, 0 to run, 2 not run" in out.stderr
    assert f"not run: {why}" in out.stderr and "3 not run (data set absent)" in out.stderr
    runs = pd.read_csv(results / "quick" / "runs.csv")
    assert list(runs["status"]) == ["not run"] * 3
    claims = pd.read_csv(results / "quick" / "claims.csv")
    assert len(claims) == 4 and (claims["status"] == "not run").all()
    assert claims["reason"].str.startswith(why).all(), claims["reason"]
    records = {p: p.stat().st_mtime_ns for p in (results / "quick" / "records").rglob("*.json")}
    again = dlrepro("run", "cifar_maps", "--profile", "quick", "--data-dir", data,
                    "--results", results)
    assert again.returncode == 0 and f"not run: {why}" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in records} == records  # said once, not rewritten
    # the gate leaves it out, saying why; with nothing else here, nothing was compared
    gate = dlrepro("check", "cifar_maps", "--profile", "quick", "--results", results)
    assert f"cifar_maps: not compared, not run here: {why}" in gate.stderr
    assert "so not compared" not in gate.stdout and "no value was compared" in gate.stdout


@pytest.mark.slow
def test_with_cifar10_the_resnet_trains_and_its_layers_are_mapped(tmp_path):
    data, results = tmp_path / "data", tmp_path / "results"
    data.mkdir()
    args = ["--profile", "quick", "--set", "points=200", "--data-dir", data, "--results", results]
    assert dlrepro("run", "cifar_maps", *args).returncode == 0  # not run: no CIFAR-10 yet
    write_cifar(data)
    out = dlrepro("run", "cifar_maps", *args)  # the next run looks again
    assert out.returncode == 0 and "3/2" not in out.stderr, out.stderr[-3000:]
    folder = results / "quick+points=200"
    runs = pd.read_csv(folder / "runs.csv")
    assert set(runs["status"]) == {"ok"} and len(runs) == 3, runs[["suite", "status", "error"]]
    claims = pd.read_csv(folder / "claims.csv")
    assert (claims["status"] != "not run").all(), claims[["claim", "status", "reason"]]
    report = dlrepro("report", "cifar_maps", "--profile", "quick", "--set", "points=200",
                     "--results", results)
    assert report.returncode == 0, report.stderr
    assert (folder / "figures" / "cifar_maps" / "layer_maps_trained.png").is_file()
