"""Regression checks: verdicts from seed statistics and tolerances, and the CLI gate on real
runs."""

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import copy_suite
from dlrepro.cli import main
from dlrepro.regression import KEY, compare
from dlrepro.schema import Metric
from dlrepro.project import suites_dir
from dlrepro.formatting import GateVerdict


def summary(values_by_metric: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for metric, values in values_by_metric.items():
        v = pd.Series(values, dtype=float)
        rows.append({"suite": "s", "configuration": "all", "metric": metric, "step": pd.NA,
                     "n": int(v.count()), "mean": v.mean(), "std": v.std()})
    table = pd.DataFrame(rows)
    table["step"] = table["step"].astype("Int64")
    return table


def verdict(base, now, other_device: bool = False, **metric) -> GateVerdict:
    declared = {"m": Metric(**{"better": "lower", **metric})}
    return compare(summary({"m": base}), summary({"m": now}), declared,
                   other_device)["verdict"].item()


def test_identical_results_are_unchanged_even_with_zero_tolerance():
    assert verdict([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], tolerance=0) == GateVerdict.UNCHANGED


def test_seed_noise_within_tolerance_does_not_trip():
    rng = np.random.default_rng(0)
    base, now = 0.05 + 0.002 * rng.standard_normal(5), 0.05 + 0.002 * rng.standard_normal(5)
    assert verdict(list(base), list(now), rel_tolerance=0.1) == GateVerdict.UNCHANGED


def test_beyond_tolerance_but_within_seed_noise_is_inconclusive():
    rng = np.random.default_rng(1)
    base, now = 1 + rng.standard_normal(5), 1.3 + rng.standard_normal(5)
    assert verdict(list(base), list(now), tolerance=0.01) == GateVerdict.INCONCLUSIVE


def test_a_clear_shift_is_regressed_or_improved_by_direction():
    rng = np.random.default_rng(2)
    base = list(1 + 0.01 * rng.standard_normal(5))
    worse, better = [b + 0.5 for b in base], [b - 0.5 for b in base]
    assert verdict(base, worse, tolerance=0.01) == GateVerdict.REGRESSED
    assert verdict(base, better, tolerance=0.01) == GateVerdict.IMPROVED
    assert verdict(base, better, better="higher", tolerance=0.01) == GateVerdict.REGRESSED
    assert verdict(base, better, better="two-sided", tolerance=0.01) == GateVerdict.REGRESSED


def test_one_seed_is_judged_by_the_tolerance_alone():
    assert verdict([1.0], [1.05], rel_tolerance=0.1) == GateVerdict.UNCHANGED
    assert verdict([1.0], [1.2], rel_tolerance=0.1) == GateVerdict.REGRESSED


def test_from_another_device_only_the_seeds_can_show_a_regression():
    """A CPU's baseline on a GPU: one seed a side cannot tell rounding from a regression; three
    that disagree clearly still can."""
    assert verdict([1.0], [1.05], other_device=True, rel_tolerance=0.1) == GateVerdict.UNCHANGED
    assert verdict([1.0], [1.2], other_device=True, rel_tolerance=0.1) == GateVerdict.INCONCLUSIVE
    assert verdict([1.0], [1.0 + 1e-7], other_device=True) == GateVerdict.INCONCLUSIVE  # exact
    rng = np.random.default_rng(3)
    base = list(1 + 0.01 * rng.standard_normal(3))
    assert verdict(base, [b + 0.5 for b in base], other_device=True,
                   tolerance=0.01) == GateVerdict.REGRESSED
    assert verdict([3.0], [math.nan], other_device=True, tolerance=0) == GateVerdict.REGRESSED


def test_nan_means_never_converged():
    assert verdict([math.nan], [math.nan], tolerance=0) == GateVerdict.UNCHANGED
    assert verdict([3.0], [math.nan], tolerance=0) == GateVerdict.REGRESSED
    assert verdict([math.nan], [3.0], tolerance=0) == GateVerdict.IMPROVED


def test_rows_on_one_side_only_are_missing_or_new():
    table = compare(summary({"a": [1.0], "b": [2.0]}), summary({"b": [2.0], "c": [3.0]}), {})
    assert dict(zip(table["metric"], table["verdict"])) == {
        "a": GateVerdict.MISSING, "b": GateVerdict.UNCHANGED, "c": GateVerdict.NEW}
    assert set(table["verdict"]) <= set(GateVerdict)
    assert list(table.columns[:4]) == KEY


@pytest.fixture(scope="module")
def gradient_descent_baseline(tmp_path_factory):
    """The real gradient_descent suite at smoke, and a baseline made from it."""
    results, baselines = tmp_path_factory.mktemp("results"), tmp_path_factory.mktemp("baselines")
    assert main(["run", "gradient_descent", "--profile", "smoke", "--results", str(results)]) == 0
    assert main(["baseline", "update", "gradient_descent", "--profile", "smoke",
                 "--results", str(results),
                 "--baseline", str(baselines)]) == 0
    return results, baselines


def test_an_unchanged_rerun_passes(gradient_descent_baseline, capsys):
    results, baselines = gradient_descent_baseline
    assert main(["check", "gradient_descent", "--profile", "smoke", "--results", str(results),
                 "--baseline", str(baselines)]) == 0
    assert "No regression" in capsys.readouterr().out
    assert (pd.read_csv(results / "smoke" / "check.csv")["verdict"].map(GateVerdict)
            == GateVerdict.UNCHANGED).all()


def check_edited(baselines, folder, old: str, new: str, capsys) -> tuple[int, str]:
    """Run gradient_descent with one edit to its suite file (its grid and the claims that select
    from it alike), then check it against the baseline."""
    changed = copy_suite("gradient_descent", folder, (old, new))
    results = folder / "results"
    main(["run", str(changed), "--profile", "smoke", "--results", str(results)])
    capsys.readouterr()
    code = main(["check", str(changed), "--profile", "smoke", "--results", str(results),
                 "--baseline", str(baselines)])
    return code, capsys.readouterr().out


def test_a_changed_hyperparameter_fails_naming_suite_configuration_and_metric(
        gradient_descent_baseline, tmp_path, capsys):
    code, err = check_edited(gradient_descent_baseline[1], tmp_path, "eta = 0.125, w0 = 0.578 }",
                             "eta = 0.2, w0 = 0.578 }", capsys)
    assert code == 1
    assert ("missing gradient_descent [mode=trajectory, eta=0.125, w0=0.578]: diverged, final,"
            in err)
    assert "regressed or missing" in err


def test_a_changed_fixed_parameter_shows_the_regressed_values(gradient_descent_baseline, tmp_path,
                                                              capsys):
    code, err = check_edited(gradient_descent_baseline[1], tmp_path, "steps = 200 ", "steps = 20 ",
                             capsys)
    assert code == 1
    assert ("regressed gradient_descent [mode=trajectory, eta=0.125, w0=0.683] final: 0.81069 → "
            "0.810333") in err


def test_a_suite_that_did_not_run_is_named_not_counted_missing(gradient_descent_baseline, capsys):
    results, baselines = gradient_descent_baseline
    shutil.copy(suites_dir().parent / "results" / "baselines" / "smoke" / "xor.csv",
                baselines / "smoke" / "xor.csv")
    try:
        assert main(["check", "--profile", "smoke", "--results", str(results),
                     "--baseline", str(baselines)]) == 1
    finally:
        (baselines / "smoke" / "xor.csv").unlink()
    out = capsys.readouterr().out
    assert out.startswith(f"comparing {results / 'smoke'} with {baselines / 'smoke'}: ran here: "
                          "gradient_descent; did not run here: autoencoder, cifar_maps, "
                          "cifar_resnet, five_points, ")
    # Its values are not counted as missing: it is to be run, not its baseline refreshed; so is a
    # suite without a baseline that did not run here.
    assert "missing" not in out and "has no baseline" not in out and "refresh" not in out
    unrun = out.splitlines()[-2]
    assert unrun.startswith("gate fails: autoencoder, cifar_maps, cifar_resnet, five_points, ")
    assert unrun.endswith(", xor: did not run here, so not compared"), out
    assert out.splitlines()[-1].startswith(
        "Run them: `dlrepro run autoencoder cifar_maps cifar_resnet five_points ")
    assert out.splitlines()[-1].endswith(f" xor --profile smoke --results {results}`."), out


def test_a_broken_baseline_is_a_clear_error(gradient_descent_baseline, tmp_path, capsys):
    results, _ = gradient_descent_baseline
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "gradient_descent.csv").write_text(
        "suite,metric\ngradient_descent,final\n")
    assert main(["check", "gradient_descent", "--profile", "smoke", "--results", str(results),
                 "--baseline", str(tmp_path)]) == 2
    assert ("gradient_descent.csv: not a baseline: no column configuration, mean, n, std, step"
            in capsys.readouterr().err)


