"""The machine a result was measured on, described without importing what it describes."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from pathlib import Path

import dlrepro


@functools.cache
def cpu_model() -> str:
    """The CPU's marketing name (Linux), else the architecture: times compare on one CPU only."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def host_info() -> dict:
    return {"hostname": socket.gethostname(), "dlrepro_version": dlrepro.__version__,
            "python_version": platform.python_version(), "git_commit": _git_commit()}


def _git_commit() -> str:
    """HEAD's full hash, ``-dirty`` when a tracked file differs; ``unknown`` outside a checkout."""
    root = Path(dlrepro.__file__).resolve().parents[1]
    try:  # every tag excluded: the hash, never a tag's name
        head = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40",
                               "--exclude=*"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() if head.returncode == 0 else "unknown"
