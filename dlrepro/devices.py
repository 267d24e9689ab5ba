"""Where a run computes: a run that reads a data set (the MNIST suites) on a visible CUDA GPU; the
tiny models of the other suites, whose steps are microseconds of arithmetic, on the CPU, where a
GPU's launch latency cannot slow them. ``--device`` says otherwise for the local runner; on Ray a
run computes on the GPU its resources got it, by the same rule. Torch is imported only to look for
a GPU, or to name one. Also the machine a result was measured on (``host_info``)."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from argparse import ArgumentTypeError
from enum import StrEnum
from pathlib import Path

import dlrepro


class DeviceChoice(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


def parse(text: str) -> DeviceChoice:
    if text == "mps":  # the GAN's Fréchet distance, the PCA, five_points, gradient_descent
        raise ArgumentTypeError("mps is not offered: some runs compute in float64, which MPS lacks")
    try:
        return DeviceChoice(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a device: {', '.join(DeviceChoice)}") from None


def unavailable(choice: DeviceChoice) -> str | None:
    """Why this machine cannot honour the choice, in one line; None when it can."""
    if choice is not DeviceChoice.CUDA:
        return None
    import torch

    if torch.cuda.is_available():
        return None
    built = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
    return (f"--device cuda: torch {torch.__version__} ({built}) sees no CUDA GPU on this machine; "
            "use --device auto or cpu")


def resolve(choice: DeviceChoice, reads_data: bool) -> str:
    if choice is DeviceChoice.AUTO and reads_data:
        import torch

        return DeviceChoice.CUDA if torch.cuda.is_available() else DeviceChoice.CPU
    return DeviceChoice.CUDA if choice is DeviceChoice.CUDA else DeviceChoice.CPU


def kind(description: str) -> str:
    """``cpu`` or ``cuda``, from a record's device (``cuda: NVIDIA H200``)."""
    return description.split(":", 1)[0].strip()


def describe(device: str, threads: int) -> str:
    """A record's device: the GPU's model, or the CPU's with the run's thread count."""
    if device == DeviceChoice.CUDA:
        import torch

        return f"cuda: {torch.cuda.get_device_name()}"
    return f"cpu: {cpu_model()}, {threads} thread(s)"


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
