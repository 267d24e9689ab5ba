"""Result tables merged from per-run records: ``runs`` (a row per run) and ``metrics`` (tidy), as
parquet and CSV, each file written atomically. Tables kept per suite are updated by ``replaced``:
running one suite never drops another's rows."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from dlrepro.errors import Refused
from dlrepro.energy import READINGS
from dlrepro.files import atomic_write
from dlrepro.formatting import ClaimStatus
from dlrepro.layout import Results
from dlrepro.suite import RunSpec

RUN_COLUMNS = ["run_id", "suite", "experiment", "seed", "status", "error", "started_at",
               "finished_at", "wall_time_s", "batch_size", "device", "worker", "node", "hostname",
               *READINGS, "energy_method", "dlrepro_version", "torch_version", "python_version",
               "git_commit"]
METRIC_COLUMNS = ["run_id", "suite", "metric", "step", "value"]
# A baseline: a row per configuration, metric and step of a suite's runs, with its statistics.
KEY = ["suite", "configuration", "metric", "step"]
STATS = ["n", "mean", "std"]
COST_FILE = "cost.csv"
# Beside the value baselines: the claims and published numbers measured when they were written.
CLAIMS_FILE, FIDELITY_FILE = "claims.csv", "fidelity.csv"
COST_COLUMNS = ["suite", "hardware", "runs", "wall_time_s", "energy_kwh", "energy_method"]


def merge(results: Results, specs: list[RunSpec]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace the specs' suites' rows with their current records; write, return both tables."""
    runs, metrics = load(results)
    suites = {s.suite for s in specs}
    run_rows, metric_rows = [], []
    # A run shared by two profiles' grids is one row.
    for spec in {s.run_id: s for s in specs}.values():
        record = results.get(spec)
        if record is None:
            continue
        params = {k: _scalar(v) for k, v in record["params"].items()}
        run_rows.append({**{k: record.get(k) for k in RUN_COLUMNS}, **params})
        ids = {"run_id": record["run_id"], "suite": record["suite"]}
        metric_rows += [{**ids, **m} for m in record["metrics"]]
    runs = _storable(replaced(runs, pd.DataFrame(run_rows), keys=suites), RUN_COLUMNS)
    metrics = _storable(replaced(metrics, pd.DataFrame(metric_rows), keys=suites), METRIC_COLUMNS)
    metrics["step"] = metrics["step"].astype("Int64")
    metrics["value"] = metrics["value"].astype(float)
    for name, table in (("runs", runs), ("metrics", metrics)):
        atomic_write(results.table(name), lambda tmp, t=table: t.to_parquet(tmp, index=False))
        write_csv(results.table(name, "csv"), table)
    return runs, metrics


