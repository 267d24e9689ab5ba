"""The slides' claims (``dlrepro.schema``) evaluated against the result tables, into
``ClaimResult``s: numbers, which ``formatting.describe`` writes out and claims.csv keeps (lists as
JSON). The kinds and their keys are docs/suite-files.md's. A claim whose runs are missing is ``not
run``, never ``not reproduced``; so is one that, on a side, spans values that ``--set`` swept."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Annotated

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict

from dlrepro import tables
from dlrepro.overrides import flags
from dlrepro.schema import Approx, ClaimBase, Compare, Monotone, Threshold, choices
from dlrepro.suite import RunSpec, Suite, matches
from dlrepro.formatting import ClaimStatus, allowed, assignments, counted

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq}
# A monotone claim as the relation every value has with the next one along its axis.
MONOTONE_OPS = {("increasing", True): "<", ("increasing", False): "<=",
                ("decreasing", True): ">", ("decreasing", False): ">="}


def _frozen(value: object) -> object:
    """Lists, at any depth, as the tuples a result holds; objects stay dicts."""
    return tuple(map(_frozen, value)) if isinstance(value, list | tuple) else value


def empty_cell(value: object) -> bool:
    """Whether a table's cell is empty, as read from a CSV file or not."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


# claims.csv's cells: lists and selections as JSON; empty, a number or op the kind does not have.
Json = BeforeValidator(lambda v: _frozen(json.loads(v) if isinstance(v, str) else v))
Blank = BeforeValidator(lambda v: None if empty_cell(v) else v)
Numbers, MaybeNumber = Annotated[tuple[float, ...], Json], Annotated[float | None, Blank]


class ClaimResult(BaseModel):
    """One claim's status, the numbers it rests on, and what was expected, as numbers; read from
    its own values or from the cells of claims.csv."""

    model_config = ConfigDict(frozen=True)

    suite: str
    claim: str
    text: str
    kind: str  # the claim's kind: threshold, approx, monotone, compare
    status: ClaimStatus
    reduce: str = "mean"
    along: str = ""  # the parameter(s) of the elements: over, or by joined with ","
    at: Annotated[tuple, Json] = ()  # each element's `along`; does not apply: the values run
    values: Numbers = ()  # each element reduced; compare: the left side
    samples: Annotated[tuple[tuple[float, ...], ...], Json] = ()  # each element's, a run each
    right_values: Numbers = ()  # compare: the right side reduced, at the same `at`
    op: Annotated[str | None, Blank] = None  # threshold, compare; monotone: each value vs next
    target: Numbers = ()  # threshold, approx: the value, or one per element
    tolerance: MaybeNumber = None  # approx: absolute; monotone: the step back taken as a tie
    rel_tolerance: MaybeNumber = None  # approx: relative to each target
    factor: MaybeNumber = None  # compare: left op factor × right
    left: Annotated[dict, Json] = {}  # compare: the two selections
    right: Annotated[dict, Json] = {}
    applies: Annotated[dict, Json] = {}  # the parameter values the claim is about
    reason: str = ""  # why it is not run: runs missing, a sweep it does not fix

    @property
    def count(self) -> int:
        """How many values were reduced (the left side's, for a comparison)."""
        return sum(map(len, self.samples))


COLUMNS = list(ClaimResult.model_fields)


def evaluate(suite: Suite, table: pd.DataFrame, profile: str,
             not_run: Mapping[str, str] = {}) -> list[ClaimResult]:
    """Each claim of a suite that applies at ``profile`` against its ``tables.joined`` table;
    ``not_run``: ``tables.not_run``'s reasons."""
    source = f"{suite.model.source.seed}, «{suite.model.source.slide}»"
    return [check(claim, table, suite.name, f"{claim.text} ({claim.source or source})",
                  suite.swept, suite.runs(profile), not_run)
            for claim in suite.model.claims if claim.at(profile)]


