"""Each claim kind against small hand-made tables: holds, fails, and not run; results as numbers,
written out in one place, and read back from claims.csv with their statuses typed."""

import math
import re
from pathlib import Path

import pandas as pd
import pytest
from pydantic import TypeAdapter

from dlrepro import claims
from dlrepro.claims import check as check_claim
from dlrepro.formatting import describe
from dlrepro.formatting import measured, published
from dlrepro.schema import Claim
from dlrepro.formatting import ClaimStatus, GateVerdict

claim = TypeAdapter(Claim).validate_python
HOLDS = {ClaimStatus.REPRODUCED: True, ClaimStatus.NOT_REPRODUCED: False, ClaimStatus.NOT_RUN: None}


def holds(result: claims.ClaimResult) -> bool | None:
    return HOLDS[result.status]


def table(rows):
    """rows: (run_id, seed, H, model, metric, step, value)"""
    columns = ["run_id", "seed", "H", "model", "metric", "step", "value"]
    return pd.DataFrame(rows, columns=columns).astype({"step": "Int64"})


T = table([
    ("a", 0, 10, "cnn", "mse", None, 0.30), ("b", 1, 10, "cnn", "mse", None, 0.34),
    ("c", 0, 100, "cnn", "mse", None, 0.10), ("d", 0, 1000, "cnn", "mse", None, 0.01),
    ("e", 0, 10, "pca", "mse", None, 0.50), ("f", 0, 100, "pca", "mse", None, 0.40),
    ("g", 0, 1000, "pca", "mse", None, 0.02),
    ("a", 0, 10, "cnn", "loss", 1, 3.0), ("a", 0, 10, "cnn", "loss", 2, 2.0),
    ("a", 0, 10, "cnn", "loss", 3, 1.5),
])


def check(spec):
    return holds(check_claim(claim(spec), T))


def test_threshold():
    base = {"id": "t", "text": "", "kind": "threshold", "metric": "mse",
            "where": {"model": "cnn", "H": 10}}
    assert check({**base, "op": "<", "value": 0.33})            # mean 0.32
    assert not check({**base, "op": "<", "value": 0.33, "reduce": "max"})
    assert check({**base, "where": {"model": "rnn"}, "op": "<", "value": 1}) is None


def test_approx_scalar_and_along_steps():
    pca = {"id": "a", "text": "", "kind": "approx", "metric": "mse",
           "where": {"H": 1000, "model": "pca"}}
    assert check({**pca, "value": 0.0205, "tolerance": 0.001})
    assert not check({**pca, "value": 0.03, "rel_tolerance": 0.1})
    steps = {"id": "s", "text": "", "kind": "approx", "metric": "loss", "over": "step",
             "tolerance": 0.11}
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


def test_a_monotone_tolerance_takes_a_small_step_back_as_a_tie():
    """mse of the CNN along H: 0.32, 0.10, 0.01, steps back of 0.22 and 0.09 if increasing."""
    rising = {"id": "m", "text": "", "kind": "monotone", "metric": "mse", "over": "H",
              "where": {"model": "cnn"}, "direction": "increasing", "strict": False}
    assert check({**rising, "tolerance": 0.25})
    assert not check({**rising, "tolerance": 0.2})
    falling = {**rising, "direction": "decreasing", "metric": "loss", "over": "step", "where": {}}
    bump = table([("a", 0, 10, "cnn", "loss", 1, 3.0), ("a", 0, 10, "cnn", "loss", 2, 3.1)])
    assert holds(check_claim(claim({**falling, "tolerance": 0.2}), bump))
    assert not holds(check_claim(claim({**falling, "tolerance": 0.05}), bump))
    result = check_claim(claim({**rising, "tolerance": 0.25}), T)
    assert describe(result)[1] == "increasing along H (a step back of at most 0.25 a tie)"


def test_compare_at_every_value_of_by():
    base = {"id": "c", "text": "", "kind": "compare", "metric": "mse", "left": {"model": "cnn"},
            "right": {"model": "pca"}}
    assert check({**base, "op": "<", "by": ["H"]})
    assert not check({**base, "op": ">", "by": ["H"]})
    result = check_claim(claim({**base, "op": "<", "by": ["H"]}), T)
    assert result.along == "H" and result.at == ((10,), (100,), (1000,))
    assert result.values == pytest.approx((0.32, 0.10, 0.01)) and result.right_values[0] == 0.5
    assert "H=10: 0.32 vs 0.5" in describe(result)[0]


