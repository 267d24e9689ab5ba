"""The Markdown report of one profile: claims, the published numbers, cost, and each suite's figures and failures.

A suite's figures are redrawn only when what they are drawn from changed (its rows of the tables,
or its experiment's code): a cached report costs a second, not a minute.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from dlrepro import fidelity, tables
from dlrepro.files import atomic_write
from dlrepro.layout import Results
from dlrepro.machine import cpu_model
from dlrepro.suite import Suite

FIGURE_INDEX = "figures.json"  # in each suite's figures folder: what the figures were drawn from, and their files


def build(results: Results, suites: list[Suite], claims: pd.DataFrame, published: pd.DataFrame,
          runs: pd.DataFrame, metrics: pd.DataFrame) -> Path:
    """Draw (or reuse) every suite's figures and write ``report.md`` beside the tables."""
    profile = results.root.name
    lines = [f"# dlrepro report — profile `{profile}`", "",
             f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
             f"({cpu_model()}). Tables: `runs.parquet`, `metrics.parquet` "
             "(CSV copies beside them); claims: `claims.csv`; published numbers: `fidelity.csv`; "
             "raw energy log: `energy/`.", ""]
    counts = claims["status"].value_counts()
    lines += [f"**Claims:** {counts.get('reproduced', 0)} reproduced, {counts.get('not reproduced', 0)} not "
              f"reproduced, {counts.get('not run', 0)} not run.", "",
              "| suite | claim | status | measured | expected | text |", "|---|---|---|---|---|---|"]
    for row in claims.itertuples():
        lines.append(f"| {row.suite} | {row.claim} | {_status(row.status)} | {_cell(row.measured)} | "
                     f"{_cell(row.expected)} | {_cell(row.text)} |")
    lines += ["", "## Published numbers", "",
              "Every number the slides, their handouts or the papers they cite print, beside what this profile "
              "measured. A row marked with another profile is about that profile's settings (the paper's "
              "epochs) and is not measured here.", "", *fidelity.markdown(published)]
    lines += ["", "## Cost per suite", "", _cost(runs), ""]
    for suite in suites:
        lines += _suite_section(suite, runs, metrics, results)
    atomic_write(results.report, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    return results.report


def _suite_section(suite: Suite, runs: pd.DataFrame, metrics: pd.DataFrame, results: Results) -> list[str]:
    m = suite.model
    lines = [f"## {suite.name}: {m.title}", "", f"Source: seed {m.source.seed}, «{m.source.slide}»"
             + (f" ({m.source.note})" if m.source.note else "") + f"; experiment `{m.experiment}`.", ""]
    mine = runs[runs["suite"] == suite.name]
    if mine.empty:
        return lines + ["Not run at this profile.", ""]
    failed = mine[mine["status"] == "failed"]
    if len(failed):
        lines += [f"**{len(failed)} of {len(mine)} run(s) failed**; first error:", "", "```",
                  str(failed["error"].iloc[0]).strip(), "```", ""]
    for path in figures(suite, tables.joined(runs, metrics, suite.name), results):
        lines += [f"![{path.stem}]({path.relative_to(results.root).as_posix()})", ""]
    return lines


def figures(suite: Suite, table: pd.DataFrame, results: Results) -> list[Path]:
    """The suite's figures, redrawn only if its table or its experiment's code changed since they were drawn."""
    out_dir = results.figures(suite.name)
    index = out_dir / FIGURE_INDEX
    fingerprint = hashlib.sha256(suite.experiment.code_hash.encode()
                                 + pd.util.hash_pandas_object(table, index=False).values.tobytes()
                                 + ",".join(table.columns).encode()).hexdigest()
    try:
        drawn = json.loads(index.read_text())
        paths = [out_dir / name for name in drawn["files"]]
        if drawn["fingerprint"] == fingerprint and all(p.is_file() for p in paths):
            return paths
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        pass
    paths = suite.experiment.figures(table, out_dir, results.artifacts(suite.name))
    atomic_write(index, lambda tmp: tmp.write_text(json.dumps(
        {"fingerprint": fingerprint, "files": [p.relative_to(out_dir).as_posix() for p in paths]})))
    return paths


def _cost(runs: pd.DataFrame) -> str:
    if runs.empty:
        return "No runs."
    cost = runs.groupby("suite").agg(runs=("run_id", "size"), failed=("status", lambda s: int((s == "failed").sum())),
                                     wall_time_s=("wall_time_s", "sum"), energy_kwh=("energy_kwh", "sum"),
                                     co2_kg=("co2_kg", "sum"), device=("device", "first"))
    lines = ["| suite | runs | failed | run time (s) | energy (Wh) | CO2 (g) | device |", "|---|---|---|---|---|---|---|"]
    for suite, r in cost.iterrows():
        lines.append(f"| {suite} | {r.runs} | {r.failed} | {r.wall_time_s:.1f} | {1000 * r.energy_kwh:.3g} | "
                     f"{1000 * r.co2_kg:.3g} | {r.device} |")
    methods = "; ".join(sorted(set(runs["energy_method"].dropna())))
    return "\n".join(lines) + f"\n\nEnergy: {methods}."


def _status(status: str) -> str:
    return {"reproduced": "✅ reproduced", "not reproduced": "❌ not reproduced"}.get(status, "⚪ not run")


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") if isinstance(text, str) else ""
