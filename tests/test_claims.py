"""Each claim kind against small hand-made tables: holds, fails, and not run."""

import math

import pandas as pd
import pytest
from pydantic import TypeAdapter

from dlrepro.claims import check as check_claim
from dlrepro.schema import Claim

claim = TypeAdapter(Claim).validate_python


def table(rows):
    """rows: (run_id, seed, H, model, metric, step, value)"""
    return pd.DataFrame(rows, columns=["run_id", "seed", "H", "model", "metric", "step", "value"]).astype({"step": "Int64"})


T = table([
    ("a", 0, 10, "cnn", "mse", None, 0.30), ("b", 1, 10, "cnn", "mse", None, 0.34),
    ("c", 0, 100, "cnn", "mse", None, 0.10), ("d", 0, 1000, "cnn", "mse", None, 0.01),
    ("e", 0, 10, "pca", "mse", None, 0.50), ("f", 0, 100, "pca", "mse", None, 0.40),
    ("g", 0, 1000, "pca", "mse", None, 0.02),
    ("a", 0, 10, "cnn", "loss", 1, 3.0), ("a", 0, 10, "cnn", "loss", 2, 2.0), ("a", 0, 10, "cnn", "loss", 3, 1.5),
])


def check(spec):
    return check_claim(claim(spec), T)[0]


def test_threshold():
    base = {"id": "t", "text": "", "kind": "threshold", "metric": "mse", "where": {"model": "cnn", "H": 10}}
    assert check({**base, "op": "<", "value": 0.33})            # mean 0.32
    assert not check({**base, "op": "<", "value": 0.33, "reduce": "max"})
    assert check({**base, "where": {"model": "rnn"}, "op": "<", "value": 1}) is None


def test_approx_scalar_and_along_steps():
    assert check({"id": "a", "text": "", "kind": "approx", "metric": "mse", "where": {"H": 1000, "model": "pca"},
                  "value": 0.0205, "tolerance": 0.001})
    assert not check({"id": "a", "text": "", "kind": "approx", "metric": "mse", "where": {"H": 1000, "model": "pca"},
                      "value": 0.03, "rel_tolerance": 0.1})
    steps = {"id": "s", "text": "", "kind": "approx", "metric": "loss", "over": "step", "tolerance": 0.11}
    assert check({**steps, "value": [3.1, 1.9, 1.5]})
    assert not check({**steps, "value": [3.1, 1.9, 1.2]})
    assert not check({**steps, "value": [3.1, 1.9]}), "a length mismatch is not a reproduction"


def test_approx_needs_one_tolerance():
    with pytest.raises(ValueError):
        claim({"id": "a", "text": "", "kind": "approx", "metric": "mse", "value": 1})


def test_monotone():
    base = {"id": "m", "text": "", "kind": "monotone", "metric": "mse", "over": "H"}
    assert check({**base, "where": {"model": "cnn"}, "direction": "decreasing"})
    assert not check({**base, "where": {"model": "cnn"}, "direction": "increasing"})
    assert check({**base, "metric": "loss", "over": "step", "direction": "decreasing"})


def test_compare_at_every_value_of_by():
    base = {"id": "c", "text": "", "kind": "compare", "metric": "mse", "left": {"model": "cnn"}, "right": {"model": "pca"}}
    assert check({**base, "op": "<", "by": ["H"]})
    assert not check({**base, "op": ">", "by": ["H"]})
    _, measured, _ = check_claim(claim({**base, "op": "<", "by": ["H"]}), T)
    assert "H=10: 0.32 vs 0.5" in measured


def test_nan_is_not_reproduced():
    t = table([("a", 0, 10, "cnn", "epochs", None, math.nan)])
    assert check_claim(claim({"id": "n", "text": "", "kind": "threshold", "metric": "epochs", "op": "<", "value": 5}), t)[0] is False


def test_every_kind_on_an_empty_table_is_not_run():
    empty = pd.DataFrame(columns=["run_id", "metric", "step", "value"])
    for spec in ({"kind": "threshold", "op": "<", "value": 1}, {"kind": "approx", "value": 1, "tolerance": 1},
                 {"kind": "approx", "value": [1, 2], "over": "H", "tolerance": 1},
                 {"kind": "monotone", "over": "H", "direction": "increasing"},
                 {"kind": "compare", "left": {"model": "a"}, "right": {"model": "b"}, "op": "<", "by": ["H"]}):
        assert check_claim(claim({"id": "e", "text": "", "metric": "mse", **spec}), empty)[0] is None, spec


def test_compare_with_a_factor():
    base = {"id": "c", "text": "", "kind": "compare", "metric": "mse", "left": {"model": "cnn", "H": 1000},
            "right": {"model": "cnn", "H": 100}, "op": "<="}
    assert check({**base, "factor": 0.1})       # 0.01 <= 0.1 × 0.10
    assert not check({**base, "factor": 0.05})  # 0.01 > 0.005
    assert "0.05 × " in check_claim(claim({**base, "factor": 0.05}), T)[2]


def test_worst_takes_the_run_farthest_from_the_value():
    base = {"id": "w", "text": "", "kind": "approx", "metric": "mse", "where": {"model": "cnn", "H": 10},
            "tolerance": 0.025}
    assert check({**base, "value": 0.32})                       # mean 0.32 is on the value
    assert check({**base, "value": 0.32, "reduce": "worst"})       # 0.30 and 0.34: each 0.02 off
    assert not check({**base, "value": 0.31, "reduce": "worst"})   # 0.34 is 0.03 off, though the mean is not
    assert check({**base, "value": 0.31})


def test_worst_is_for_approx_claims_only():
    with pytest.raises(ValueError, match="approx"):
        claim({"id": "w", "text": "", "kind": "threshold", "metric": "mse", "op": "<", "value": 1, "reduce": "worst"})


def test_a_claim_about_other_data_does_not_apply_and_says_what_ran():
    from dlrepro.claims import outside

    anchored = claim({"id": "t", "text": "", "kind": "threshold", "metric": "mse", "applies": {"model": "rnn"},
                      "op": "<", "value": 1})
    assert outside(anchored, T) == "model=cnn/pca" and check_claim(anchored, T)[0] is None
    mixed = claim({"id": "t", "text": "", "kind": "threshold", "metric": "mse", "applies": {"model": "pca"},
                   "where": {"H": 1000}, "op": ">", "value": 0.015})
    assert outside(mixed, T) == "" and check_claim(mixed, T)[0]  # only pca counts: 0.02, not the mean 0.015 with cnn
    assert outside(anchored, T.iloc[0:0]) == ""  # nothing ran: "not run", not "does not apply"
