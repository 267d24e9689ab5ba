"""The slides' claims as declarative checks, and their evaluation against the result tables.

Every claim selects rows of one metric (``where`` fixes parameters, ``step`` picks final values,
the last step or one step), reduces them over seeds with ``reduce``, and tests them. The kinds:

- ``threshold``: the reduced value compared with a number (``op``: <, <=, >, >=, ==).
- ``approx``: the reduced value within ``tolerance`` (absolute) or ``rel_tolerance`` of ``value``;
  with a list ``value`` and ``over`` (a parameter or ``step``), elementwise along that axis.
- ``monotone``: the reduced value ordered along ``over`` (``direction`` increasing or decreasing,
  ``strict`` by default).
- ``compare``: the ``left`` selection against the ``right`` one with ``op``, at every value of the
  parameters in ``by`` (e.g. the CNN beats PCA at every d).
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dlrepro.store import atomic_write

Scalar = bool | int | float | str
Op = Literal["<", "<=", ">", ">=", "=="]
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
STATUSES = ("reproduced", "not reproduced", "not run")


class _ClaimBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    text: str = Field(description="the slide's words")
    source: str = Field("", description="where the words are, when not the suite's own source")
    metric: str
    where: dict[str, Scalar] = {}
    step: int | Literal["last"] | None = Field(None, description="None: the run's final value (no step)")
    reduce: Literal["mean", "median", "min", "max"] = "mean"
    profiles: list[Literal["smoke", "quick", "full"]] | None = Field(
        None, description="the profiles whose settings the claim is about (e.g. the paper's epochs: full); default all")

    def metrics(self) -> list[str]:
        return [self.metric]

    def parameters(self) -> list[str]:
        return list(self.where)

    def _select(self, table: pd.DataFrame, where: dict | None = None) -> pd.DataFrame:
        rows = table[table["metric"] == self.metric]
        for key, value in {**self.where, **(where or {})}.items():
            rows = rows[rows[key] == value] if key in rows else rows.iloc[0:0]
        if self.step is None and getattr(self, "over", None) != "step":
            return rows[rows["step"].isna()]
        rows = rows[rows["step"].notna()]
        if self.step == "last":
            return rows[rows["step"] == rows.groupby("run_id")["step"].transform("max")]
        return rows if self.step is None else rows[rows["step"] == self.step]

    def _along(self, rows: pd.DataFrame, axis: str) -> pd.Series:
        if rows.empty:  # nothing run: the parameter's column may not even exist
            return pd.Series(dtype=float)
        return rows.groupby(axis)["value"].agg(self.reduce).sort_index()


class Threshold(_ClaimBase):
    kind: Literal["threshold"]
    op: Op
    value: float

    def check(self, table: pd.DataFrame) -> tuple[bool | None, str, str]:
        rows = self._select(table)
        if rows.empty:
            return None, "", f"{self.reduce} {self.op} {_fmt(self.value)}"
        got = rows["value"].agg(self.reduce)
        return bool(OPS[self.op](got, self.value)), f"{_fmt(got)} ({self.reduce} of {len(rows)})", \
            f"{self.op} {_fmt(self.value)}"


class Approx(_ClaimBase):
    kind: Literal["approx"]
    value: float | list[float]
    tolerance: float | None = Field(None, ge=0)
    rel_tolerance: float | None = Field(None, ge=0)
    over: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> "Approx":
        if (self.tolerance is None) == (self.rel_tolerance is None):
            raise ValueError("give exactly one of tolerance and rel_tolerance")
        if isinstance(self.value, list) != (self.over is not None):
            raise ValueError("a list value needs 'over' (a parameter or 'step'), and 'over' needs a list value")
        return self

    def parameters(self) -> list[str]:
        return super().parameters() + ([self.over] if self.over not in (None, "step") else [])

    def _tolerance(self, target: float) -> float:
        return self.tolerance if self.tolerance is not None else self.rel_tolerance * abs(target)

    def check(self, table: pd.DataFrame) -> tuple[bool | None, str, str]:
        rows = self._select(table)
        tol = f"± {_fmt(self.tolerance)}" if self.tolerance is not None else f"± {_fmt(100 * self.rel_tolerance)} %"
        if self.over is None:
            expected = f"{_fmt(self.value)} {tol}"
            if rows.empty:
                return None, "", expected
            got = rows["value"].agg(self.reduce)
            return bool(abs(got - self.value) <= self._tolerance(self.value)), _fmt(got), expected
        expected = f"[{', '.join(_fmt(v) for v in self.value)}] {tol} along {self.over}"
        got = self._along(rows, self.over)
        if got.empty:
            return None, "", expected
        gaps = [abs(g - v) for g, v in zip(got, self.value)]
        worst = max(range(len(gaps)), key=lambda i: gaps[i])
        measured = f"[{', '.join(_fmt(g) for g in got)}]; largest gap {_fmt(gaps[worst])} at {self.over} {got.index[worst]}"
        holds = len(got) == len(self.value) and all(g <= self._tolerance(v) for g, v in zip(gaps, self.value))
        return holds, measured, expected


class Monotone(_ClaimBase):
    kind: Literal["monotone"]
    over: str
    direction: Literal["increasing", "decreasing"]
    strict: bool = True

    def parameters(self) -> list[str]:
        return super().parameters() + ([self.over] if self.over != "step" else [])

    def check(self, table: pd.DataFrame) -> tuple[bool | None, str, str]:
        got = self._along(self._select(table), self.over)
        expected = f"{'strictly ' if self.strict else ''}{self.direction} along {self.over}"
        if len(got) < 2:
            return None, _series(got, self.over), expected
        steps = got.diff().iloc[1:]
        if self.direction == "decreasing":
            steps = -steps
        holds = bool((steps > 0).all() if self.strict else (steps >= 0).all())
        return holds, _series(got, self.over), expected


class Compare(_ClaimBase):
    kind: Literal["compare"]
    left: dict[str, Scalar]
    right: dict[str, Scalar]
    op: Op
    by: list[str] = []

    def parameters(self) -> list[str]:
        return super().parameters() + list(self.left) + list(self.right) + self.by

    def check(self, table: pd.DataFrame) -> tuple[bool | None, str, str]:
        def side(where):
            rows = self._select(table, where)
            if rows.empty:
                return pd.Series(dtype=float)
            return rows.groupby(self.by)["value"].agg(self.reduce) if self.by else \
                pd.Series([rows["value"].agg(self.reduce)] if len(rows) else [], dtype=float)

        left, right = side(self.left).align(side(self.right), join="inner")
        expected = f"{_where(self.left)} {self.op} {_where(self.right)}" + (f" at every {', '.join(self.by)}" if self.by else "")
        if left.empty:
            return None, "", expected
        pairs = [f"{_key(self.by, k)}{_fmt(a)} vs {_fmt(b)}" for k, a, b in zip(left.index, left, right)]
        return bool(OPS[self.op](left, right).all()), "; ".join(pairs), expected


Claim = Annotated[Threshold | Approx | Monotone | Compare, Field(discriminator="kind")]


@dataclass(frozen=True)
class ClaimResult:
    suite: str
    claim: str
    text: str
    status: str
    measured: str
    expected: str


def evaluate(suite, table: pd.DataFrame, profile: str) -> list[ClaimResult]:
    """Each claim of a suite that applies at ``profile`` against its joined table (metrics of
    successful runs with their parameters)."""
    source = f"{suite.model.source.seed}, «{suite.model.source.slide}»"
    results = []
    for claim in suite.model.claims:
        if claim.profiles is not None and profile not in claim.profiles:
            continue
        holds, measured, expected = claim.check(table)
        status = "not run" if holds is None else ("reproduced" if holds else "not reproduced")
        results.append(ClaimResult(suite.name, claim.id, f"{claim.text} ({claim.source or source})",
                                   status, measured, expected))
    return results


def write(path: Path, results: list[ClaimResult]) -> pd.DataFrame:
    """Replace the evaluated suites' rows of claims.csv, keep the other suites' rows."""
    new = pd.DataFrame([asdict(r) for r in results], columns=[f.name for f in fields(ClaimResult)])
    old = pd.read_csv(path, keep_default_na=False) if path.exists() else new.iloc[0:0]
    table = pd.concat([old[~old["suite"].isin(new["suite"])], new], ignore_index=True)
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    return table


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _series(values: pd.Series, axis: str) -> str:
    return ", ".join(f"{axis}={k}: {_fmt(float(v))}" for k, v in values.items())


def _where(where: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in where.items()) or "all"


def _key(by: list[str], key) -> str:
    if not by:
        return ""
    values = key if isinstance(key, tuple) else (key,)
    return ",".join(f"{b}={v}" for b, v in zip(by, values)) + ": "
