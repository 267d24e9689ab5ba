"""Benchmark: how far the ETA was from the time left, replayed from a finished results folder of
this checkout's code (docs/eta.md): its ok runs, in the order they finished, go through the live
progress with what a fresh folder expects of them (the committed cost.csv), on Ray's embedded
instance of this machine's CPUs as `nox -s reproduce` runs them.

    python benchmarks/eta_replay.py results/quick [--cpus 2]
"""

import argparse
import os
from datetime import datetime
from pathlib import Path

from dlrepro import console
from dlrepro.layout import Results
from dlrepro.pipeline import typical_run_times
from dlrepro.planning import expected_times
from dlrepro.project import resolve
from dlrepro.ray_runner import fitted_shapes


def finished_at(record: dict) -> float:
    return datetime.fromisoformat(record["finished_at"]).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="RESULTS/PROFILE of a finished dlrepro run")
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    args = parser.parse_args()
    specs = {s.run_id: s for suite in resolve([]) for s in suite.runs(args.folder.name)}
    folder = Results.at(args.folder)
    records = sorted((r for suite in {s.suite for s in specs.values()}
                      for r in folder.read_records(suite)
                      if r["status"] == "ok" and r["run_id"] in specs), key=finished_at)
    todo = [specs[r["run_id"]] for r in records]
    fresh = Results(args.folder / "nothing-here", args.folder.name)
    expected = expected_times(todo, fresh, typical_run_times(fresh, print))
    console.note = lambda *parts: None  # the replay's own lines only
    progress = console.RunProgress(todo, expected)
    shapes = fitted_shapes(todo, {"here": {"CPU": args.cpus}}, print)
    progress.at_once = {shape: at_once for shape, (_, at_once) in shapes.items()}
    start = datetime.fromisoformat(records[0]["started_at"]).timestamp()
    end, errors = finished_at(records[-1]), []
    for i, record in enumerate(records[:-1], 1):
        progress.finished(record["suite"], record)
        eta, left = progress.eta(finished_at(record) - start), end - finished_at(record)
        errors.append(abs(eta - left) / max(left, 1.0))
        if i in (1, 3, 6, 12, 25, 50, 100) or i == len(records) - 1:
            print(f"after run {i} ({record['suite']}): ETA {eta:.0f} s for {left:.0f} s left")
    print(f"{len(todo)} runs: the ETA off by {100 * sum(errors) / len(errors):.0f} % of the time "
          f"left on average, at most {max(errors):.1f}x")


if __name__ == "__main__":
    main()
