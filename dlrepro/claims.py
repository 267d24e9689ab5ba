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

A claim whose runs are missing (failed, not run) is ``not run``, never ``not reproduced``. A claim
about some parameter values only (``applies``: a published MNIST number) does not apply on runs
with others (the same suite on Fashion-MNIST). A claim whose selection spans several values of a
parameter that ``--set`` swept is ``not run`` too, with the reason: it would average over them.

A result (``ClaimResult``) holds numbers: the reduced value of each element with the values it was
reduced from, and the expectation (target, op, tolerance). ``describe`` writes them out, for the
terminal and the report alike; claims.csv holds them as numbers (lists as JSON).
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from itertools import pairwise
from pathlib import Path

import pandas as pd

from dlrepro.files import atomic_write
from dlrepro.formatting import assignments, measured, number, published
from dlrepro.grid import matches
from dlrepro.overrides import flags
from dlrepro.schema import Approx, ClaimBase, Compare, Monotone, Threshold, choices
from dlrepro.suite import Suite
from dlrepro.verdicts import ClaimStatus

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq}
# A monotone claim as the relation every value has with the next one along its axis.
MONOTONE_OPS = {("increasing", True): "<", ("increasing", False): "<=",
                ("decreasing", True): ">", ("decreasing", False): ">="}
TRENDS = {op: f"{'strictly ' * strict}{direction}"
          for (direction, strict), op in MONOTONE_OPS.items()}


@dataclass(frozen=True)
class ClaimResult:
    """One claim's status, the numbers it rests on, and what was expected, as numbers."""

    suite: str
    claim: str
    text: str
    kind: str  # the claim's kind: threshold, approx, monotone, compare
    status: ClaimStatus
    reduce: str = "mean"
    along: str = ""  # the parameter(s) of the elements: over, or by joined with ","
    at: tuple = ()  # each element's value of `along`; does not apply: the values that ran
    values: tuple[float, ...] = ()  # each element reduced; compare: the left side
    samples: tuple[tuple[float, ...], ...] = ()  # each element's values, one per run
    right_values: tuple[float, ...] = ()  # compare: the right side reduced, at the same keys
    op: str | None = None  # threshold, compare; monotone: each value against the next
    target: tuple[float, ...] = ()  # threshold, approx: the value, or one per element
    tolerance: float | None = None  # approx: absolute
    rel_tolerance: float | None = None  # approx: relative to each target
    factor: float | None = None  # compare: left op factor × right
    left: dict = field(default_factory=dict)  # compare: the two selections
    right: dict = field(default_factory=dict)
    applies: dict = field(default_factory=dict)  # the parameter values the claim is about
    reason: str = ""  # why it is not run when its runs are there (a sweep it does not fix)

    @property
    def count(self) -> int:
        """How many values were reduced (the left side's, for a comparison)."""
        return sum(map(len, self.samples))


COLUMNS = [f.name for f in fields(ClaimResult)]
JSON_COLUMNS = ("at", "values", "samples", "right_values", "target", "left", "right", "applies")
OPTIONAL_NUMBERS = ("tolerance", "rel_tolerance", "factor")


@dataclass(frozen=True)
class _Measured:
    holds: bool | None  # None: cannot tell
    along: str = ""
    at: tuple = ()
    values: tuple[float, ...] = ()
    samples: tuple[tuple[float, ...], ...] = ()
    right_values: tuple[float, ...] = ()


def evaluate(suite: Suite, table: pd.DataFrame, profile: str) -> list[ClaimResult]:
    """Each claim of a suite that applies at ``profile`` against its joined table (metrics of
    successful runs with their parameters)."""
    source = f"{suite.model.source.seed}, «{suite.model.source.slide}»"
    planned = [spec.params for spec in suite.runs(profile)]
    return [check(claim, table, suite.name, f"{claim.text} ({claim.source or source})",
                  suite.swept, planned)
            for claim in suite.model.claims
            if claim.at(profile)]


