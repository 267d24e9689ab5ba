"""The Markdown report of one profile: claims, each suite's figures, time and energy."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from dlrepro import experiments, tables
from dlrepro.execute import cpu_model
from dlrepro.store import atomic_write
from dlrepro.suite import Suite


def build(profile_dir: Path, suites: list[Suite], claims: pd.DataFrame) -> Path:
    """Draw every suite's figures from the tables and write ``report.md`` beside them."""
    runs, metrics = tables.load(profile_dir)
    profile = profile_dir.name
    lines = [f"# dlrepro report — profile `{profile}`", "",
             f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
             f"({cpu_model()}). Tables: `runs.parquet`, `metrics.parquet` "
             "(CSV copies beside them); claims: `claims.csv`; raw energy log: `energy/`.", ""]
    counts = claims["status"].value_counts()
    lines += [f"**Claims:** {counts.get('reproduced', 0)} reproduced, {counts.get('not reproduced', 0)} not "
              f"reproduced, {counts.get('not run', 0)} not run.", "",
              "| suite | claim | status | measured | expected | text |", "|---|---|---|---|---|---|"]
    for row in claims.itertuples():
        lines.append(f"| {row.suite} | {row.claim} | {_status(row.status)} | {_cell(row.measured)} | "
                     f"{_cell(row.expected)} | {_cell(row.text)} |")
    lines += ["", "## Cost per suite", "", _cost(runs), ""]
    for suite in suites:
        lines += _suite_section(suite, runs, metrics, profile_dir)
    path = profile_dir / "report.md"
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    return path


def _suite_section(suite: Suite, runs: pd.DataFrame, metrics: pd.DataFrame, profile_dir: Path) -> list[str]:
    m = suite.model
    lines = [f"## {suite.name}: {m.title}", "", f"Source: seed {m.source.seed}, «{m.source.slide}»"
             + (f" ({m.source.note})" if m.source.note else "") + f"; experiment `{m.experiment}`.", ""]
    mine = runs[runs["suite"] == suite.name]
    if mine.empty:
        return lines + ["Not run at this profile.", ""]
    failed = mine[mine["status"] == "failed"]
    if len(failed):
        lines += [f"**{len(failed)} run(s) failed**; first error:", "", "```", failed["error"].iloc[0].strip(), "```", ""]
    module = experiments.load(m.experiment)
    if hasattr(module, "figures"):
        table = tables.joined(runs, metrics, suite.name)
        for path in module.figures(table, profile_dir / "figures" / suite.name, profile_dir / "artifacts" / suite.name):
            lines += [f"![{path.stem}]({path.relative_to(profile_dir).as_posix()})", ""]
    return lines


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