def check(claim: ClaimBase, table: pd.DataFrame, suite: str = "", text: str | None = None,
          swept: Iterable[str] = (), planned: Sequence[RunSpec] = (),
          not_run: Mapping[str, str] = {}) -> ClaimResult:
    """One claim against a joined table; ``swept``: the parameters ``--set`` swept, which the
    claim must fix (or read along) on each side to give a verdict; ``planned``: the runs the
    profile has (a claim waits for every one of them it selects); ``not_run``: why runs were
    left out, by run_id (their data set is not there)."""
    axis = _axis(claim) or ""
    found = {"along": ",".join(axis) if isinstance(axis, list) else axis}
    status, ran = ClaimStatus.NOT_RUN, outside(claim, table)
    sides = [select(claim, table, where) for where in claim.selections().values()]
    reason = "" if ran else _missing(claim, table, planned, not_run) or _spread(claim, sides,
                                                                               swept)
    if ran:
        found, status = {"along": ran[0], "at": ran[1]}, ClaimStatus.DOES_NOT_APPLY
    elif not reason:
        holds, measured = _measure(claim, sides)
        found |= measured
        status = {True: ClaimStatus.REPRODUCED, False: ClaimStatus.NOT_REPRODUCED,
                  None: ClaimStatus.NOT_RUN}[holds]
    return ClaimResult(suite=suite, claim=claim.id, text=claim.text if text is None else text,
                       kind=claim.kind, status=status, reduce=claim.reduce, reason=reason,
                       **found, **_expectation(claim))


def _values(rows: pd.DataFrame, key: str) -> list:
    """The values a parameter takes in ``rows``, in order, as plain Python."""
    return [_plain(value) for value in sorted(rows[key].dropna().unique())] if key in rows else []


def _spread(claim: ClaimBase, sides: list[pd.DataFrame], swept: Iterable[str]) -> str:
    """Why a side of the claim reduces together (not along its ``over`` or ``by``) runs of several
    values of swept parameters, with an ``--only`` of a value every side ran with; else empty."""
    read_along = {name for names in claim.axes().values() for name in names}
    spread = {name: [set(_values(rows, name)) for rows in sides]
              for name in swept if name not in read_along}
    spread = {name: seen for name, seen in spread.items() if max(map(len, seen)) > 1}
    if not spread:
        return ""
    ran = {name: sorted(set.union(*seen)) for name, seen in spread.items()}
    shown = assignments((name, "/".join(map(str, values))) for name, values in ran.items())
    fix = " ".join(flags([], [(name, min(set.intersection(*seen) or ran[name]))
                              for name, seen in spread.items()]))
    return (f"selects {math.prod(map(len, ran.values()))} configurations ({shown}) where --set "
            f"swept {'/'.join(spread)}: fix it with {fix}")


def _missing(claim: ClaimBase, table: pd.DataFrame, planned: Sequence[RunSpec],
             not_run: Mapping[str, str]) -> str:
    """Why the runs a claim selects are not all here, else empty: a value a side selects that no
    planned run has, the data set some lack, or the planned runs the tables lack, named
    (docs/suite-files.md)."""
    ran, logged = set(table["run_id"]), set(table.loc[table["metric"] == claim.metric, "run_id"])
    # A mode (the parameters a run has) whose finished runs log nothing of the claim's metric.
    modes = {spec.run_id: frozenset(spec.params) for spec in planned if spec.run_id in ran}
    silent = set(modes.values()) - {modes[run_id] for run_id in logged & modes.keys()}
    selected = {}
    for where in claim.selections().values():
        side = {spec.run_id: spec for spec in planned if matches(spec.params, where)}
        for key, value in where.items() if not side and ran else ():
            seen = _values(table, key)
            if not set(seen) & set(choices(value)):
                ran_with = "/".join(map(str, seen)) or "none"
                return f"no run here has {key}={value} (its runs have {key}={ran_with})"
        selected |= {run_id: spec for run_id, spec in side.items()
                     if frozenset(spec.params) not in silent}
    missing = [spec.label for run_id, spec in selected.items() if run_id not in ran]
    absent = dict.fromkeys(not_run[run_id] for run_id in selected if run_id in not_run)
    if absent:  # rerunning alone does not finish it
        return "; ".join(absent)
    shown = ", ".join(missing[:3]) + ", …" * (len(missing) > 3)
    return "" if not missing else (f"{len(missing)} of {counted(len(selected), 'planned run')} "
                                   f"missing: {shown}; rerunning the same dlrepro run finishes it")


def outside(claim: ClaimBase, table: pd.DataFrame) -> tuple[str, tuple[str, ...]] | None:
    """The parameter and the values the claim's metric ran with, when none is the value the claim
    ``applies`` to (``dataset``: fashion_mnist); None when it applies or nothing ran."""
    rows = table[table["metric"] == claim.metric]
    for key, value in claim.applies.items():
        seen = sorted(map(str, _values(rows, key)))
        if seen and str(value) not in seen:
            return key, tuple(seen)
    return None


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


def _axis(claim: ClaimBase) -> str | list[str] | None:
    """What a claim's elements are along: ``over`` (a parameter or step), ``by``, or nothing."""
    return (claim.by or None) if isinstance(claim, Compare) else getattr(claim, "over", None)


