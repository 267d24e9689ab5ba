"""One short run for a GPU machine: the full profile's GPU-bound core, in about 7 minutes on one
H100-class GPU (docs/gpu.md). Drives `python -m dlrepro run` with the local runner, one results
folder per part:

- the handout CNN's 10 epochs on 3 seeds (mnist_cnn --only model=cnn_handout), its training time
  set beside the slide's ≈ 7 s on a GTX 1080 (EXPERIMENTS.md E6);
- the GAN at full on one seed (epochs 1, 2, 5, 10, 20);
- the CNN autoencoder at d = 8 and 32 on one seed.

Needs only the standard library and what dlrepro's local path imports (no Ray, no nox;
codecarbon optional). Writes into --out: gpu_check.log (everything printed), summary.md, the
parts' runs.csv, metrics.csv and claims.csv merged, and results.tar.gz (the dlrepro results
folders without model weights). Exit 0 only if every part ran and every run is ok.

    python3 benchmarks/gpu_check.py --out DIR [--profile full|quick|smoke] [--data-dir DIR]
        [--results DIR]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import platform
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

SLIDE_TRAIN_S = 7.0  # the handout's 10 epochs on a GTX 1080, data resident (EXPERIMENTS.md E6)
MERGED_TABLES = ("runs", "metrics", "claims")
CONFIG_COLUMNS = ("model", "d", "epochs", "train_size")  # what tells a part's runs apart


@dataclass(frozen=True)
class Part:
    name: str  # its results folder under --results
    what: str
    selection: tuple[str, ...]  # suite and overrides, as `dlrepro run` takes them


PARTS = (
    Part("cnn", "the handout CNN, every seed", ("mnist_cnn", "--only", "model=cnn_handout")),
    Part("gan", "the GAN, seed 0", ("gan", "--set", "seeds=[0]")),
    Part("autoencoder", "the CNN autoencoder at d = 8 and 32, seed 0",
         ("autoencoder", "--set", "seeds=[0]", "--only", "model=cnn", "--only", "d=[8,32]")),
)


class Log:
    """Prints each line with the seconds since the start, and keeps it in gpu_check.log."""

    def __init__(self, path: Path):
        self.start = time.perf_counter()
        self.file = path.open("w", encoding="utf-8")

    def __call__(self, line: str) -> None:
        stamped = f"[{time.perf_counter() - self.start:7.1f} s] {line.rstrip()}"
        print(stamped, flush=True)
        self.file.write(stamped + "\n")
        self.file.flush()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def environment() -> list[str]:
    """The machine as the runs see it; torch is imported here only to describe the device."""
    import torch

    lines = [f"python {platform.python_version()}, torch {torch.__version__}, "
             f"{platform.node()}, {platform.processor() or platform.machine()}"]
    if torch.cuda.is_available():
        lines += [f"cuda {torch.version.cuda}: {torch.cuda.get_device_name(i)}"
                  for i in range(torch.cuda.device_count())]
    else:
        lines.append("cuda: not available, every run on the CPU")
    for optional in ("ray", "codecarbon"):
        found = importlib.util.find_spec(optional) is not None
        lines.append(f"{optional}: {'installed' if found else 'not installed'}")
    return lines


def dlrepro_run(part: Part, args: argparse.Namespace, log: Log, *extra: str) -> int:
    """`python -m dlrepro run` of one part, its output streamed into the log; its exit code."""
    command = [sys.executable, "-m", "dlrepro", "run", *part.selection, "--profile", args.profile,
               "--runner", "local", "--results", str(args.results / part.name), *extra]
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as process:
        for line in process.stdout:
            log(f"  {line}")
    return process.returncode


def read_tables(results: Path) -> dict[str, list[dict]]:
    """Each merged table's rows, from every part's folder that has it, with the part's name (a
    part that reads another suite's run, the GAN's classifier, runs it again in its folder)."""
    tables = {name: [] for name in MERGED_TABLES}
    for part in PARTS:
        for folder in sorted((results / part.name).glob("*/")):
            for name in MERGED_TABLES:
                if (folder / f"{name}.csv").is_file():
                    with (folder / f"{name}.csv").open(newline="", encoding="utf-8") as f:
                        tables[name] += [{**row, "part": part.name} for row in csv.DictReader(f)]
    return tables


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def plain(value: str) -> str:
    """A table's number as written in a suite: 32, not the 32.0 of a column that has blanks."""
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


