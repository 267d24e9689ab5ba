"""Sessions: `nox -s lint` (import layering, ruff), `nox -s tests` (the fast tier of the tests;
`nox -s tests -- -m slow` the slow one: Ray, MNIST training, signals, the browser),
`nox -s reproduce` (every suite at the quick profile, then the report), `nox -s generalise` (the
MNIST suites on Fashion-MNIST too, verdicts side by side), `nox -s regression` (the smoke profile,
then the check against the committed baselines), `nox -s sweep -- --address ADDR` (the full profile
on a Ray cluster), `nox -s gpu` (benchmarks/gpu_check.py at smoke, as a GPU machine would run it).
Arguments after `--` go to pytest or to `dlrepro run`."""

import os
import shutil
from pathlib import Path

import nox

# uv installs torch in seconds, plain pip in minutes.
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

SHARED_DATA = Path(__file__).parent.parent / "shared" / "data"
# What the GPU machine has (docs/gpu.md); the rest travels as benchmarks/gpu_wheels.txt's wheels.
GPU_MACHINE_PACKAGES = ["torch", "torchvision", "pandas", "pyarrow", "matplotlib", "jinja2", "rich",
                        "filelock", "scipy"]


def _env() -> dict:
    env = {"RAY_USAGE_STATS_ENABLED": "0"}
    if "DLREPRO_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
        env["DLREPRO_DATA_DIR"] = str(SHARED_DATA)  # the course data shipped beside a checkout
    return env


def _quick_on_ray(posargs: list[str]) -> tuple[list[str], str]:
    """The arguments with the quick profile and the Ray runner unless given, and the profile."""
    args = posargs or ["--profile", "quick"]
    args = args if "--runner" in args else [*args, "--runner", "ray"]
    return args, args[args.index("--profile") + 1] if "--profile" in args else "quick"


@nox.session
def lint(session: nox.Session) -> None:
    """Import layering (no cycle: lower modules never import higher ones) and pyflakes' checks."""
    session.install("import-linter>=2.1", "ruff>=0.6")
    session.install("-e", ".", "--no-deps")
    session.run("lint-imports")
    session.run("ruff", "check", "dlrepro", "tests", "benchmarks", "noxfile.py")


@nox.session
def tests(session: nox.Session) -> None:
    """The fast tier (pyproject.toml's addopts); `-- -m slow` the slow one, `-- -m ""` both."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs, env=_env())


@nox.session
def reproduce(session: nox.Session) -> None:
    session.install("-e", ".")
    # Ray's two warm workers beat one serial process on the quick profile even on 2 cores (README,
    # "Performance"); `-- --runner local` runs it in-process instead.
    args, profile = _quick_on_ray(session.posargs)
    session.run("dlrepro", "run", *args, env=_env())
    session.run("dlrepro", "report", "--profile", profile, env=_env())


@nox.session
def generalise(session: nox.Session) -> None:
    """The quick profile's MNIST suites on MNIST and Fashion-MNIST, claims' verdicts side by side.
    Then the Fashion-MNIST report. Arguments after `--` (e.g. --profile smoke) go to
    `dlrepro generalise`."""
    session.install("-e", ".")
    args, profile = _quick_on_ray(session.posargs)
    session.run("dlrepro", "generalise", *args, env=_env())
    session.run("dlrepro", "report", "--profile", profile, "--set", "dataset=fashion_mnist",
                env=_env())


@nox.session
def regression(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("dlrepro", "run", "--profile", "smoke", *session.posargs, env=_env())
    session.run("dlrepro", "check", "--profile", "smoke", env=_env())


@nox.session
def sweep(session: nox.Session) -> None:
    """The full profile on a Ray cluster: `nox -s sweep -- --address ADDR [SUITE ...]`.
    `--results /abs/dir` after `--` names the results folder."""
    if "--address" not in session.posargs and not os.environ.get("RAY_ADDRESS"):
        session.error("say which cluster: nox -s sweep -- --address HEAD:6379 (or set RAY_ADDRESS)")
    session.install("-e", ".")
    session.run("dlrepro", "run", "--profile", "full", "--runner", "ray", *session.posargs,
                env=_env())


@nox.session
def gpu(session: nox.Session) -> None:
    """benchmarks/gpu_check.py at smoke, in an environment like the GPU machine's: its packages,
    the wheels it is sent, no Ray, dlrepro from the checkout. `-- --profile full` on a GPU."""
    session.install(*GPU_MACHINE_PACKAGES)
    session.install("--no-deps", "-r", "benchmarks/gpu_wheels.txt")
    out = Path(session.create_tmp()) / "gpu_check"
    shutil.rmtree(out, ignore_errors=True)  # a cached run would check nothing
    session.run("python", "benchmarks/gpu_check.py", "--out", str(out),
                *(session.posargs or ["--profile", "smoke"]),
                env={**_env(), "PYTHONPATH": str(Path(__file__).parent)})
