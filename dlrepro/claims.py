"""The slides' claims (``dlrepro.schema``) evaluated against the result tables.

Every claim selects rows of one metric (``where`` fixes parameters, ``step`` picks final values,
the last step or one step), reduces them over seeds with ``reduce``, and tests them. The kinds:

- ``threshold``: the reduced value compared with a number (``op``: <, <=, >, >=, ==).
- ``approx``: the reduced value within ``tolerance`` (absolute) or ``rel_tolerance`` of ``value``;
  with a list ``value`` and ``over`` (a parameter or ``step``), elementwise along that axis.
- ``monotone``: the reduced value ordered along ``over`` (``direction`` increasing or decreasing,
  ``strict`` by default).
- ``compare``: the ``left`` selection against ``factor`` (default 1) times the ``right`` one with
  ``op``, at every value of the parameters in ``by`` (e.g. the CNN beats PCA at every d).

A claim whose runs are missing (failed, not run) says "not run", never "not reproduced". A claim
about some parameter values only (``applies``: a published MNIST number) says "does not apply" on
runs with others (the same suite on Fashion-MNIST).
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from dlrepro.files import atomic_write
from dlrepro.formatting import assignments, number
from dlrepro.schema import Approx, Compare, Monotone, Threshold, ClaimBase
from dlrepro.suite import Suite

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
Verdict = tuple[bool | None, str, str]  # holds (None: cannot tell), measured, expected


@dataclass(frozen=True)
class ClaimResult:
    suite: str
    claim: str
    text: str
    status: str
    measured: str
    expected: str


def evaluate(suite: Suite, table: pd.DataFrame, profile: str) -> list[ClaimResult]:
    """Each claim of a suite that applies at ``profile`` against its joined table (metrics of
    successful runs with their parameters)."""
    source = f"{suite.model.source.seed}, «{suite.model.source.slide}»"
    results = []
    for claim in suite.model.claims:
        if claim.profiles is not None and profile not in claim.profiles:
            continue
        elsewhere = outside(claim, table)
        if elsewhere:
            results.append(ClaimResult(suite.name, claim.id, f"{claim.text} ({claim.source or source})", "does not apply",
                                       elsewhere, f"{assignments(claim.applies.items())} only"))
            continue
        holds, measured, expected = check(claim, table)
        status = "not run" if holds is None else ("reproduced" if holds else "not reproduced")
        results.append(ClaimResult(suite.name, claim.id, f"{claim.text} ({claim.source or source})",
                                   status, measured, expected))
    return results


def outside(claim: ClaimBase, table: pd.DataFrame) -> str:
    """What the runs of the claim's metric were, when none has the values the claim ``applies`` to
    (``dataset=fashion_mnist``); empty when it applies or nothing ran."""
    rows = table[table["metric"] == claim.metric] if "metric" in table else table.iloc[0:0]
    for key, value in claim.applies.items():
        seen = sorted(map(str, rows[key].dropna().unique())) if key in rows else []
        if seen and str(value) not in seen:
            return f"{key}={'/'.join(seen)}"
    return ""


def check(claim: ClaimBase, table: pd.DataFrame) -> Verdict:
    """One claim against a joined table."""
    return CHECKS[type(claim)](claim, table)


def table(results: list[ClaimResult]) -> pd.DataFrame:
    """Claim results as claims.csv holds them."""
    columns = [f.name for f in fields(ClaimResult)]
    return pd.DataFrame([asdict(r) for r in results], columns=columns)


def write(path: Path, results: list[ClaimResult]) -> pd.DataFrame:
    """Replace the evaluated suites' rows of claims.csv, keep the other suites' rows."""
    return replace_suites(path, table(results))


def replace_suites(path: Path, new: pd.DataFrame) -> pd.DataFrame:
    """Write ``new`` over its suites' rows of a per-suite CSV (claims, fidelity), keeping the other suites'."""
    old = pd.read_csv(path, keep_default_na=False) if path.exists() else new.iloc[0:0]
    table = pd.concat([old[~old["suite"].isin(new["suite"])], new], ignore_index=True)
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    return table


def select(claim: ClaimBase, table: pd.DataFrame, where: dict | None = None) -> pd.DataFrame:
    """The rows of the claim's metric, parameters and step (plus ``where``)."""
    rows = table[table["metric"] == claim.metric]
    for key, value in {**claim.where, **claim.applies, **(where or {})}.items():
        rows = rows[rows[key] == value] if key in rows else rows.iloc[0:0]
    if claim.step is None and getattr(claim, "over", None) != "step":
        return rows[rows["step"].isna()]
    rows = rows[rows["step"].notna()]
    if claim.step == "last":
        return rows[rows["step"] == rows.groupby("run_id")["step"].transform("max")]
    return rows if claim.step is None else rows[rows["step"] == claim.step]