def markdown(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def run_row(run: dict, train_s: dict[tuple[str, str], float]) -> list:
    """One run in summary.md: its part, configuration, device and times."""
    config = ", ".join(f"{key}={plain(run[key])}" for key in CONFIG_COLUMNS if run.get(key))
    training = train_s.get((run["part"], run["run_id"]))
    return [run["part"], run["suite"], config, run["seed"], run["status"], run["device"],
            f"{float(run['wall_time_s']):.1f}", "" if training is None else f"{training:.1f}"]


def summary(tables: dict[str, list[dict]], finished: list[tuple[Part, int, float]],
            env: list[str], profile: str) -> str:
    # A part's own copy of a run another suite needs has that run's id: keyed by both.
    train_s = {(row["part"], row["run_id"]): float(row["value"]) for row in tables["metrics"]
               if row["metric"] == "train_time_s"}
    lines = [f"# gpu_check at profile {profile}", "", *(f"- {line}" for line in env), ""]
    lines += markdown(["part", "exit", "wall (s)"],
                      [[part.what, rc, f"{wall:.1f}"] for part, rc, wall in finished])
    lines += ["", *markdown(["part", "suite", "configuration", "seed", "status", "device",
                             "run (s)", "training (s)"],
                            [run_row(run, train_s) for run in tables["runs"]])]
    handout = [seconds for (part, _), seconds in train_s.items() if part == "cnn"]
    if handout and profile == "full":  # the slide's time is for the full profile's 10 epochs
        mean = sum(handout) / len(handout)
        lines += ["", f"Handout CNN, 10 epochs: {mean:.1f} s of training per seed (mean of "
                  f"{len(handout)}) against the slide's ≈ {SLIDE_TRAIN_S:.0f} s on a GTX 1080: "
                  f"{SLIDE_TRAIN_S / mean:.2f}× its speed."]
    claims = [[c["status"], f"{c['suite']}/{c['claim']}", c["reason"] or c["values"]]
              for c in tables["claims"]]
    lines += ["", *markdown(["verdict", "claim", "measured / why"], claims)]
    return "\n".join(lines) + "\n"


def without_weights(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if info.name.endswith(".pt") else info


def write_outputs(args: argparse.Namespace, finished: list, env: list[str]) -> dict:
    """Every output file from what has finished so far: a run cut short still leaves them."""
    tables = read_tables(args.results)
    for name, rows in tables.items():
        if rows:
            write_csv(args.out / f"{name}.csv", rows)
    (args.out / "summary.md").write_text(summary(tables, finished, env, args.profile),
                                         encoding="utf-8")
    if args.results.is_dir():  # not where the first part was refused
        with tarfile.open(args.out / "results.tar.gz", "w:gz") as tar:
            tar.add(args.results, arcname="results", filter=without_weights)
    return tables


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the log, summary.md, the merged tables, results.tar.gz")
    parser.add_argument("--profile", choices=["smoke", "quick", "full"], default="full",
                        help="full (default: the GPU check) or smoke (seconds, what CI runs)")
    parser.add_argument("--results", type=Path,
                        help="dlrepro's results folders (default: OUT/results)")
    parser.add_argument("--data-dir", type=Path,
                        help="directory holding MNIST/raw (default: $DLREPRO_DATA_DIR)")
    args = parser.parse_args()
    args.results = args.results or args.out / "results"
    return args


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "gpu_check.log")
    env = environment()
    for line in env:
        log(line)
    log(f"the plan at profile {args.profile}:")
    for part in PARTS:  # every selection checked before any training
        if dlrepro_run(part, args, log, "--dry-run") != 0:
            log(f"gpu_check: {part.name}: the selection is refused (above); nothing run")
            return 2
    finished = []
    for number, part in enumerate(PARTS, 1):
        log(f"part {number}/{len(PARTS)}: {part.what}")
        started = time.perf_counter()
        rc = dlrepro_run(part, args, log)
        finished.append((part, rc, time.perf_counter() - started))
        tables = write_outputs(args, finished, env)
        log(f"part {number}/{len(PARTS)}: exit {rc} in {finished[-1][2]:.1f} s")
    failed = [run for run in tables["runs"] if run["status"] != "ok"]
    ok = all(rc == 0 for _, rc, _ in finished) and tables["runs"] and not failed
    log(f"gpu_check: {'every part ran' if ok else 'FAILED'}: {len(tables['runs'])} runs, "
        f"{len(failed)} not ok, {log.elapsed():.0f} s in all; outputs in {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