COST_HEADER = "suite,hardware,runs,wall_time_s,energy_kwh,energy_method\n"
BROKEN_COSTS = {  # each: what cost.csv holds, what the one-line error says
    "empty": ("", "cost.csv: not a readable CSV"),
    "no column": ("suite,runs\ngradient_descent,5\n", "cost.csv: not a cost table: no column "
                  "energy_kwh, energy_method, hardware, wall_time_s"),
    "text": (COST_HEADER + "gradient_descent,cpu,5,abc,0.1,est\n",
             "cost.csv: wall_time_s of gradient_descent: 'abc' is not a finite number >= 0"),
    "NaN": (COST_HEADER + "gradient_descent,cpu,5,nan,0.1,est\n",
            "cost.csv: wall_time_s of gradient_descent: 'nan' is not a finite number >= 0"),
    "negative": (COST_HEADER + "gradient_descent,cpu,-5,1.0,0.1,est\n",
                 "cost.csv: runs of gradient_descent: '-5' is not a finite number >= 0"),
    "directory": (None, "cost.csv: not a readable CSV"),
}


def _broken_cost(folder: Path, case: str) -> Path:
    text, _ = BROKEN_COSTS[case]
    path = folder / "smoke" / "cost.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.mkdir() if text is None else path.write_text(text)
    return path


