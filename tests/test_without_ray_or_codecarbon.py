"""The local path as a GPU machine without Ray or codecarbon runs it (docs/gpu.md): a real suite
runs, and its records say energy was not measured and why."""

import json
import subprocess
import sys

from dlrepro.energy import NOT_INSTALLED

# Each module set to None in sys.modules fails to import, as if it were not installed.
WITHOUT = """import sys
sys.modules.update(ray=None, codecarbon=None)
from dlrepro.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_local_run_needs_neither_ray_nor_codecarbon(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT, "run", "xor", "--profile", "smoke", "--runner", "local",
         "--results", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = [json.loads(path.read_text()) for path in tmp_path.glob("smoke/records/xor/*.json")]
    assert records and {r["status"] for r in records} == {"ok"}
    assert {r["energy_method"] for r in records} == {NOT_INSTALLED}