def check(claim: ClaimBase, table: pd.DataFrame, suite: str = "", text: str | None = None,
          swept: Iterable[str] = (), planned: Iterable[dict] = ()) -> ClaimResult:
    """One claim against a joined table; ``swept``: the parameters ``--set`` swept, which the
    claim must fix (or read along) to give a verdict; ``planned``: the parameters of the runs
    the profile has (a claim whose runs are among them but missing is waiting for them)."""
    ran, spread, reason = outside(claim, table), _spread(claim, table, swept), ""
    if ran:
        found, status = _Measured(None, along=ran[0], at=ran[1]), ClaimStatus.DOES_NOT_APPLY
    elif spread:
        found, status = _Measured(None, along=_along(claim)), ClaimStatus.NOT_RUN
        reason = _spread_reason(spread)
    else:
        found = CHECKS[type(claim)](claim, table)
        status = _status(found.holds)
        reason = _unselected(claim, table, list(planned)) if status == ClaimStatus.NOT_RUN else ""
    measurement = {name: value for name, value in asdict(found).items() if name != "holds"}
    return ClaimResult(suite, claim.id, claim.text if text is None else text, claim.kind,
                       status, claim.reduce, **measurement, **_expectation(claim), reason=reason)


def _spread(claim: ClaimBase, table: pd.DataFrame, swept: Iterable[str]) -> dict[str, list]:
    """The swept parameters that take several values in the runs the claim reduces together (not
    along its ``over`` or ``by``), with those values in order."""
    if not swept:
        return {}
    read_along = {name for names in claim.axes().values() for name in names}
    rows = pd.concat([select(claim, table, where) for where in claim.selections().values()])
    spread = {}
    for name in swept:
        values = sorted(rows[name].dropna().unique()) if name in rows else []
        if name not in read_along and len(values) > 1:
            spread[name] = [_plain(value) for value in values]
    return spread


def _unselected(claim: ClaimBase, table: pd.DataFrame, planned: list[dict]) -> str:
    """Why a claim whose metric was logged has no value: a value it selects that no run has (an
    override changed it); empty when its runs are simply missing (not finished yet)."""
    rows = table[table["metric"] == claim.metric] if "metric" in table else table.iloc[0:0]
    if rows.empty:
        return ""
    for selection in claim.selections().values():
        if any(matches(params, selection) for params in planned):
            continue  # runs the profile has: not finished, not changed by an override
        for key, value in selection.items():
            seen = [_plain(v) for v in sorted(rows[key].dropna().unique())] if key in rows else []
            if not set(seen) & set(choices(value)):
                ran = "/".join(map(str, seen)) or "none"
                return f"no run here has {key}={value} (its runs have {key}={ran})"
    return ""


def _along(claim: ClaimBase) -> str:
    """The parameter(s) a claim's elements are along, as its result names them."""
    if isinstance(claim, Compare):
        return ",".join(claim.by)
    return getattr(claim, "over", None) or ""


def _spread_reason(spread: dict[str, list]) -> str:
    """Why a claim over several swept values gives no verdict, and the option that fixes it."""
    configurations = math.prod(map(len, spread.values()))
    shown = assignments((name, "/".join(map(str, values))) for name, values in spread.items())
    fix = " ".join(flags([], [(name, values[0]) for name, values in spread.items()]))
    return (f"selects {configurations} configurations ({shown}) where --set swept "
            f"{'/'.join(spread)}: fix it with {fix}")


def _status(holds: bool | None) -> ClaimStatus:
    if holds is None:
        return ClaimStatus.NOT_RUN
    return ClaimStatus.REPRODUCED if holds else ClaimStatus.NOT_REPRODUCED


def _expectation(claim: ClaimBase) -> dict:
    """What the claim expects, as numbers (a comparison: with its two selections)."""
    if isinstance(claim, Threshold):
        kind = {"op": claim.op, "target": (claim.value,)}
    elif isinstance(claim, Approx):
        target = tuple(claim.value) if isinstance(claim.value, list) else (claim.value,)
        kind = {"target": target, "tolerance": claim.tolerance,
                "rel_tolerance": claim.rel_tolerance}
    elif isinstance(claim, Monotone):
        kind = {"op": MONOTONE_OPS[claim.direction, claim.strict]}
    else:
        kind = {"op": claim.op, "factor": claim.factor, "left": claim.left, "right": claim.right}
    return {**kind, "applies": claim.applies}