@pytest.mark.parametrize("case", BROKEN_COSTS)
def test_a_broken_cost_table_is_one_line_for_the_gate(case, gradient_descent_baseline, tmp_path,
                                                      capsys):
    results, baselines = gradient_descent_baseline
    # The value baseline itself stays intact.
    shutil.copytree(baselines, tmp_path, dirs_exist_ok=True)
    _broken_cost(tmp_path, case)
    assert main(["check", "gradient_descent", "--profile", "smoke", "--results", str(results),
                 "--baseline", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert BROKEN_COSTS[case][1] in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("case", ["text", "NaN", "directory"])
def test_a_broken_reference_cost_never_refuses_a_run(case, tmp_path, capsys, monkeypatch):
    """The ETA reads the project's cost.csv of the profile: broken, the ETA goes without it, with
    one warning, and every run runs."""
    from dlrepro import pipeline

    monkeypatch.setattr(pipeline, "baselines_dir", lambda: tmp_path / "baselines")
    _broken_cost(tmp_path / "baselines", case)
    results = tmp_path / "results"
    assert main(["run", "gradient_descent", "--profile", "smoke", "--results", str(results)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "cost.csv" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: the ETA goes without")
    assert BROKEN_COSTS[case][1] in warnings[0]
    assert list(results.glob("smoke/records/*/*.json"))


def test_a_gate_pointed_at_nothing_fails(gradient_descent_baseline, tmp_path, capsys):
    results, baselines = gradient_descent_baseline
    # No folder; a folder without smoke/.
    for missing in (tmp_path / "no" / "such" / "dir", tmp_path):
        assert main(["check", "gradient_descent", "--profile", "smoke", "--results", str(results),
                     "--baseline", str(missing)]) == 2
        assert capsys.readouterr().err.startswith("dlrepro: error: ")


def test_a_gate_where_nothing_ran_fails_and_says_what_to_run(gradient_descent_baseline, tmp_path,
                                                             capsys):
    _, baselines = gradient_descent_baseline
    empty = tmp_path / "empty"
    assert main(["check", "gradient_descent", "--profile", "smoke", "--results", str(empty),
                 "--baseline", str(baselines)]) == 1
    out = capsys.readouterr().out
    assert "ran here: none; did not run here: gradient_descent" in out.splitlines()[0]
    assert "0 value(s) compared with" in out and "missing" not in out and "refresh" not in out
    assert "gate fails: gradient_descent: did not run here" in out
    run = re.search(r"`dlrepro (run [^`]*)`", out)[1].split()
    assert run == ["run", "gradient_descent", "--profile", "smoke", "--results", str(empty)]
    assert main(run) == 0  # followed, the hint runs what the gate lacked
    assert main(["check", "gradient_descent", "--profile", "smoke", "--results", str(empty),
                 "--baseline", str(baselines)]) == 0


def test_a_new_suite_passes_only_when_allowed(gradient_descent_baseline, capsys):
    results, baselines = gradient_descent_baseline
    assert main(["run", "small_facts", "--profile", "smoke", "--results", str(results)]) == 0
    args = ["check", "gradient_descent", "small_facts", "--profile", "smoke",
            "--results", str(results),
            "--baseline", str(baselines)]
    assert main(args) == 1 and "small_facts has no baseline" in capsys.readouterr().out
    assert main([*args, "--allow-new"]) == 0


def test_a_baseline_of_part_of_a_suite_is_compared_where_it_has_values(
        gradient_descent_baseline, tmp_path, capsys):
    """Written from a --set seeds / --only folder, it meets the profile's own runs by name; the
    gate says what it lacks and that its seeds differ (gradient descent from a fixed w0 does not
    depend on the seed, so the values agree)."""
    results, _ = gradient_descent_baseline
    part = ["--set", "seeds=[0,1]", "--only", "mode=trajectory", "--results", str(results)]
    assert main(["run", "gradient_descent", "--profile", "smoke", *part]) == 0
    assert main(["baseline", "update", "gradient_descent", "--profile", "smoke", *part,
                 "--baseline", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["check", "gradient_descent", "--profile", "smoke", "--results", str(results),
                 "--baseline", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "No regression" in captured.out
    assert "gradient_descent: the baseline has 2 seed(s) a value, the runs 1" in captured.err
    assert re.search(r"gradient_descent: \d+ value\(s\) have no baseline: it covers 3 of 5 "
                     r"configuration\(s\)", captured.err), captured.err


def test_a_baseline_is_not_written_from_other_settings(tmp_path, capsys):
    code = main(["baseline", "update", "xor", "--profile", "smoke", "--set", "epochs=3",
                 "--results", str(tmp_path), "--baseline", str(tmp_path / "b")])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith(
        "--set epochs: a baseline is of its profile's settings; only --set seeds=[...] and "
        "--only select part of them")
    assert not (tmp_path / "b").exists()


def test_a_partial_update_replaces_the_configurations_it_measured_and_keeps_the_others(
        gradient_descent_baseline, tmp_path):
    """Baselines measured in two folders (the profile's, another's seeds): each configuration
    from the last update that measured it, and each claim's verdict from the last that
    measured it."""
    results, baselines = gradient_descent_baseline
    shutil.copytree(baselines, tmp_path, dirs_exist_ok=True)
    before = pd.read_csv(tmp_path / "smoke" / "gradient_descent.csv")
    part = ["--set", "seeds=[0,1]", "--only", "mode=trajectory", "--results", str(results)]
    assert main(["run", "gradient_descent", "--profile", "smoke", *part]) == 0
    assert main(["baseline", "update", "gradient_descent", "--profile", "smoke", *part,
                 "--baseline", str(tmp_path)]) == 0
    after = pd.read_csv(tmp_path / "smoke" / "gradient_descent.csv")
    assert set(after["configuration"]) == set(before["configuration"])
    trajectory = after["configuration"].str.startswith("mode=trajectory")
    assert set(after.loc[trajectory, "n"]) == {2} and set(after.loc[~trajectory, "n"]) == {1}
    claims = pd.read_csv(tmp_path / "smoke" / "claims.csv")
    assert len(claims) == len(pd.read_csv(baselines / "smoke" / "claims.csv"))
    assert (claims["status"] == "reproduced").all(), claims[["claim", "status"]]
