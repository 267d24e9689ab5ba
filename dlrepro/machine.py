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
    """The CPU's marketing name (Linux), else the architecture: a time is only comparable with
    times measured on the same CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def host_info() -> dict:
    return {
        "hostname": socket.gethostname(),
        "dlrepro_version": dlrepro.__version__,
        "python_version": platform.python_version(),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str:
    root = Path(dlrepro.__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