def test_nan_is_not_reproduced():
    t = table([("a", 0, 10, "cnn", "epochs", None, math.nan)])
    nan = claim({"id": "n", "text": "", "kind": "threshold", "metric": "epochs", "op": "<",
                 "value": 5})
    assert check_claim(nan, t).status is ClaimStatus.NOT_REPRODUCED


def test_every_kind_on_an_empty_table_is_not_run():
    empty = pd.DataFrame(columns=["run_id", "metric", "step", "value"])
    for spec in ({"kind": "threshold", "op": "<", "value": 1},
                 {"kind": "approx", "value": 1, "tolerance": 1},
                 {"kind": "approx", "value": [1, 2], "over": "H", "tolerance": 1},
                 {"kind": "monotone", "over": "H", "direction": "increasing"},
                 {"kind": "compare", "left": {"model": "a"}, "right": {"model": "b"}, "op": "<",
                  "by": ["H"]}):
        result = check_claim(claim({"id": "e", "text": "", "metric": "mse", **spec}), empty)
        assert result.status is ClaimStatus.NOT_RUN, spec


def test_compare_with_a_factor():
    base = {"id": "c", "text": "", "kind": "compare", "metric": "mse",
            "left": {"model": "cnn", "H": 1000},
            "right": {"model": "cnn", "H": 100}, "op": "<="}
    assert check({**base, "factor": 0.1})       # 0.01 <= 0.1 × 0.10
    assert not check({**base, "factor": 0.05})  # 0.01 > 0.005
    assert "0.05 × " in describe(check_claim(claim({**base, "factor": 0.05}), T))[1]


def test_worst_takes_the_run_farthest_from_the_value():
    base = {"id": "w", "text": "", "kind": "approx", "metric": "mse",
            "where": {"model": "cnn", "H": 10},
            "tolerance": 0.025}
    assert check({**base, "value": 0.32})                       # mean 0.32 is on the value
    assert check({**base, "value": 0.32, "reduce": "worst"})       # 0.30 and 0.34: each 0.02 off
    # 0.34 is 0.03 off, though the mean is not:
    assert not check({**base, "value": 0.31, "reduce": "worst"})
    assert check({**base, "value": 0.31})


def test_worst_is_for_approx_claims_only():
    with pytest.raises(ValueError, match="approx"):
        claim({"id": "w", "text": "", "kind": "threshold", "metric": "mse", "op": "<", "value": 1,
               "reduce": "worst"})


def test_a_claim_about_other_data_does_not_apply_and_says_what_ran():
    from dlrepro.claims import outside

    anchored = claim({"id": "t", "text": "", "kind": "threshold", "metric": "mse",
                      "applies": {"model": "rnn"},
                      "op": "<", "value": 1})
    assert outside(anchored, T) == ("model", ("cnn", "pca"))
    result = check_claim(anchored, T)
    assert result.status is ClaimStatus.DOES_NOT_APPLY
    assert describe(result) == ("model=cnn/pca", "model=rnn only")
    mixed = claim({"id": "t", "text": "", "kind": "threshold", "metric": "mse",
                   "applies": {"model": "pca"},
                   "where": {"H": 1000}, "op": ">", "value": 0.015})
    assert outside(mixed, T) is None  # only pca counts: 0.02, not the mean 0.015 with cnn
    assert check_claim(mixed, T).status is ClaimStatus.REPRODUCED
    assert outside(anchored, T.iloc[0:0]) is None  # nothing ran: not run, not "does not apply"


def test_a_result_holds_numbers_and_claims_csv_reads_back_into_them(tmp_path):
    steps = claim({"id": "s", "text": "", "kind": "approx", "metric": "loss", "over": "step",
                   "tolerance": 0.11, "value": [3.1, 1.9, 1.5]})
    threshold = claim({"id": "t", "text": "", "kind": "threshold", "metric": "mse",
                       "where": {"model": "cnn", "H": 10}, "op": "<", "value": 0.33})
    compared = claim({"id": "c", "text": "", "kind": "compare", "metric": "mse", "op": "<",
                      "left": {"model": "cnn"}, "right": {"model": "pca"}, "by": ["H"]})
    found = [check_claim(c, T, "s") for c in (steps, threshold, compared)]
    assert found[0].values == (3.0, 2.0, 1.5) and found[0].at == (1, 2, 3)
    assert found[0].target == (3.1, 1.9, 1.5) and found[0].tolerance == 0.11
    assert found[1].values == pytest.approx((0.32,)) and found[1].count == 2
    assert found[1].op == "<" and found[1].target == (0.33,)
    written = claims.write(tmp_path / "claims.csv", found)
    back = claims.results(claims.read(tmp_path / "claims.csv"))
    assert back == found == claims.results(written)
    assert all(type(r.status) is ClaimStatus for r in back)
    text = pd.read_csv(tmp_path / "claims.csv", keep_default_na=False)
    assert text["values"][0] == "[3.0, 2.0, 1.5]" and text["at"][2] == "[[10], [100], [1000]]"


