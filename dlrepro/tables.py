"""Result tables, merged from per-run records: ``runs`` (one row per run) and ``metrics`` (tidy).

Both are written as parquet and as CSV, each file atomically. A table holds the records of the
runs the current suites define; rows of suites that were not part of this merge are kept as they
were, so running one suite never drops another's results.
"""

from __future__ import annotations

import json

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
        run_rows.append({**{k: record.get(k) for k in RUN_COLUMNS}, **_flat(record["params"])})
        ids = {"run_id": record["run_id"], "suite": record["suite"]}
        metric_rows += [{**ids, **m} for m in record["metrics"]]
    runs = _concat(runs[~runs["suite"].isin(suites)], pd.DataFrame(run_rows), RUN_COLUMNS)
    metrics = _concat(metrics[~metrics["suite"].isin(suites)], pd.DataFrame(metric_rows),
                      METRIC_COLUMNS)
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


def write(results: Results, runs: pd.DataFrame, metrics: pd.DataFrame) -> None:
    for name, table in (("runs", runs), ("metrics", metrics)):
        atomic_write(results.table(name), lambda tmp, t=table: t.to_parquet(tmp, index=False))
        atomic_write(results.table(name, "csv"), lambda tmp, t=table: t.to_csv(tmp, index=False))


def _flat(params: dict) -> dict:
    return {k: _scalar_cell(v) for k, v in params.items()}


def _scalar_cell(value: object) -> object:
    # A list becomes JSON text so that each parameter stays one scalar column.
    return json.dumps(value) if isinstance(value, list) else value


def _concat(kept: pd.DataFrame, new: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    frames = [f for f in (kept, new) if len(f)]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=first)
    for column in table.columns:
        # A parameter name shared by suites with different types breaks parquet: keep it as text.
        kinds = {type(v) for v in table[column].dropna()}
        if len(kinds) > 1 and str in kinds:
            table[column] = table[column].map(lambda v: v if pd.isna(v) else str(v))
    return table[first + [c for c in table.columns if c not in first]]