def outside(claim: ClaimBase, table: pd.DataFrame) -> tuple[str, tuple[str, ...]] | None:
    """The parameter and the values the claim's metric ran with, when none is the value the claim
    ``applies`` to (``dataset``: fashion_mnist); None when it applies or nothing ran."""
    rows = table[table["metric"] == claim.metric] if "metric" in table else table.iloc[0:0]
    for key, value in claim.applies.items():
        seen = sorted(map(str, rows[key].dropna().unique())) if key in rows else []
        if seen and str(value) not in seen:
            return key, tuple(seen)
    return None


def allowed(expectation: Approx | ClaimResult, target: float) -> float:
    """The absolute gap an approx claim allows around ``target``."""
    if expectation.tolerance is not None:
        return expectation.tolerance
    return expectation.rel_tolerance * abs(target)


def select(claim: ClaimBase, table: pd.DataFrame, where: dict | None = None) -> pd.DataFrame:
    """The rows of the claim's metric, parameters and step (plus ``where``)."""
    rows = table[table["metric"] == claim.metric]
    for key, value in {**claim.where, **claim.applies, **(where or {})}.items():
        rows = rows[rows[key].isin(choices(value))] if key in rows else rows.iloc[0:0]
    if claim.step is None and getattr(claim, "over", None) != "step":
        return rows[rows["step"].isna()]
    rows = rows[rows["step"].notna()]
    if claim.step == "last":
        return rows[rows["step"] == rows.groupby("run_id")["step"].transform("max")]
    return rows if claim.step is None else rows[rows["step"] == claim.step]


def _groups(rows: pd.DataFrame, axis: str | list[str] | None) -> list[tuple[object, pd.Series]]:
    """The selected values per element: one group, or one per value of ``axis`` in order."""
    if rows.empty:  # nothing run: the parameter's column may not even exist
        return []
    if axis is None:
        return [(None, rows["value"])]
    return [(_plain(key), group["value"]) for key, group in rows.groupby(axis, sort=True)]


def _plain(key: object) -> object:
    """A key as plain Python (numpy's numbers are not JSON)."""
    if isinstance(key, tuple):
        return tuple(map(_plain, key))
    return key.item() if hasattr(key, "item") else key


def _floats(values: pd.Series) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def reduced(reduce: str, values: pd.Series, target: float) -> float:
    """The selected values reduced as the claim says; ``worst``: the one farthest from
    ``target``."""
    if reduce == "worst":
        return float(values.iloc[int((values - target).abs().argmax())])
    return float(values.agg(reduce))


def _threshold(claim: Threshold, table: pd.DataFrame) -> _Measured:
    rows = select(claim, table)
    if rows.empty:
        return _Measured(None)
    got = float(rows["value"].agg(claim.reduce))
    return _Measured(bool(OPS[claim.op](got, claim.value)), values=(got,),
                     samples=(_floats(rows["value"]),))


def _approx(claim: Approx, table: pd.DataFrame) -> _Measured:
    """Elementwise: the i-th published number against the i-th smallest ``over``."""
    targets = claim.value if isinstance(claim.value, list) else [claim.value]
    groups = _groups(select(claim, table), claim.over)
    paired = list(zip(groups, targets))
    if not paired:
        return _Measured(None, along=_along(claim))
    got = tuple(reduced(claim.reduce, values, target) for (_, values), target in paired)
    holds = len(groups) == len(targets) and all(
        abs(g - t) <= allowed(claim, t) for g, t in zip(got, targets))
    keys = tuple(key for (key, _), _ in paired) if claim.over else ()
    return _Measured(holds, _along(claim), keys, got,
                     tuple(_floats(values) for (_, values), _ in paired))


