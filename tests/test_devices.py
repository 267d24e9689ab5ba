"""Where runs compute: the runs that read a data set on a visible CUDA GPU, the rest on the CPU,
``--device`` to say otherwise, and a device the machine lacks refused before any work."""

import json

import pytest
import torch

from dlrepro import devices
from dlrepro.cli import main
from dlrepro.devices import DeviceChoice


@pytest.mark.parametrize(("choice", "reads_data", "gpu", "expected"), [
    (DeviceChoice.AUTO, True, True, "cuda"),  # MNIST on the GPU, at every profile
    (DeviceChoice.AUTO, False, True, "cpu"),  # a tiny model, which a GPU slows
    (DeviceChoice.AUTO, True, False, "cpu"),
    (DeviceChoice.CPU, True, True, "cpu"),
    (DeviceChoice.CUDA, False, True, "cuda"),
])
def test_the_runs_that_read_data_go_on_a_visible_gpu(monkeypatch, choice, reads_data, gpu,
                                                       expected):
    # No GPU here: what torch would say on a machine with one is the only thing stood in for.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert devices.resolve(choice, reads_data) == expected


@pytest.mark.slow  # every suite at smoke, MNIST's included
def test_a_record_names_the_device_its_run_computed_on(smoke):
    """On this CPU-only machine every run of the smoke profile is on the CPU, with its threads."""
    records = [json.loads(p.read_text()) for p in (smoke[1] / "records").rglob("*.json")]
    assert records
    for record in records:
        assert devices.kind(record["device"]) == "cpu"
        assert record["device"].endswith("thread(s)"), record["device"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--device", "cuda"], "--device cuda: torch "),
    (["--device", "mps"], "mps is not offered: "),
    (["--device", "gpu"], "'gpu' is not a device: auto, cpu, cuda"),
    (["--device", "cpu", "--runner", "ray"], "--device is the local runner's; drop it"),
])
def test_a_device_this_machine_or_runner_cannot_give_is_one_line_and_exit_2(tmp_path, capsys,
                                                                          flags, message):
    if flags[1] == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    args = ["run", "mnist_mlp", "--profile", "smoke", "--results", str(tmp_path), *flags]
    try:
        code = main(args)
    except SystemExit as exit_:  # what argparse refuses, it refuses by exiting
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_plan_says_which_device_each_suite_would_use(tmp_path, capsys):
    assert main(["run", "mnist_mlp", "xor", "--profile", "smoke", "--results", str(tmp_path),
                 "--dry-run", "--device", "cpu"]) == 0
    plan = capsys.readouterr().out
    assert "mnist_mlp: 1 run at profile smoke, 0 cached, 1 to run, on cpu: " in plan, plan
