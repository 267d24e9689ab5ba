"""How dlrepro writes what it shows: numbers, settings, and the words of every verdict (a claim's
status, the gate's verdict on a value, a claim's result), each defined once, so that a table
(claims.csv, check.csv) holds the text the report and the terminal show."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from dlrepro.claims import ClaimResult
    from dlrepro.schema import Approx


class ClaimStatus(StrEnum):
    """What a claim (or one published number of it) says about the runs."""

    REPRODUCED = "reproduced"
    NOT_REPRODUCED = "not reproduced"
    NOT_RUN = "not run"  # its runs are missing (failed, not run): never "not reproduced"
    DOES_NOT_APPLY = "does not apply"  # about other parameter values (a published MNIST number)
    OTHER_PROFILE = "other profile"  # a published number about another profile's settings


# The statuses of a claim whose runs gave a verdict.
MEASURED = (ClaimStatus.REPRODUCED, ClaimStatus.NOT_REPRODUCED)


class GateVerdict(StrEnum):
    """How one value of the results compares with its baseline (``dlrepro.regression``)."""

    UNCHANGED = "unchanged"
    INCONCLUSIVE = "inconclusive"
    IMPROVED = "improved"
    REGRESSED = "regressed"
    MISSING = "missing"
    NEW = "new"


def number(value: object, digits: int = 4) -> str:
    """A float to ``digits`` significant digits; anything else as it is."""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def published(value: float) -> str:
    """A number read from a suite file with its own digits: the shortest text that reads back as
    that float (161.24 as printed, not 161.2; 105506, not 1.055e+05)."""
    return repr(float(value)).removesuffix(".0")


def measured(value: float, tolerance: float) -> str:
    """A measured number with one decimal finer than the tolerance it is judged by (± 0.005: 4
    decimals), enough to see whether it is within; every digit when it must be exact, and no
    more digits than the number has (4, not 4.0000000000)."""
    if tolerance == 0 or not math.isfinite(value):
        return published(value)
    decimals = max(0, 1 - math.floor(math.log10(tolerance)))
    short = published(value)
    if "e" not in short and len(short.partition(".")[2]) <= decimals:
        return short
    return f"{value:.{decimals}f}"


def assignments(pairs: Iterable[tuple[str, object]], sep: str = ", ") -> str:
    """``name=value`` pairs, as a configuration is named in labels, claims and baselines."""
    return sep.join(f"{name}={value}" for name, value in pairs)


def table_cell(text: object) -> str:
    """Text for a Markdown table cell: pipes escaped, one line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def counted(n: int, noun: str) -> str:
    """``1 run``, ``9 runs``: a count with its noun, plural when it is not one."""
    return f"{n} {noun}{'s' * (n != 1)}"


def failure(error: str) -> str:
    """A failed run's traceback in one line: the error, and the innermost line of an experiment's
    code that raised it (the whole traceback is in runs.csv's ``error``)."""
    last = error.strip().splitlines()[-1]
    frames = re.findall(r'File "[^"]*?(dlrepro/experiments/[^"]+)", line (\d+)', error)
    return f"{last} ({frames[-1][0]}:{frames[-1][1]})" if frames else last


def no_results(suites: Iterable[str]) -> str:
    """Suites without a single run in a results folder: one line, not one per claim."""
    return f"{ClaimStatus.NOT_RUN}: {', '.join(suites)} — no results in this folder"


# ---- a claim's result in words (``claims.ClaimResult``) ----

# A monotone claim's relation between neighbours, in words.
TRENDS = {"<": "strictly increasing", "<=": "increasing", ">": "strictly decreasing",
          ">=": "decreasing"}


def allowed(expectation: Approx | ClaimResult, target: float) -> float:
    """The absolute gap an approx claim allows around ``target``."""
    if expectation.tolerance is not None:
        return expectation.tolerance
    return expectation.rel_tolerance * abs(target)


def describe(r: ClaimResult) -> tuple[str, str]:
    """What was measured and what was expected, as the terminal and the report write them."""
    if r.status is ClaimStatus.DOES_NOT_APPLY:
        return (assignments([(r.along, "/".join(map(str, r.at)))]),
                f"{assignments(r.applies.items())} only")
    if r.kind == "threshold":
        got = f"{number(r.values[0])} ({r.reduce} of {r.count})" if r.values else ""
        expected = f"{r.op} {published(r.target[0])}"
    elif r.kind == "approx":
        got, expected = _describe_approx(r)
    elif r.kind == "monotone":
        got = ", ".join(f"{r.along}={key}: {number(v)}" for key, v in zip(r.at, r.values))
        expected = f"{TRENDS[r.op]} along {r.along}" + (
            f" (a step back of at most {published(r.tolerance)} a tie)" if r.tolerance else "")
    else:
        got, expected = _describe_compare(r)
    return r.reason or got or "nothing: none of its runs finished", expected


def _describe_approx(r: ClaimResult) -> tuple[str, str]:
    shown = [measured(v, allowed(r, t)) for v, t in zip(r.values, r.target)]
    tolerance = (f"± {published(r.tolerance)}" if r.tolerance is not None
                 else f"± {number(100 * r.rel_tolerance)} %")
    if not r.along:
        got = f"{shown[0]} ({r.reduce} of {r.count})" if shown else ""
        return got, f"{published(r.target[0])} {tolerance}"
    expected = f"[{', '.join(map(published, r.target))}] {tolerance} along {r.along}"
    if not shown:
        return "", expected
    gaps = [abs(v - t) for v, t in zip(r.values, r.target)]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    got = (f"[{', '.join(shown)}]; largest gap {measured(gaps[worst], allowed(r, r.target[worst]))}"
           f" at {r.along} {r.at[worst]}")
    if len(r.values) < len(r.target):
        got += f"; {len(r.values)} of {len(r.target)} measured"
    return got, expected


def _describe_compare(r: ClaimResult) -> tuple[str, str]:
    by = r.along.split(",") if r.along else []
    scale = "" if r.factor == 1 else f"{published(r.factor)} × "
    expected = (f"{assignments(r.left.items(), ',') or 'all'} {r.op} {scale}"
                f"{assignments(r.right.items(), ',') or 'all'}")
    if by:
        expected += f" at every {', '.join(by)}"
    keys = r.at or [()] * len(r.values)
    pairs = [f"{assignments(zip(by, key), ',')}: " * bool(by) + f"{number(a)} vs {number(b)}"
             for key, a, b in zip(keys, r.values, r.right_values)]
    return "; ".join(pairs), expected


def summary(statuses: pd.Series) -> str:
    """Claims' statuses counted, as the terminal and the report say them."""
    counts = statuses.value_counts()
    line = (f"{counts.get(ClaimStatus.REPRODUCED, 0)} of {len(statuses)} reproduced, "
            f"{counts.get(ClaimStatus.NOT_REPRODUCED, 0)} not reproduced, "
            f"{counts.get(ClaimStatus.NOT_RUN, 0)} not run")
    if counts.get(ClaimStatus.DOES_NOT_APPLY):
        line += f", {counts[ClaimStatus.DOES_NOT_APPLY]} do not apply (about other data)"
    return line
