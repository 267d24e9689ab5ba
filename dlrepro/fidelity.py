"""The fidelity table: every published number (an ``approx`` claim with ``published``) beside what
was measured, a row per number (a curve: a row per element); docs/fidelity.md says how to read
it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro import claims, tables
from dlrepro.claims import ClaimResult, allowed, empty_cell
from dlrepro.formatting import (MEASURED, ClaimStatus, assignments, counted, measured, number,
                                published)
from dlrepro.schema import Approx, choices
from dlrepro.suite import Suite

COLUMNS = ["suite", "claim", "profile", "at", "source", "published", "measured", "std", "runs",
           "reduce", "difference", "tolerance", "why", "status", "ran"]
NOT_MEASURED = "not measured"


def rows(suite: Suite, evaluated: list[ClaimResult], profile: str) -> list[dict]:
    """The fidelity rows of one suite's published claims, from their evaluation at ``profile``
    (a claim not evaluated there is about another profile)."""
    by_id = {r.claim: r for r in evaluated if r.suite == suite.name}
    return [_row(suite.name, claim, by_id.get(claim.id), i, target, profile)
            for claim in suite.model.claims if isinstance(claim, Approx) and claim.published
            for i, target in enumerate(choices(claim.value))]


def _row(suite: str, claim: Approx, result: ClaimResult | None, i: int, target: float,
         profile: str) -> dict:
    row = {"suite": suite, "claim": claim.id, "profile": profile,
           "at": "" if claim.over is None else f"{claim.over} #{i + 1}",
           "source": claim.published.source, "published": target, "measured": None, "std": None,
           "runs": 0, "reduce": claim.reduce, "difference": None,
           "tolerance": allowed(claim, target), "why": claim.published.why, "ran": ""}
    if result is None:
        return {**row, "profile": "/".join(claim.profiles), "status": ClaimStatus.OTHER_PROFILE}
    if result.status is ClaimStatus.DOES_NOT_APPLY:
        ran = assignments([(result.along, "/".join(result.at))])
        return {**row, "status": ClaimStatus.DOES_NOT_APPLY, "ran": ran}
    if result.status not in MEASURED or i >= len(result.values):
        return {**row, "status": ClaimStatus.NOT_RUN}
    values, difference = pd.Series(result.samples[i], dtype=float), result.values[i] - target
    if claim.over is not None:
        row["at"] = assignments([(claim.over, result.at[i])])
    holds = abs(difference) <= row["tolerance"]
    return {**row, "measured": float(values.mean()), "runs": len(values),
            "std": float(values.std()) if len(values) > 1 else None, "difference": difference,
            "status": ClaimStatus.REPRODUCED if holds else ClaimStatus.NOT_REPRODUCED}


def evaluated(suites: list[Suite], runs: pd.DataFrame, metrics: pd.DataFrame,
               profile: str) -> tuple[list, list[dict]]:
    """The claims of ``suites`` at ``profile``, and the fidelity rows of their published numbers."""
    verdicts, numbers = [], []
    for suite in suites:
        evaluated = claims.evaluate(suite, tables.joined(runs, metrics, suite.name), profile,
                                    tables.not_run(runs, suite.name))
        verdicts += evaluated
        numbers += rows(suite, evaluated, profile)
    return verdicts, numbers


def read(path: Path) -> pd.DataFrame:
    """fidelity.csv with its statuses typed; empty if missing or written by an older dlrepro."""
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    table = pd.read_csv(path, keep_default_na=False).rename(columns={"seeds": "runs"})  # older
    if list(table.columns) != COLUMNS:
        return pd.DataFrame(columns=COLUMNS)
    table["status"].map(ClaimStatus)  # a status that is not one is refused here
    return table


def write(path: Path, found: list[dict]) -> pd.DataFrame:
    """Replace the evaluated suites' rows of fidelity.csv, keep the other suites' rows."""
    table = tables.replaced(read(path), pd.DataFrame(found, columns=COLUMNS))
    tables.write_csv(path, table)
    return table


def display(table: pd.DataFrame, full: pd.DataFrame | None = None) -> list[dict]:
    """The table's rows as the report shows them (docs/fidelity.md); with ``full``, the rows
    measured at the full profile, each also says what full measured, or "not measured"."""
    shown = [_shown(r) for r in table.itertuples()]
    if full is not None:
        at_full = dict(zip(_positions(full), map(_shown, full.itertuples())))
        for row, key in zip(shown, _positions(table)):
            there = at_full.get(key)
            row["full"] = (f"{there['status']}: {there['measured']}"
                           if there and there["verdict"] in MEASURED else NOT_MEASURED)
    return shown


def _positions(table: pd.DataFrame) -> list[tuple[str, str, int]]:
    """Each row's suite, claim and place among its claim's numbers (a curve has several)."""
    return list(zip(table["suite"], table["claim"], table.groupby(["suite", "claim"]).cumcount()))


def _shown(r) -> dict:
    tolerance, status = float(r.tolerance), ClaimStatus(r.status)
    shown = {"suite": r.suite, "claim": r.claim, "profile": r.profile, "source": r.source,
             "at": "" if empty_cell(r.at) else r.at, "published": published(r.published),
             "measured": "—", "difference": "—", "tolerance": f"± {number(tolerance, 3)}",
             "why": r.why, "verdict": status, "status": str(status)}
    if not empty_cell(r.measured):
        spread = "" if empty_cell(r.std) else f" ± {number(float(r.std), 2)}"
        mean = f"{measured(float(r.measured), tolerance)}{spread}"
        runs = counted(int(r.runs), "run")
        shown["measured"] = f"{mean} ({runs})"
        if r.reduce != "mean":  # the value the verdict is on, then the mean
            reduced = measured(float(r.published) + float(r.difference), tolerance)
            shown["measured"] = f"{reduced} ({r.reduce} of {runs}; mean {mean})"
    if not empty_cell(r.difference):
        difference = measured(float(r.difference), tolerance)
        shown["difference"] = difference if difference.startswith("-") else f"+{difference}"
    if status is ClaimStatus.OTHER_PROFILE:
        shown["status"] = f"{r.profile} profile only"
    elif status is ClaimStatus.DOES_NOT_APPLY:
        shown["status"] = f"{status} ({r.ran})"
    return shown
