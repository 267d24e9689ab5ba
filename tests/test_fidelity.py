"""The fidelity table: every published number of EXPERIMENTS.md is a claim's value, and each gets a
row with what was measured."""

import math
from pathlib import Path

import pandas as pd
import pytest

from dlrepro import claims, fidelity
from dlrepro.schema import Approx
from dlrepro.project import suites_dir
from dlrepro.suite import load, matches
from dlrepro.formatting import ClaimStatus

EXPERIMENTS = Path(__file__).resolve().parents[2] / "shared" / "EXPERIMENTS.md"

# Every number EXPERIMENTS.md publishes as a result, by the suite that must claim it. The source is
# checked too: each number must appear in EXPERIMENTS.md as written here.
PUBLISHED = {
    "xor": {"75 %": 0.75, "100 %": 1.0, "2 epochs": 2, "w = (0, 0, −4)": -4, "b = 0": 0,
            "z = 4": 4},
    "gradient_descent": {"0.2974": 0.2974, "0.8107": 0.8107, "0.2129": 0.2129, "0.4205": 0.4205,
                         ".578 .550 .513": 0.550, ".683 .691 .699": 0.691, ".578 .468 .251": 0.468},
    "autoencoder": {"13.87": 13.87, "3.00": 3.00},
    "mnist_cnn": {"161.24": 161.24, "4.41": 4.41, "1.01 %": 1.01, "105,506": 105506,
                  "500 kWh": 500},
    "mnist_mlp": {"11,274": 11274, "95–96 %": 4.5},
    "small_facts": {"[2, 4, 8]": 8, "(0,0,0,1,1,1,1,0,0,0)": 1, "3.87e10": 3.87e10,
                    "11,274": 11274},
}


def fidelity_rows(suite, table, profile: str) -> list[dict]:
    """The rows as the pipeline builds them: from the claims' one evaluation."""
    return fidelity.rows(suite, claims.evaluate(suite, table, profile), profile)


def published_values(suite) -> list[float]:
    found = []
    for claim in suite.model.claims:
        if isinstance(claim, Approx) and claim.published is not None:
            found += claim.value if isinstance(claim.value, list) else [claim.value]
    return found


def test_every_published_number_is_a_published_claim_value():
    text = EXPERIMENTS.read_text()
    for name, numbers in PUBLISHED.items():
        values = published_values(load(suites_dir() / f"{name}.toml"))
        for printed, value in numbers.items():
            assert printed in text, f"{printed!r} is not in EXPERIMENTS.md"
            assert any(math.isclose(v, value, rel_tol=1e-9, abs_tol=1e-12) for v in values), \
                f"{name}: no published claim has the value {value} ({printed})"


def test_published_claims_say_why_their_tolerance():
    for path in sorted(suites_dir().glob("*.toml")):
        for claim in load(path).model.claims:
            if isinstance(claim, Approx) and claim.published is not None:
                assert len(claim.published.why) > 10 and claim.published.source, \
                    (path.name, claim.id)


def test_rows_one_per_number_with_mean_sd_and_runs():
    suite = load(suites_dir() / "gradient_descent.toml")
    values = [0.578, 0.5508, 0.5142, 0.4672, 0.4131, 0.3625, 0.3278, 0.3101, 0.3024, 0.2994,
              0.2981, 0.2977]
    # The quick profile's run of that descent (a claim waits for the runs it plans), two seeds more.
    [planned] = [spec.run_id for spec in suite.runs("quick")
                 if matches(spec.params, {"mode": "trajectory", "eta": 0.125, "w0": 0.578})]
    table = pd.DataFrame([([planned, "r1", "r2"][seed], seed, "trajectory", 0.125, 0.578, "iterate",
                           step, v + 1e-4 * seed)
                          for seed in (0, 1, 2) for step, v in enumerate(values)],
                         columns=["run_id", "seed", "mode", "eta", "w0", "metric", "step", "value"])
    table["step"] = table["step"].astype("Int64")
    found = fidelity_rows(suite, table, "quick")
    rows = [r for r in found if r["claim"] == "iterates-eta-0125-0578"]
    assert [r["at"] for r in rows] == [f"step={i}" for i in range(12)]
    first, fourth = rows[0], rows[3]
    assert first["runs"] == 3 and math.isclose(first["measured"], 0.5781)
    assert math.isclose(first["std"], 1e-4)
    assert math.isclose(fourth["difference"], 0.4672 + 1e-4 - 0.465)
    assert fourth["status"] is ClaimStatus.REPRODUCED
    assert fourth["tolerance"] == 5e-3 and "3 decimals" in fourth["why"]
    unmeasured = [r for r in found if r["claim"] == "iterates-eta-05-0578"]
    assert len(unmeasured) == 12 and {r["status"] for r in unmeasured} == {ClaimStatus.NOT_RUN}
    shown = fidelity.display(pd.DataFrame(rows, columns=fidelity.COLUMNS))[3]
    assert shown["published"] == "0.465" and shown["measured"] == "0.4673 ± 0.0001 (3 runs)"
    assert shown["difference"] == "+0.0023" and shown["status"] == "reproduced"


