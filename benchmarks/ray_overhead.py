"""Benchmark: the same runs executed serially (the local runner), on dlrepro's Ray runner (a task
per run group on kept worker processes) and on Ray the naive way (one task per run, each in a fresh
worker process that imports torch and starts codecarbon). Each variant is timed end to end, as a
user sees it — a new process, Ray's start included — and reported as a ratio to serial, side by
side.

    python benchmarks/ray_overhead.py               # the tiny suites at quick (xor, descent, facts)
    python benchmarks/ray_overhead.py --suites all  # every suite at quick: which should nox use?
    python benchmarks/ray_overhead.py --address ADDR  # also on the Ray cluster at ADDR
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["xor", "gradient_descent", "small_facts"]


def naive(suites: list[str], profile: str, results: Path) -> None:
    """One Ray task per run group, max_calls=1: every run pays a process, torch and codecarbon."""
    import ray

    from dlrepro.energy import EnergyMeter
    from dlrepro.execute import execute, warm_up
    from dlrepro.layout import Results
    from dlrepro.planning import groups
    from dlrepro.project import resolve
    from dlrepro.schema import DEFAULT_COUNTRY

    store = Results(results, profile)

    @ray.remote(num_cpus=1, max_calls=1)
    def run(group):
        warm_up()
        with EnergyMeter(store.energy, DEFAULT_COUNTRY) as meter:
            return execute(group, meter=meter, artifact_dir=store.artifact_dir, data_dir=None)

    specs = [spec for suite in resolve(suites) for spec in suite.runs(profile)]
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    for records in ray.get([run.remote(group) for group in groups(specs)]):
        for record in records:
            store.put(record)
    ray.shutdown()


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    # Without $RAY_ADDRESS: the embedded variant must not reach a cluster (--address does).
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**env, "RAY_USAGE_STATS_ENABLED": "0"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=TINY, help="suite names, or 'all'")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--address", help="a Ray cluster to time too (its driver: this process)")
    # Internal: run the naive variant, with its results in this folder.
    parser.add_argument("--naive", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    suites = [] if args.suites == ["all"] else args.suites
    if args.naive:
        return naive(suites, args.profile, args.naive)

    from dlrepro.project import resolve

    runs = sum(len(s.runs(args.profile)) for s in resolve(suites))
    run = [sys.executable, "-m", "dlrepro", "run", *suites, "--profile", args.profile]
    naive_run = [sys.executable, __file__, "--suites", *args.suites, "--profile", args.profile]
    variants = {
        "serial (local runner)": lambda out: run + ["--results", str(out)],
        "Ray, warm workers (--runner ray)":
            lambda out: run + ["--runner", "ray", "--results", str(out)],
        "Ray, one fresh process per run": lambda out: naive_run + ["--naive", str(out)],
    }
    if args.address:
        variants["Ray, warm workers, --address"] = lambda out: run + [
            "--runner", "ray", "--address", args.address, "--results", str(out)]
    print(f"{runs} runs of {', '.join(args.suites)} at profile {args.profile}, "
          f"{os.cpu_count()} cores; each variant a new process, from start to tables")
    print(f"{'variant':34} {'wall (s)':>9} {'per run (s)':>12} {'vs serial':>10}")
    serial = None
    for name, command in variants.items():
        with tempfile.TemporaryDirectory() as out:
            seconds = timed(command(Path(out)))
        serial = serial or seconds
        print(f"{name:34} {seconds:9.1f} {seconds / runs:12.3f} {seconds / serial:9.2f}×")


if __name__ == "__main__":
    main()
