"""Result tables, merged from per-run records: ``runs`` (one row per run) and ``metrics`` (tidy).

Both are written as parquet and as CSV, each file atomically. A table holds the records of the
runs the current suites define; rows of suites that were not part of this merge are kept as they
were, so running one suite never drops another's results. Every table kept per suite (claims,
published numbers, baselines and their cost) is updated so, by ``replaced``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from dlrepro.files import atomic_write
from dlrepro.layout import Results
from dlrepro.suite import RunSpec

RUN_COLUMNS = ["run_id", "suite", "experiment", "seed", "status", "error", "started_at",
               "finished_at", "wall_time_s", "batch_size", "device", "worker", "node", "hostname",
               "energy_kwh", "co2_kg", "energy_method", "dlrepro_version", "torch_version",
               "python_version", "git_commit"]
METRIC_COLUMNS = ["run_id", "suite", "metric", "step", "value"]


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
    write(results, runs, metrics)
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


def replaced(old: pd.DataFrame, new: pd.DataFrame, on: str = "suite",
             keys: Iterable[object] | None = None) -> pd.DataFrame:
    """``old`` with its rows of ``keys`` in column ``on`` (default: the values ``new`` has there)
    replaced by ``new``'s rows, after the rows it keeps."""
    kept = old[~old[on].isin(new[on] if keys is None else keys)]
    frames = [frame for frame in (kept, new) if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else new.reset_index(drop=True)


def write(results: Results, runs: pd.DataFrame, metrics: pd.DataFrame) -> None:
    for name, table in (("runs", runs), ("metrics", metrics)):
        atomic_write(results.table(name), lambda tmp, t=table: t.to_parquet(tmp, index=False))
        write_csv(results.table(name, "csv"), table)


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