def _monotone(claim: Monotone, table: pd.DataFrame) -> _Measured:
    groups = _groups(select(claim, table), claim.over)
    got = tuple(float(values.agg(claim.reduce)) for _, values in groups)
    holds = None
    if len(got) >= 2:
        holds = all(OPS[MONOTONE_OPS[claim.direction, claim.strict]](a, b)
                    for a, b in pairwise(got))
    return _Measured(holds, claim.over, tuple(key for key, _ in groups), got,
                     tuple(_floats(values) for _, values in groups))


def _as_tuple(key: object) -> tuple:
    """A group key as a tuple, whether pandas grouped by one column or several."""
    return key if isinstance(key, tuple) else (key,)


def _compare(claim: Compare, table: pd.DataFrame) -> _Measured:
    def side(where: dict) -> dict[tuple, pd.Series]:
        groups = _groups(select(claim, table, where), claim.by or None)
        return {_as_tuple(key): values for key, values in groups}

    left, right = side(claim.left), side(claim.right)
    keys = [key for key in left if key in right]
    along = _along(claim)
    if not keys:
        return _Measured(None, along)
    got = tuple(float(left[key].agg(claim.reduce)) for key in keys)
    against = tuple(float(right[key].agg(claim.reduce)) for key in keys)
    holds = all(OPS[claim.op](a, claim.factor * b) for a, b in zip(got, against))
    return _Measured(holds, along, tuple(keys) if claim.by else (), got,
                     tuple(_floats(left[key]) for key in keys), against)


CHECKS: dict[type, Callable[..., _Measured]] = {
    Threshold: _threshold, Approx: _approx, Monotone: _monotone, Compare: _compare}


# ---- the one place a result becomes text ----

def describe(result: ClaimResult) -> tuple[str, str]:
    """What was measured and what was expected, as the terminal and the report write them."""
    if result.status is ClaimStatus.DOES_NOT_APPLY:
        return (assignments([(result.along, "/".join(map(str, result.at)))]),
                f"{assignments(result.applies.items())} only")
    got, expected = DESCRIPTIONS[result.kind](result)
    return result.reason or got or NOTHING_MEASURED, expected


NOTHING_MEASURED = "nothing: none of its runs finished"


def summary(statuses: pd.Series) -> str:
    """Claims' statuses counted, as the terminal and the report say them."""
    counts = statuses.value_counts()
    line = (f"{counts.get(ClaimStatus.REPRODUCED, 0)} of {len(statuses)} reproduced, "
            f"{counts.get(ClaimStatus.NOT_REPRODUCED, 0)} not reproduced, "
            f"{counts.get(ClaimStatus.NOT_RUN, 0)} not run")
    if counts.get(ClaimStatus.DOES_NOT_APPLY):
        line += f", {counts[ClaimStatus.DOES_NOT_APPLY]} do not apply (about other data)"
    return line


def _describe_threshold(r: ClaimResult) -> tuple[str, str]:
    got = f"{number(r.values[0])} ({r.reduce} of {r.count})" if r.values else ""
    return got, f"{r.op} {published(r.target[0])}"


def _tolerance(r: ClaimResult) -> str:
    if r.tolerance is not None:
        return f"± {published(r.tolerance)}"
    return f"± {number(100 * r.rel_tolerance)} %"


def _describe_approx(r: ClaimResult) -> tuple[str, str]:
    shown = [measured(v, allowed(r, t)) for v, t in zip(r.values, r.target)]
    if not r.along:
        got = f"{shown[0]} ({r.reduce} of {r.count})" if shown else ""
        return got, f"{published(r.target[0])} {_tolerance(r)}"
    expected = f"[{', '.join(map(published, r.target))}] {_tolerance(r)} along {r.along}"
    if not shown:
        return "", expected
    gaps = [abs(v - t) for v, t in zip(r.values, r.target)]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    got = (f"[{', '.join(shown)}]; largest gap {measured(gaps[worst], allowed(r, r.target[worst]))}"
           f" at {r.along} {r.at[worst]}")
    if len(r.values) < len(r.target):
        got += f"; {len(r.values)} of {len(r.target)} measured"
    return got, expected


