"""How numbers and parameter settings are written wherever dlrepro shows them."""

from __future__ import annotations

from collections.abc import Iterable


def number(value: object, digits: int = 4) -> str:
    """A float to ``digits`` significant digits; anything else as it is."""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def assignments(pairs: Iterable[tuple[str, object]], sep: str = ", ") -> str:
    """``name=value`` pairs, as a configuration is named in labels, claims and baselines."""
    return sep.join(f"{name}={value}" for name, value in pairs)


def table_cell(text: object) -> str:
    """Text for a Markdown table cell: pipes escaped, one line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def counted(n: int, noun: str) -> str:
    """``1 run``, ``9 runs``: a count with its noun, plural when it is not one."""
    return f"{n} {noun}{'s' * (n != 1)}"