def _plain(key: object) -> object:
    """A key as plain Python (numpy's numbers are not JSON)."""
    if isinstance(key, tuple):
        return tuple(map(_plain, key))
    return key.item() if hasattr(key, "item") else key


def _elements(rows: pd.DataFrame, axis: str | list[str] | None) -> dict[object, pd.Series]:
    """The selected values per element: one, or one per value of ``axis`` in order."""
    if rows.empty:  # nothing run: the parameter's column may not even exist
        return {}
    if axis is None:
        return {None: rows["value"]}
    return {_plain(key): group["value"] for key, group in rows.groupby(axis, sort=True)}


def reduced(reduce: str, values: pd.Series, target: float) -> float:
    """The selected values reduced as the claim says; ``worst``: the one farthest from
    ``target``."""
    if reduce == "worst":
        return float(values.iloc[int((values - target).abs().argmax())])
    return float(values.agg(reduce))


def _measure(claim: ClaimBase, sides: list[pd.DataFrame]) -> tuple[bool | None, dict]:
    """Whether the claim holds (None: it cannot tell) and what it measured from each side's rows,
    at the keys both have; an approx claim's i-th number is about the i-th smallest ``over``."""
    axis = _axis(claim)
    sides = [_elements(rows, axis) for rows in sides]
    left, right = sides[0], sides[-1]
    keys = [key for key in left if key in right]
    targets = choices(claim.value) if isinstance(claim, Approx) else [math.nan] * len(keys)
    keys = keys[:len(targets)]
    got = tuple(reduced(claim.reduce, left[key], target) for key, target in zip(keys, targets))
    against = tuple(float(right[key].agg(claim.reduce)) for key in keys) if len(sides) > 1 else ()
    found = {"at": tuple(keys) if axis else (), "values": got,
             "samples": tuple(tuple(map(float, left[key])) for key in keys),
             "right_values": against}
    if not keys:
        return None, found
    if isinstance(claim, Approx):
        return len(left) == len(targets) and all(
            abs(value - target) <= allowed(claim, target) for value, target in zip(got, targets)
        ), found
    if isinstance(claim, Monotone):
        op = MONOTONE_OPS[claim.direction, claim.strict]
        back = (claim.tolerance or 0.0) * (1 if claim.direction == "increasing" else -1)
        return (all(OPS[op](a - back, b) for a, b in pairwise(got)) if len(got) >= 2
                else None), found
    if isinstance(claim, Compare):
        return all(OPS[claim.op](a, claim.factor * b) for a, b in zip(got, against)), found
    return OPS[claim.op](got[0], claim.value), found


def _expectation(claim: ClaimBase) -> dict:
    """What the claim expects, as numbers (a comparison: with its two selections)."""
    found = claim.model_dump(include={"op", "tolerance", "rel_tolerance", "factor", "left",
                                      "right", "applies"})
    if isinstance(claim, Monotone):
        found["op"] = MONOTONE_OPS[claim.direction, claim.strict]
    if isinstance(claim, Threshold | Approx):
        found["target"] = choices(claim.value)
    return found


# ---- claims.csv: one row per claim, numbers as numbers (lists as JSON) ----

def table(results: list[ClaimResult]) -> pd.DataFrame:
    """Results as a table, one row a claim, its cells the results' own values."""
    return pd.DataFrame([r.model_dump() for r in results], columns=COLUMNS)


def results(claims: pd.DataFrame) -> list[ClaimResult]:
    """The rows of a claims table (read from claims.csv or not) as results."""
    return [ClaimResult.model_validate(record) for record in claims.to_dict("records")]


def read(path: Path) -> pd.DataFrame:
    """claims.csv as a table of results' values; empty if missing or of other columns (an older
    dlrepro's)."""
    found = pd.read_csv(path, keep_default_na=False, dtype=str) if path.exists() else None
    current = found is not None and list(found.columns) == COLUMNS
    return table(results(found) if current else [])


def csv_cells(claims: pd.DataFrame) -> pd.DataFrame:
    """A table of results' values as claims.csv holds them: lists and selections as JSON."""
    return claims.map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, tuple | dict)
                      else v)


def write(path: Path, evaluated: list[ClaimResult]) -> pd.DataFrame:
    """Replace the evaluated suites' rows of claims.csv, keep the other suites' rows."""
    found = tables.replaced(read(path), table(evaluated))
    tables.write_csv(path, csv_cells(found))
    return found
