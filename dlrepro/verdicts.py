"""The words of every verdict dlrepro gives, each defined once: a claim's status and the
regression gate's verdict on a value. Written as they read, so that a table (claims.csv,
check.csv) holds the same text the report and the terminal show.
"""

from __future__ import annotations

from enum import StrEnum


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