def _along(claim: ClaimBase, rows: pd.DataFrame, axis: str) -> pd.Series:
    if rows.empty:  # nothing run: the parameter's column may not even exist
        return pd.Series(dtype=float)
    return rows.groupby(axis)["value"].agg(claim.reduce).sort_index()


def _threshold(claim: Threshold, table: pd.DataFrame) -> Verdict:
    rows = select(claim, table)
    expected = f"{claim.op} {number(claim.value)}"
    if rows.empty:
        return None, "", f"{claim.reduce} {expected}"
    got = rows["value"].agg(claim.reduce)
    return bool(OPS[claim.op](got, claim.value)), f"{number(got)} ({claim.reduce} of {len(rows)})", expected


def allowed(claim: Approx, target: float) -> float:
    """The absolute gap an approx claim allows around ``target``."""
    return claim.tolerance if claim.tolerance is not None else claim.rel_tolerance * abs(target)


def reduced(claim: ClaimBase, values: pd.Series, target: float) -> float:
    """The selected values reduced as the claim says; ``worst``: the one farthest from ``target``."""
    if claim.reduce == "worst":
        return float(values.iloc[int((values - target).abs().argmax())])
    return float(values.agg(claim.reduce))


def approx_groups(claim: Approx, rows: pd.DataFrame) -> list[tuple[object, pd.Series]]:
    """The selected values per element of the claim's value: one group, or one per ``over`` value in
    order (the i-th published number is compared with the i-th smallest ``over``)."""
    if rows.empty:
        return []
    if claim.over is None:
        return [(None, rows["value"])]
    return [(key, group["value"]) for key, group in rows.groupby(claim.over, sort=True)]


def _approx(claim: Approx, table: pd.DataFrame) -> Verdict:
    groups = approx_groups(claim, select(claim, table))
    targets = claim.value if isinstance(claim.value, list) else [claim.value]
    tol = f"± {number(claim.tolerance)}" if claim.tolerance is not None else f"± {number(100 * claim.rel_tolerance)} %"
    if claim.over is None:
        expected = f"{number(claim.value)} {tol}"
        if not groups:
            return None, "", expected
        got = reduced(claim, groups[0][1], claim.value)
        return bool(abs(got - claim.value) <= allowed(claim, claim.value)), number(got), expected
    expected = f"[{', '.join(number(v) for v in claim.value)}] {tol} along {claim.over}"
    if not groups:
        return None, "", expected
    got = pd.Series([reduced(claim, values, v) for (_, values), v in zip(groups, targets)],
                    index=[key for key, _ in groups][:len(targets)])
    gaps = [abs(g - v) for g, v in zip(got, claim.value)]
    worst = max(range(len(gaps)), key=lambda i: gaps[i])
    measured = (f"[{', '.join(number(g) for g in got)}]; largest gap {number(gaps[worst])} at {claim.over} "
                f"{got.index[worst]}")
    holds = len(groups) == len(claim.value) and all(g <= allowed(claim, v) for g, v in zip(gaps, claim.value))
    return holds, measured, expected


def _monotone(claim: Monotone, table: pd.DataFrame) -> Verdict:
    got = _along(claim, select(claim, table), claim.over)
    measured = ", ".join(f"{claim.over}={k}: {number(float(v))}" for k, v in got.items())
    expected = f"{'strictly ' if claim.strict else ''}{claim.direction} along {claim.over}"
    if len(got) < 2:
        return None, measured, expected
    steps = got.diff().iloc[1:]
    if claim.direction == "decreasing":
        steps = -steps
    return bool((steps > 0).all() if claim.strict else (steps >= 0).all()), measured, expected


def _compare(claim: Compare, table: pd.DataFrame) -> Verdict:
    def side(where: dict) -> pd.Series:
        rows = select(claim, table, where)
        if rows.empty:
            return pd.Series(dtype=float)
        return rows.groupby(claim.by)["value"].agg(claim.reduce) if claim.by else \
            pd.Series([rows["value"].agg(claim.reduce)], dtype=float)

    left, right = side(claim.left).align(side(claim.right), join="inner")
    scale = "" if claim.factor == 1 else f"{number(claim.factor)} × "
    expected = (f"{assignments(claim.left.items(), ',') or 'all'} {claim.op} {scale}"
                f"{assignments(claim.right.items(), ',') or 'all'}" + (f" at every {', '.join(claim.by)}" if claim.by else ""))
    if left.empty:
        return None, "", expected

    def at(key) -> str:
        return assignments(zip(claim.by, key if isinstance(key, tuple) else (key,)), ",") + ": " if claim.by else ""

    pairs = [f"{at(k)}{number(a)} vs {number(b)}" for k, a, b in zip(left.index, left, right)]
    return bool(OPS[claim.op](left, claim.factor * right).all()), "; ".join(pairs), expected


CHECKS = {Threshold: _threshold, Approx: _approx, Monotone: _monotone, Compare: _compare}
