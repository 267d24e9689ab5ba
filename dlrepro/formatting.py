"""How numbers and parameter settings are written wherever dlrepro shows them."""

from __future__ import annotations

import math
from collections.abc import Iterable

from dlrepro.verdicts import ClaimStatus


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
    if not math.isfinite(tolerance):
        return number(float(value))
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


def no_results(suites: Iterable[str]) -> str:
    """Suites without a single run in a results folder: one line, not one per claim."""
    return f"{ClaimStatus.NOT_RUN}: {', '.join(suites)} — no results in this folder"
