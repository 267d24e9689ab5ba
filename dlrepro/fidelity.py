"""The fidelity table: every published number (an ``approx`` claim with ``published``) beside what
was measured.

One row per number — a list value (a curve: the loss per epoch, 12 iterates) gives one row per
element. Measured is the mean ± standard deviation over the runs the claim selects (one per seed),
and the verdict uses the claim's own ``reduce``, as ``claims`` does. A claim about another profile's
settings (the paper's epochs: full) still gets its rows, marked with that profile and not measured
here, so the table lists every published number whatever profile was run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro.claims import allowed, approx_groups, outside, reduced, replace_suites, select
from dlrepro.formatting import number
from dlrepro.schema import Approx
from dlrepro.suite import Suite

COLUMNS = ["suite", "claim", "profile", "at", "source", "published", "measured", "std", "seeds", "reduce",
           "difference", "tolerance", "why", "status"]


def rows(suite: Suite, table: pd.DataFrame, profile: str) -> list[dict]:
    """The fidelity rows of one suite's published claims against its joined table at ``profile``."""
    found = []
    for claim in suite.model.claims:
        if not isinstance(claim, Approx) or claim.published is None:
            continue
        here = claim.profiles is None or profile in claim.profiles
        elsewhere = outside(claim, table)
        values = claim.value if isinstance(claim.value, list) else [claim.value]
        groups = approx_groups(claim, select(claim, table)) if here else []
        for i, published in enumerate(values):
            key, runs = groups[i] if i < len(groups) else (None, pd.Series(dtype=float))
            at = "" if claim.over is None else f"{claim.over}={key}" if key is not None else f"{claim.over} #{i + 1}"
            row = _row(suite.name, claim, profile if here else "/".join(claim.profiles), at, published, runs,
                       measured_here=here)
            found.append({**row, "status": f"does not apply ({elsewhere})"} if elsewhere and here else row)
    return found


def _row(suite: str, claim: Approx, profile: str, at: str, published: float, values: pd.Series,
         measured_here: bool) -> dict:
    tolerance = allowed(claim, published)
    row = {"suite": suite, "claim": claim.id, "profile": profile, "at": at, "source": claim.published.source,
           "published": published, "measured": None, "std": None, "seeds": len(values), "reduce": claim.reduce,
           "difference": None, "tolerance": tolerance, "why": claim.published.why}
    if not measured_here:
        return {**row, "status": f"{profile} profile only"}
    if values.empty:
        return {**row, "status": "not run"}
    got = reduced(claim, values, published)
    return {**row, "measured": float(values.mean()), "std": float(values.std()) if len(values) > 1 else None,
            "difference": got - published,
            "status": "reproduced" if abs(got - published) <= tolerance else "not reproduced"}


def write(path: Path, found: list[dict]) -> pd.DataFrame:
    """Replace the evaluated suites' rows of fidelity.csv, keep the other suites' rows."""
    return replace_suites(path, pd.DataFrame(found, columns=COLUMNS))


def display(table: pd.DataFrame) -> list[dict]:
    """The table's rows as the report shows them: numbers written out, measured as mean ± sd (seeds)."""
    shown = []
    for r in table.itertuples():
        measured = "—" if _missing(r.measured) else (
            number(float(r.measured)) + ("" if _missing(r.std) else f" ± {number(float(r.std), 2)}") + f" ({r.seeds})")
        difference = "—" if _missing(r.difference) else f"{float(r.difference):+.3g}"
        if r.reduce != "mean" and not _missing(r.difference):
            difference += f" ({r.reduce})"
        shown.append({"suite": r.suite, "claim": r.claim, "profile": r.profile, "at": "" if _missing(r.at) else r.at,
                      "source": r.source, "published": number(float(r.published)), "measured": measured,
                      "difference": difference, "tolerance": f"± {number(float(r.tolerance), 3)}", "why": r.why,
                      "status": r.status})
    return shown


def _missing(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and pd.isna(value))
