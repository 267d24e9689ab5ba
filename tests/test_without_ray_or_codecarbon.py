"""The local path as a GPU machine without Ray or codecarbon runs it (docs/gpu.md): a real suite
runs, and its records say energy was not measured and why."""

import json

import pytest

from conftest import probe
from dlrepro.energy import NOT_INSTALLED

pytestmark = pytest.mark.slow  # a process of its own, paying torch's start


def test_a_local_run_needs_neither_ray_nor_codecarbon(tmp_path):
    done, _ = probe("run", "xor", "--profile", "smoke", "--runner", "local", "--results", tmp_path,
                    without=("ray", "codecarbon"))
    assert done.returncode == 0, done.stderr
    records = [json.loads(path.read_text()) for path in tmp_path.glob("smoke/records/xor/*.json")]
    assert records and {r["status"] for r in records} == {"ok"}
    assert {r["energy_method"] for r in records} == {NOT_INSTALLED}