def test_published_numbers_keep_their_own_digits_and_measured_ones_the_tolerance_s():
    assert published(161.24) == "161.24" and published(105506.0) == "105506"
    assert published(3.87e10) == "38700000000"
    assert measured(161.2449, 0.5) == "161.24"  # ± 0.5: one decimal finer than the tolerance
    assert measured(0.467212, 0.005) == "0.4672" and measured(0.4672, 0.001) == "0.4672"
    assert measured(11274.0, 0) == "11274"  # exact: every digit
    assert measured(4.0, 1e-9) == "4" and measured(0.25, 1e-3) == "0.25"  # no digit it lacks
    loss = claim({"id": "l", "text": "", "kind": "approx", "metric": "loss", "over": "step",
                  "tolerance": 0.5, "value": [161.24, 4.41]})
    curve = table([("a", 0, 10, "cnn", "loss", 1, 161.3111), ("a", 0, 10, "cnn", "loss", 2, 4.4)])
    got, expected = describe(check_claim(loss, curve))
    assert expected == "[161.24, 4.41] ± 0.5 along step"
    assert got == "[161.31, 4.4]; largest gap 0.07 at step 1"


STATUS_WORDS = {str(s) for s in ClaimStatus} | {str(v) for v in GateVerdict}
QUOTED = re.compile(r"""["']([a-z][a-z ]*)["']""")
# pydantic's name for a key not given; a data file that is not there
NOT_STATUSES = {("schema.py", "missing"), ("image_sets.py", "missing")}


def test_statuses_are_written_only_in_their_enum():
    """A status spelt as a bare string anywhere (code or template) would drift from its enum."""
    package = Path(claims.__file__).parent
    found = []
    for path in sorted([*package.rglob("*.py"), *package.rglob("*.j2")]):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s+[A-Z_]+ = ", line):
                continue  # an enum's member: where the word is defined
            code = line.split("#")[0] if path.suffix == ".py" else line
            found += [(path.name, number, word) for word in QUOTED.findall(code)
                      if word in STATUS_WORDS and (path.name, word) not in NOT_STATUSES]
    assert found == []


def test_a_claim_whose_runs_are_not_in_the_tables_says_which_and_that_rerunning_finishes_it():
    """An interrupted sweep: a claim waits for every run it selects that the profile plans."""
    from dlrepro.project import suites_dir
    from dlrepro.suite import load

    suite = load(suites_dir() / "five_points.toml")
    empty = pd.DataFrame(columns=["run_id", "seed", "task", "degree", "metric", "step", "value"])
    found = {r.claim: r for r in claims.evaluate(suite, empty, "smoke")}
    assert {r.status for r in found.values()} == {ClaimStatus.NOT_RUN}
    assert describe(found["loo-small-d-beats-d4"])[0] == (
        "2 of 2 planned runs missing: five_points [task=poly, degree=2] seed 0, five_points "
        "[task=poly, degree=4] seed 0; rerunning the same dlrepro run finishes it")
    assert describe(found["train-error-falls-with-d"])[0].startswith(
        "6 of 6 planned runs missing: five_points [task=poly, degree=0] seed 0, five_points "
        "[task=poly, degree=1] seed 0, five_points [task=poly, degree=2] seed 0, …; rerunning")
    # Only the small MLP finished: the big one's claim waits for it, no override changed it.
    small_mlp = suite.runs("smoke")[6]
    small = pd.DataFrame([(small_mlp.run_id, 0, "mlp", 2, 10, 1000, 0.01, "relative_train_mse",
                           None, 0.02)],
                         columns=["run_id", "seed", "task", "layers", "hidden", "steps", "lr",
                                  "metric", "step", "value"])
    [big] = [r for r in claims.evaluate(suite, small, "smoke") if r.claim == "big-mlp-interpolates"]
    assert describe(big)[0] == ("1 of 1 planned run missing: five_points [task=mlp, layers=5, "
                                "hidden=1000, steps=500, lr=0.001] seed 0; rerunning the same "
                                "dlrepro run finishes it")