def _describe_monotone(r: ClaimResult) -> tuple[str, str]:
    got = ", ".join(f"{r.along}={key}: {number(v)}" for key, v in zip(r.at, r.values))
    return got, f"{TRENDS[r.op]} along {r.along}"


def _describe_compare(r: ClaimResult) -> tuple[str, str]:
    by = r.along.split(",") if r.along else []
    scale = "" if r.factor == 1 else f"{published(r.factor)} × "
    expected = (f"{assignments(r.left.items(), ',') or 'all'} {r.op} {scale}"
                f"{assignments(r.right.items(), ',') or 'all'}")
    if by:
        expected += f" at every {', '.join(by)}"

    def at(key: tuple) -> str:
        return f"{assignments(zip(by, key), ',')}: " if by else ""

    keys = r.at or [()] * len(r.values)
    pairs = [f"{at(key)}{number(a)} vs {number(b)}"
             for key, a, b in zip(keys, r.values, r.right_values)]
    return "; ".join(pairs), expected


DESCRIPTIONS = {"threshold": _describe_threshold, "approx": _describe_approx,
                "monotone": _describe_monotone, "compare": _describe_compare}


# ---- claims.csv: one row per claim, numbers as numbers (lists as JSON) ----

def table(results: list[ClaimResult]) -> pd.DataFrame:
    """Results as a table, one row a claim, its cells the results' own values."""
    return pd.DataFrame([asdict(r) for r in results], columns=COLUMNS)


def results(claims: pd.DataFrame) -> list[ClaimResult]:
    """The rows of a claims table (read from claims.csv or not) as results."""
    return [_result(record) for record in claims.to_dict("records")]


def _result(record: dict) -> ClaimResult:
    found = dict(record)
    for name in JSON_COLUMNS:
        value = found[name]
        found[name] = _frozen(json.loads(value) if isinstance(value, str) else value)
    for name in OPTIONAL_NUMBERS:
        found[name] = None if _blank(found[name]) else float(found[name])
    found["op"] = None if _blank(found["op"]) else found["op"]
    found["status"] = ClaimStatus(found["status"])
    return ClaimResult(**found)


def _blank(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _frozen(value: object) -> object:
    """JSON's lists as the tuples a result holds; its objects stay dicts."""
    return tuple(map(_frozen, value)) if isinstance(value, list | tuple) else value


def read(path: Path) -> pd.DataFrame:
    """claims.csv as a table of results' values; empty if missing or written by an older dlrepro
    (other columns): its claims are evaluated afresh."""
    if not path.exists():
        return table([])
    found = pd.read_csv(path, keep_default_na=False, dtype=str)
    return table(results(found)) if list(found.columns) == COLUMNS else table([])


def csv_cells(claims: pd.DataFrame, json_columns: Iterable[str] = JSON_COLUMNS) -> pd.DataFrame:
    """A table of results' values as claims.csv holds them: lists and selections as JSON."""
    cells = claims.copy()
    for name in json_columns:
        cells[name] = cells[name].map(lambda value: json.dumps(value, ensure_ascii=False))
    return cells


def write(path: Path, evaluated: list[ClaimResult]) -> pd.DataFrame:
    """Replace the evaluated suites' rows of claims.csv, keep the other suites' rows."""
    return replace_suites(path, table(evaluated), read, csv_cells)


def replace_suites(path: Path, new: pd.DataFrame, read_old: Callable[[Path], pd.DataFrame],
                   cells: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """Write ``new`` over its suites' rows of a per-suite CSV (claims, fidelity), keeping the other
    suites'; ``cells`` turns the table into what the CSV holds."""
    old = read_old(path)
    kept = old[~old["suite"].isin(new["suite"])]
    table = pd.concat([kept, new], ignore_index=True) if len(kept) else new.reset_index(drop=True)
    atomic_write(path, lambda tmp: cells(table).to_csv(tmp, index=False))
    return table
