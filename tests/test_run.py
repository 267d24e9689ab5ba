"""End to end through the CLI on the real XOR suite: tables, energy, claims, report, caching,
failures kept and retried, and Ctrl-C losing nothing."""

import pandas as pd
import pytest

from dlrepro.cli import main
from dlrepro import runners
from dlrepro.layout import Results
from dlrepro.schema import Resources
from dlrepro.suite import RunSpec, load, suites_dir


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    assert main(["run", "--profile", "smoke", "--results", str(results)]) == 0  # every suite
    return results, results / "smoke"


def test_tables_have_one_row_per_run_and_tidy_metrics(smoke):
    _, out = smoke
    runs = pd.read_parquet(out / "runs.parquet")
    specs = [spec for path in suites_dir().glob("*.toml") for spec in load(path).runs("smoke")]
    assert sorted(runs["run_id"]) == sorted(s.run_id for s in specs)
    assert (runs["status"] == "ok").all()
    for column in ("model", "features", "coding", "seed", "wall_time_s", "device", "hostname", "energy_kwh",
                   "co2_kg", "energy_method", "dlrepro_version", "torch_version", "python_version", "git_commit"):
        assert column in runs, column
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics.columns) == ["run_id", "suite", "metric", "step", "value"]
    assert metrics["step"].isna().any() and metrics["step"].notna().any()
    assert pd.read_csv(out / "runs.csv").shape[0] == len(runs)


def test_energy_is_measured_by_codecarbon(smoke):
    _, out = smoke
    runs = pd.read_parquet(out / "runs.parquet")
    assert (runs["energy_kwh"] > 0).all() and (runs["co2_kg"] > 0).all()
    assert runs["energy_method"].str.contains("codecarbon").all()
    assert runs["energy_method"].str.contains("estimated|measured").all()
    raw = pd.concat(pd.read_csv(f) for f in (out / "energy").glob("emissions_base_*.csv"))
    assert set(runs["run_id"]) <= set(raw["task_name"])


def test_every_claim_is_reproduced_at_smoke(smoke):
    _, out = smoke
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims.columns) == ["suite", "claim", "text", "status", "measured", "expected"]
    assert (claims["status"] == "reproduced").all(), claims
    assert {"raw-at-most-75", "phi-separates", "perceptron-phi-converges", "perceptron-raw-never-converges"} <= set(claims["claim"])


def test_rerun_does_no_work_and_says_so(smoke, capsys):
    results, out = smoke
    before = {p: p.stat().st_mtime_ns for p in (out / "records").rglob("*.json")}
    assert main(["run", "--profile", "smoke", "--results", str(results)]) == 0  # every suite
    assert "Nothing to run" in capsys.readouterr().err
    assert before == {p: p.stat().st_mtime_ns for p in (out / "records").rglob("*.json")}


def test_report_embeds_the_figure(smoke):
    results, out = smoke
    assert main(["report", "--profile", "smoke", "--results", str(results)]) == 0
    text = (out / "report.md").read_text()
    assert "figures/xor/xor_decision_regions.png" in text and (out / "figures/xor/xor_decision_regions.png").stat().st_size > 10_000
    assert "| xor | raw-at-most-75 | ✅ reproduced" in text


def test_claims_command_exit_code(smoke, tmp_path):
    results, _ = smoke
    assert main(["claims", "--profile", "smoke", "--results", str(results)]) == 0
    assert main(["claims", "--profile", "smoke", "--results", str(tmp_path)]) == 1  # nothing run


def test_a_failed_run_is_recorded_the_others_go_on_and_it_is_retried(tmp_path):
    good = load(suites_dir() / "xor.toml").runs("smoke")[0]
    broken = RunSpec(suite="xor", experiment="xor", profile="smoke", params={"model": "no-such-model"},
                     seed=0, resources=Resources(), run_id="broken0000000000")
    store = Results(tmp_path, "smoke")
    seen = []
    runners.run([broken, good], store, runners.load_runner("local"), data_dir=None, on_record=seen.append)
    assert [r["status"] for r in seen] == ["failed", "ok"]
    assert "no-such-model" in store.get(broken)["error"]
    assert not store.done(broken) and store.done(good)  # so the next `dlrepro run` tries it again


def test_ctrl_c_keeps_every_finished_run(interrupted_run):
    """Interrupt the full XOR profile mid-way: exit 130, tables hold exactly the finished runs."""
    finished = interrupted_run("xor", "full", 5)
    assert len(finished) < len(load(suites_dir() / "xor.toml").runs("full"))