def load(results: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables of one profile, or empty ones with the right columns."""
    if not results.table("runs").exists():
        return pd.DataFrame(columns=RUN_COLUMNS), pd.DataFrame(columns=METRIC_COLUMNS)
    return pd.read_parquet(results.table("runs")), pd.read_parquet(results.table("metrics"))


def joined(runs: pd.DataFrame, metrics: pd.DataFrame, suite: str) -> pd.DataFrame:
    """One suite's metrics of successful runs, each row with its run's parameters and seed."""
    ok = runs[(runs["suite"] == suite) & (runs["status"] == "ok")]
    # Other suites' parameters: columns empty in every row of this one.
    foreign = [c for c in ok.columns if c not in RUN_COLUMNS and ok[c].isna().all()]
    ok = ok.drop(columns=["suite", *foreign])
    for column in ok.columns.difference(RUN_COLUMNS):
        # Integer parameters become floats in a table where other suites, or runs of a mode that
        # does not read them, leave them empty: restore them.
        given = ok[column].dropna()
        if ok[column].dtype.kind == "f" and len(given) and (given % 1 == 0).all():
            ok[column] = ok[column].astype("Int64" if len(given) < len(ok) else "int64")
    return metrics[metrics["suite"] == suite].merge(ok, on="run_id")


def ran(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that ran, ok or failed: not those left out for an absent data set."""
    return runs[runs["status"] != ClaimStatus.NOT_RUN]


def not_run(runs: pd.DataFrame, suite: str) -> dict[str, str]:
    """Why each run of the suite left out for its absent data set was not run, by run_id."""
    left_out = runs[(runs["suite"] == suite) & (runs["status"] == ClaimStatus.NOT_RUN)]
    return dict(zip(left_out["run_id"], left_out["error"]))


def replaced(old: pd.DataFrame, new: pd.DataFrame, on: str = "suite",
             keys: Iterable[object] | None = None) -> pd.DataFrame:
    """``old`` with its rows of ``keys`` in column ``on`` (default: the values ``new`` has there)
    replaced by ``new``'s rows, after the rows it keeps."""
    kept = old[~old[on].isin(new[on] if keys is None else keys)]
    frames = [frame for frame in (kept, new) if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else new.reset_index(drop=True)


def write_csv(path: Path, table: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def _scalar(value: object) -> object:
    """A list becomes JSON text so that each parameter stays one scalar column."""
    return json.dumps(value) if isinstance(value, list) else value


def _storable(table: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    if table.columns.empty:  # no rows, kept or new
        return pd.DataFrame(columns=first)
    for column in table.columns:
        # A parameter name shared by suites with different types breaks parquet: keep it as text.
        kinds = {type(v) for v in table[column].dropna()}
        if len(kinds) > 1 and str in kinds:
            table[column] = table[column].map(lambda v: v if pd.isna(v) else str(v))
    return table[first + [c for c in table.columns if c not in first]]


class Baselines:
    """``<root>/<profile>/<suite>.csv``, the profile's ``cost.csv``, and the ``claims.csv`` and
    ``fidelity.csv`` of the runs the baselines were made from."""

    def __init__(self, root: Path, profile: str):
        self.dir = Path(root) / profile

    def ensure_exists(self) -> None:
        """A gate pointed at a folder that is not there must fail, not compare nothing and pass."""
        root = self.dir.parent
        if not root.is_dir():
            raise Refused(f"{root}: no such baseline folder")
        if not self.dir.is_dir():
            raise Refused(f"{self.dir}: no baselines for profile {self.dir.name!r} (create them "
                          f"with `dlrepro baseline update --profile {self.dir.name}`)")

    def suites(self) -> list[str]:
        kept = {COST_FILE, CLAIMS_FILE, FIDELITY_FILE}
        return sorted(p.stem for p in self.dir.glob("*.csv") if p.name not in kept)

    def read(self, suite: str) -> pd.DataFrame | None:
        path = self.dir / f"{suite}.csv"
        if not path.exists():
            return None
        table = _read_csv(path, KEY + STATS, "a baseline",
                          dtype={"configuration": str, "metric": str})
        table["step"] = table["step"].astype("Int64")
        return table[KEY + STATS]

    def cost(self) -> pd.DataFrame:
        """The profile's cost.csv, every run count, time and energy a finite number ≥ 0."""
        path = self.dir / COST_FILE
        if not path.exists():
            return pd.DataFrame(columns=COST_COLUMNS)
        table = _read_csv(path, COST_COLUMNS, "a cost table")
        for column in ("runs", "wall_time_s", "energy_kwh"):
            values = pd.to_numeric(table[column], errors="coerce")
            bad = ~values.between(0, math.inf)  # NaN and text (coerced to NaN) fall outside too
            if bad.any():
                row = bad.idxmax()
                raise Refused(f"{path}: {column} of {table.at[row, 'suite']}: "
                              f"'{table.at[row, column]}' is not a finite number >= 0")
            table[column] = values
        return table

    def write(self, suite: str, summary: pd.DataFrame, suite_cost: dict) -> Path:
        path = self.dir / f"{suite}.csv"
        # repr-exact floats (no float_format): read back, it compares equal to its summary.
        write_csv(path, summary)
        costs = replaced(self.cost(), pd.DataFrame([suite_cost]))
        write_csv(self.dir / COST_FILE, costs.sort_values("suite"))
        return path


def _read_csv(path: Path, columns: list[str], what: str, **options) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, **options)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise Refused(f"{path}: not a readable CSV: {err}") from None
    missing = set(columns) - set(table.columns)
    if missing:
        raise Refused(f"{path}: not {what}: no column {', '.join(sorted(missing))}")
    return table