def test_a_claim_on_the_max_shows_it_before_the_mean():
    row = {"suite": "xor", "claim": "raw-at-most-75", "profile": "full", "at": "", "source": "s",
           "published": 0.75, "measured": 0.53125, "std": 0.084, "runs": 40, "reduce": "max",
           "difference": 0.0, "tolerance": 0.0, "why": "w", "status": "reproduced", "ran": ""}
    [shown] = fidelity.display(pd.DataFrame([row], columns=fidelity.COLUMNS))
    assert shown["measured"] == "0.75 (max of 40 runs; mean 0.53125 ± 0.084)"
    assert shown["difference"] == "+0"


def test_a_fidelity_csv_with_the_older_seeds_column_reads_back(tmp_path):
    """Before the count was named runs: its rows are kept, not dropped by the next write."""
    row = {"suite": "xor", "claim": "c", "profile": "quick", "at": "", "source": "s",
           "published": 1.0, "measured": 1.0, "std": "", "runs": 3, "reduce": "mean",
           "difference": 0.0, "tolerance": 0.0, "why": "w", "status": "reproduced", "ran": ""}
    path = tmp_path / "fidelity.csv"
    pd.DataFrame([row]).rename(columns={"runs": "seeds"}).to_csv(path, index=False)
    assert fidelity.read(path)["runs"].tolist() == [3]


def test_a_full_profile_number_is_listed_but_not_measured_at_quick():
    suite = load(suites_dir() / "mnist_cnn.toml")
    empty = pd.DataFrame(columns=["run_id", "seed", "model", "metric", "step", "value"])
    rows = fidelity_rows(suite, empty, "quick")
    loss_log = [r for r in rows if r["claim"] == "handout-loss-log"]
    assert len(loss_log) == 10 and {r["status"] for r in loss_log} == {ClaimStatus.OTHER_PROFILE}
    assert {r["profile"] for r in loss_log} == {"full"}
    assert all(r["measured"] is None for r in loss_log)
    shown = fidelity.display(pd.DataFrame(rows, columns=fidelity.COLUMNS))
    assert len(shown) == len(rows)
    shown_log = [r for r in shown if r["claim"] == "handout-loss-log"]
    assert {(r["measured"], r["difference"], r["status"]) for r in shown_log} == {
        ("—", "—", "full profile only")}
    assert shown_log[0]["published"] == "161.24"  # as the handout prints it, not 161.2


def test_a_claim_about_other_data_gives_rows_that_do_not_apply_and_a_csv_that_reads_back(
        tmp_path):
    suite = load(suites_dir() / "mnist_mlp.toml")
    other = pd.DataFrame([("r0", 0, "fashion_mnist", "test_error", None, 12.0)],
                         columns=["run_id", "seed", "dataset", "metric", "step", "value"])
    other["step"] = other["step"].astype("Int64")
    rows = fidelity_rows(suite, other, "quick")
    anchored = [r for r in rows if r["claim"] == "ninety-five-percent"]
    assert [(r["status"], r["ran"]) for r in anchored] == [
        (ClaimStatus.DOES_NOT_APPLY, "dataset=fashion_mnist")]
    fidelity.write(tmp_path / "fidelity.csv", rows)
    shown = fidelity.display(fidelity.read(tmp_path / "fidelity.csv"))
    assert [type(r["verdict"]) for r in shown] == [ClaimStatus] * len(rows)
    assert "does not apply (dataset=fashion_mnist)" in {r["status"] for r in shown}


@pytest.mark.slow  # every suite at smoke, MNIST's included
def test_a_cheaper_profiles_report_shows_each_published_number_at_full(smoke_report):
    """Beside smoke's numbers, the committed full measurement's verdict and value, row for row,
    or "not measured"."""
    from dlrepro.project import baselines_dir

    at_full = fidelity.read(baselines_dir() / "full" / "fidelity.csv")
    assert len(at_full), "results/baselines/full/fidelity.csv is committed"
    report = (smoke_report / "report.md").read_text()
    header = next(line for line in report.splitlines()
                  if line.startswith("| suite | claim |") and "| published |" in line)
    column = header.split(" | ").index("at full")
    cells = [line.split(" | ")[column] for line in report.splitlines()
             if line.startswith("| ") and line.count(" | ") == header.count(" | ")][1:]
    shown = smoke_report / "fidelity.csv"
    assert len(cells) == len(fidelity.read(shown)) > 0
    measured = {ClaimStatus.REPRODUCED, ClaimStatus.NOT_REPRODUCED}
    expected = {f"{s}: " for s in measured} | {fidelity.NOT_MEASURED}
    assert all(any(cell.startswith(e) for e in expected) for cell in cells), cells
    reproduced = (at_full["status"] == ClaimStatus.REPRODUCED).sum()
    assert sum(cell.startswith("reproduced: ") for cell in cells) == reproduced
