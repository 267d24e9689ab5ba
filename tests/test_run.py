"""End to end through the CLI on the real XOR suite: tables, energy, claims, report, caching,
failures kept and retried, and Ctrl-C losing nothing."""

import base64
import re
import shutil
import signal
import time

import pandas as pd
import pytest

from conftest import copy_suite, dlrepro, start_dlrepro
from dlrepro.cli import main
from dlrepro import runners
from dlrepro.claims import COLUMNS
from dlrepro.planning import expected_times
from dlrepro.layout import Results
from dlrepro.schema import Resources
from dlrepro.project import resolve, suites_dir
from dlrepro.suite import RunSpec, load, matches
from dlrepro.formatting import ClaimStatus


@pytest.mark.slow  # every suite at smoke, MNIST's included
def test_tables_have_one_row_per_run_and_tidy_metrics(smoke):
    _, out = smoke
    runs = pd.read_parquet(out / "runs.parquet")
    specs = [spec for path in suites_dir().glob("*.toml") for spec in load(path).runs("smoke")]
    assert sorted(runs["run_id"]) == sorted(s.run_id for s in specs)
    assert (runs["status"] == "ok").all()
    for column in (
        "model",
        "features",
        "coding",
        "seed",
        "wall_time_s",
        "device",
        "hostname",
        "energy_kwh",
        "co2_kg",
        "energy_method",
        "dlrepro_version",
        "torch_version",
        "python_version",
        "git_commit",
    ):
        assert column in runs, column
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics.columns) == ["run_id", "suite", "metric", "step", "value"]
    assert metrics["step"].isna().any() and metrics["step"].notna().any()
    assert pd.read_csv(out / "runs.csv").shape[0] == len(runs)


@pytest.mark.slow  # every suite at smoke, MNIST's included
def test_energy_is_measured_by_codecarbon(smoke):
    _, out = smoke
    runs = pd.read_parquet(out / "runs.parquet")
    assert (runs["energy_kwh"] > 0).all() and (runs["co2_kg"] > 0).all()
    assert runs["energy_method"].str.contains("codecarbon").all()
    assert runs["energy_method"].str.contains("estimated|measured").all()
    raw = pd.concat(pd.read_csv(f) for f in (out / "energy").glob("emissions_base_*.csv"))
    assert set(runs["run_id"]) <= set(raw["task_name"])


def test_energy_is_split_into_cpu_gpu_and_ram(xor_smoke):
    runs = pd.read_parquet(xor_smoke / "smoke" / "runs.parquet")
    parts = runs[["energy_cpu_kwh", "energy_gpu_kwh", "energy_ram_kwh"]]
    assert (parts >= 0).all().all() and (parts["energy_ram_kwh"] > 0).all()
    assert (parts["energy_cpu_kwh"] > 0).any()  # a run of milliseconds may read no CPU energy
    assert list(parts.sum(axis=1)) == pytest.approx(list(runs["energy_kwh"]), rel=1e-6)


def test_a_codecarbon_failure_loses_no_record(tmp_path, monkeypatch):
    """codecarbon failing to read a run's energy leaves that energy not measured, saying why; the
    run's record and metrics are kept, and the next run is measured again."""
    from dlrepro.energy import EnergyMeter
    from dlrepro.execute import execute

    first, second = load(suites_dir() / "xor.toml").runs("smoke")[:2]
    with EnergyMeter(tmp_path / "energy", "FRA") as meter:
        tracker = meter._tracker
        stop_task = tracker.stop_task

        def failing(name: str):  # the task ends, its reading is lost
            stop_task(name)
            raise OSError("No space left on device")

        monkeypatch.setattr(tracker, "stop_task", failing)
        (broken,) = execute([first], meter=meter, artifact_dir=lambda s: tmp_path / s.run_id,
                            data_dir=None)
        monkeypatch.setattr(tracker, "stop_task", stop_task)
        (measured,) = execute([second], meter=meter, artifact_dir=lambda s: tmp_path / s.run_id,
                              data_dir=None)
    assert broken["status"] == "ok" and broken["metrics"]
    assert broken["energy_method"] == ("not measured (codecarbon failed: OSError: No space left "
                                       "on device)")
    assert pd.isna(broken["energy_kwh"]) and pd.isna(broken["energy_ram_kwh"])
    assert measured["energy_kwh"] > 0 and "codecarbon" in measured["energy_method"]


@pytest.mark.slow  # every suite at smoke, MNIST's included
def test_every_claim_is_reproduced_at_smoke(smoke):
    _, out = smoke
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims.columns) == COLUMNS  # numbers, written out only by describe
    assert (claims["status"].map(ClaimStatus) == ClaimStatus.REPRODUCED).all(), claims
    assert {
        "raw-at-most-75",
        "phi-separates",
        "perceptron-phi-converges",
        "perceptron-raw-never-converges",
    } <= set(claims["claim"])


@pytest.mark.slow  # every suite at smoke, MNIST's included
def test_rerun_does_no_work_and_says_so(smoke, capsys):
    results, out = smoke
    before = {p: p.stat().st_mtime_ns for p in (out / "records").rglob("*.json")}
    assert main(["run", "--profile", "smoke", "--results", str(results)]) == 0  # every suite
    assert "Nothing to run" in capsys.readouterr().err
    assert before == {p: p.stat().st_mtime_ns for p in (out / "records").rglob("*.json")}


@pytest.mark.slow  # every suite at smoke, MNIST's included
def test_report_embeds_the_figure(smoke_report):
    out = smoke_report
    text = (out / "report.md").read_text()
    assert "figures/xor/xor_decision_regions.png" in text
    assert (out / "figures/xor/xor_decision_regions.png").stat().st_size > 10_000
    assert "| xor | raw-at-most-75 | ✅ reproduced" in text
    page = (out / "report.html").read_text()
    figure = base64.b64encode((out / "figures/xor/xor_decision_regions.png").read_bytes()).decode()
    assert f'src="data:image/png;base64,{figure}"' in page  # the page carries its figures
    assert '<tr data-suite="xor" data-status="reproduced">' in page and "raw-at-most-75" in page


@pytest.mark.slow  # every suite at smoke, MNIST's included
def test_claims_command_exit_code(smoke, tmp_path):
    results, _ = smoke
    assert main(["claims", "--profile", "smoke", "--results", str(results)]) == 0
    assert main(["claims", "--profile", "smoke", "--results", str(tmp_path)]) == 2  # nothing run


def _snapshot(folder) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_claims_only_reports_it_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["run", "xor", "--profile", "smoke", "--results", str(results)]) == 0
    (results / "smoke" / "claims.csv").unlink()  # not written again by a command that reports
    before = _snapshot(tmp_path)
    capsys.readouterr()
    main(["claims", "--profile", "smoke", "--results", str(results)])
    assert "xor/raw-at-most-75" in capsys.readouterr().out
    assert _snapshot(tmp_path) == before


def test_claims_of_a_folder_never_run_says_so_and_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "dir"
    assert main(["claims", "--profile", "smoke", "--results", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing / 'smoke'}: no results: run `dlrepro run --profile smoke` first" in err
    assert not (tmp_path / "no").exists()


def test_check_writes_its_verdicts_only_while_it_holds_the_folder(tmp_path):
    """A run holds the folder: check waits for it before it writes check.csv."""
    folder = Results(tmp_path, "smoke")
    with folder.lock(print):
        check = start_dlrepro("check", "xor", "--profile", "smoke", "--results", tmp_path)
        assert "waiting for another dlrepro" in check.stderr.readline()
        assert not folder.check.exists()
    assert check.wait(timeout=120) == 1  # nothing to compare: the gate fails, after writing
    assert folder.check.exists()


def test_a_run_again_starts_from_an_empty_artifact_folder_on_the_local_runner(tmp_path):
    spec = load(suites_dir() / "xor.toml").runs("smoke")[0]
    store = Results(tmp_path, "smoke")
    leftover = store.artifact_dir(spec) / "from_a_failed_attempt.pt"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half written")
    seen = []
    runners.run([spec], store, runners.load_runner("local"), data_dir=None, on_record=seen.append)
    assert [r["status"] for r in seen] == ["ok"] and not leftover.exists()


def test_a_failed_run_is_recorded_the_others_go_on_and_it_is_retried(tmp_path):
    good = load(suites_dir() / "xor.toml").runs("smoke")[0]
    broken = RunSpec(
        suite="xor",
        experiment="xor",
        profile="smoke",
        params={"model": "no-such-model"},
        seed=0,
        resources=Resources(),
        run_id="broken0000000000",
    )
    store = Results(tmp_path, "smoke")
    seen = []
    runners.run(
        [broken, good], store, runners.load_runner("local"), data_dir=None, on_record=seen.append
    )
    assert [r["status"] for r in seen] == ["failed", "ok"]
    assert "no-such-model" in store.get(broken)["error"]
    assert not store.done(broken) and store.done(good)  # so the next `dlrepro run` tries it again


@pytest.mark.slow  # signals
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_keeps_every_finished_run(interrupted_run, sig):
    """Interrupt the full XOR profile mid-way: exit 128 + signal, tables hold exactly the finished
    runs."""
    finished = interrupted_run("xor", "full", 5, sig=sig)
    assert len(finished) < len(load(suites_dir() / "xor.toml").runs("full"))


def _cut_short(folder, suite: str, where: dict) -> None:
    """``folder`` as a run stopped before the runs of ``where`` finished leaves it: neither their
    records nor their rows."""
    lost = [s.run_id for s in load(suites_dir() / f"{suite}.toml").runs("smoke")
            if matches(s.params, where)]
    for run_id in lost:
        (folder / "records" / suite / f"{run_id}.json").unlink()
    for name in ("runs", "metrics"):
        table = pd.read_parquet(folder / f"{name}.parquet")
        table[~table["run_id"].isin(lost)].to_parquet(folder / f"{name}.parquet", index=False)


def _claim_lines(out: str) -> dict[str, str]:
    """Each claim's line of a command's output, by claim."""
    return {claim: line for line, claim in re.findall(r"^(.* \w+/(\S+): .*)$", out, re.M)}


@pytest.mark.parametrize("suite, only, stopped, waiting", [
    # every kind of claim: monotone, threshold, compare (five_points); approx, threshold (xor)
    ("five_points", ["--only", "task=poly"], {"degree": 4},
     {"train-error-falls-with-d": "1 of 6 planned runs",
      "loo-small-d-beats-d4": "1 of 2 planned runs", "interpolates-at-d4": "1 of 1 planned run"}),
    ("xor", [], {"model": "perceptron", "features": "raw", "coding": "01"},
     {"raw-at-most-75": "1 of 4 planned runs",
      "perceptron-raw-never-converges": "1 of 2 planned runs"}),
])
def test_a_run_cut_short_gives_its_claims_no_verdict_until_rerunning_finishes_it(
        xor_smoke, tmp_path, capsys, suite, only, stopped, waiting):
    command = ["run", suite, "--profile", "smoke", *only, "--results", str(tmp_path)]
    if suite == "xor":  # the session's run, copied: the rerun only runs what is cut
        shutil.copytree(xor_smoke / "smoke", tmp_path / "smoke")
    else:
        assert main(command) == 0
    [folder] = tmp_path.iterdir()
    capsys.readouterr()
    main(["claims", *command[1:]])
    finished = _claim_lines(capsys.readouterr().out)
    _cut_short(folder, suite, stopped)
    assert main(["claims", *command[1:]]) == 1
    cut = _claim_lines(capsys.readouterr().out)
    assert {claim for claim, line in cut.items() if line != finished[claim]} == set(waiting)
    for claim, missing in waiting.items():
        said = f"not run {suite}/{claim}: measured {missing} missing: {suite} ["
        assert cut[claim].startswith(said), cut[claim]
        assert "; rerunning the same dlrepro run finishes it;" in cut[claim]
        assert all(f"{key}={value}" in cut[claim] for key, value in stopped.items())
    assert main(command) == 0
    assert _claim_lines(capsys.readouterr().out) == finished


@pytest.mark.slow  # every suite at smoke, MNIST's included
def test_every_experiments_figures_draw_from_a_smoke_table(smoke, tmp_path):
    from dlrepro import tables
    from dlrepro.layout import Results

    results = Results(smoke[0], "smoke")
    runs, metrics = tables.load(results)
    for suite in resolve([]):
        table = tables.joined(runs, metrics, suite.name)
        paths = suite.experiment.figures(
            table, tmp_path / suite.name, results.artifacts(suite.name)
        )
        assert paths and all(p.stat().st_size > 5_000 for p in paths), suite.name


def test_a_nan_metric_fails_its_run_and_the_report_shows_why(tmp_path, capsys):
    small_mlp = "shape = [{ layers = 2, hidden = 10"
    diverging = copy_suite("five_points", tmp_path / "suites",
                           (small_mlp + " },", small_mlp + ", lr = 1e30 },"))  # its weights blow up
    results = tmp_path / "r"
    assert main(["run", str(diverging), "--profile", "smoke", "--results", str(results)]) == 1
    runs = pd.read_parquet(tmp_path / "r" / "smoke" / "runs.parquet")
    blown = runs["lr"] == 1e30
    assert blown.sum() == 1 and runs[blown]["status"].eq("failed").all()
    assert runs[~blown]["status"].eq("ok").all()
    assert runs[blown]["error"].str.contains(r"metric 'train_mse' is (?:nan|inf)").all()
    claims = pd.read_csv(tmp_path / "r" / "smoke" / "claims.csv")
    # The claims' own runs are fine; the failed one counts nowhere.
    assert (claims["status"].map(ClaimStatus) == ClaimStatus.REPRODUCED).all()
    markdown = _report_of(tmp_path / "r", capsys)
    assert (
        "**1 of 10 run(s) failed**" in markdown
        and "a run that logs NaN or infinity is not counted" in markdown
    )
    page = (tmp_path / "r" / "smoke" / "report.html").read_text()
    assert "<strong>1 failed</strong>" in page and "Failed: five_points " in page
    assert "a run that logs NaN or infinity is not counted" in page


def _report_of(results, capsys) -> str:
    assert main(["report", "--profile", "smoke", "--results", str(results)]) == 0
    return (results / "smoke" / "report.md").read_text()


def test_progress_is_a_line_per_run_outside_a_terminal(tmp_path):
    out = dlrepro("run", "gradient_descent", "--profile", "smoke", "--results", tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 5 and lines[0].startswith("[1/5] gradient_descent [")
    assert "ETA" in lines[-1]
    assert lines[-1].startswith("[5/5] ")
    claims = len(load(suites_dir() / "gradient_descent.toml").model.claims)
    assert f"claims: {claims} of {claims} reproduced, 0 not reproduced, 0 not run" in out.stdout
    assert "ETA" not in out.stdout and "claims: " not in out.stderr  # results out, progress err


@pytest.mark.slow  # two processes, each paying torch's and codecarbon's start
def test_two_runs_on_one_results_folder_take_turns(tmp_path):
    """The second waits for the first, then finds everything cached: no run twice, no row lost."""
    args = ("run", "five_points", "--profile", "smoke", "--results", tmp_path)
    first = start_dlrepro(*args)
    lock = tmp_path / "smoke" / ".lock"
    deadline = time.time() + 60
    while not lock.exists() and time.time() < deadline:
        time.sleep(0.05)
    second = dlrepro(*args)
    assert first.wait(timeout=300) == 0 and second.returncode == 0, second.stderr[-2000:]
    assert "waiting for another dlrepro" in second.stderr and "Nothing to run" in second.stderr
    runs = pd.read_parquet(tmp_path / "smoke" / "runs.parquet")
    specs = load(suites_dir() / "five_points.toml").runs("smoke")
    assert len(runs) == runs["run_id"].nunique() == len(specs)
    measured = (tmp_path / "smoke" / "energy").glob("emissions_base_*.csv")
    energy = pd.concat(pd.read_csv(f) for f in measured)
    assert energy["task_name"].value_counts().max() == 1  # each run measured once: executed once


def _ok_record(spec, run_id: str, wall_time_s: float) -> dict:
    """The fields of an earlier ok run of ``spec``'s configuration that the ETA reads."""
    return {"run_id": run_id, "suite": spec.suite, "params": spec.params, "seed": spec.seed,
            "status": "ok", "finished_at": "2026-01-01T00:00:00+00:00", "wall_time_s": wall_time_s}


def test_the_eta_uses_earlier_runs_of_the_same_configuration(tmp_path):
    from dlrepro.console import RunProgress

    specs = load(suites_dir() / "gradient_descent.toml").runs("smoke")
    store = Results(tmp_path, "smoke")
    old = _ok_record(specs[1], "old0", wall_time_s=40.0)
    store.put(old)
    store.put(
        {**old, "run_id": "old1", "finished_at": "2026-02-01T00:00:00+00:00", "wall_time_s": 30.0}
    )
    store.put(
        {
            **old,
            "run_id": "old2",
            "status": "failed",
            "finished_at": "2026-03-01T00:00:00+00:00",
            "wall_time_s": 1.0,
        }
    )
    expected = expected_times(specs, store, {})
    assert expected[specs[1].run_id] == 30.0
    # the other configurations: the suite's mean ok run in this folder, as soon as it has one
    assert [expected[s.run_id] for s in specs if s is not specs[1]] == [35.0] * (len(specs) - 1)
    a, b, c = specs[:3]
    progress = RunProgress([a, b, c], {a.run_id: None, b.run_id: 30.0, c.run_id: None})
    progress.finished("a", {"run_id": a.run_id, "status": "ok", "wall_time_s": 2.0})
    # left: b (30 s known) and c (2 s, the mean so far), one after the other: 32 s
    assert progress.eta(elapsed=1.0) == 32.0
    # on Ray, from the first run on: a cluster that holds two such runs at once, half that
    progress.at_once = {a.resources: 2}
    assert progress.eta(elapsed=1.0) == 16.0


def test_the_eta_counts_a_run_at_the_runs_most_like_it(tmp_path):
    """A resumed autoencoder: its CNN runs take a hundred times PCA's, whatever d."""
    specs = load(suites_dir() / "autoencoder.toml").runs("smoke")
    store = Results(tmp_path, "smoke")
    took = {"cnn": 100.0, "pca": 1.0, "linear": 4.0}
    first = [spec for spec in specs if spec.params["d"] == 2]
    for spec in first:
        store.put(_ok_record(spec, spec.run_id, took[spec.params["model"]]))
    expected = expected_times(specs, store, {})
    assert {spec.params["model"]: expected[spec.run_id] for spec in specs if spec not in first} == (
        took)


def test_a_first_run_expects_its_suites_mean_on_the_reference_machine_at_this_pace(tmp_path):
    from dlrepro.console import RunProgress
    from dlrepro.pipeline import typical_run_times

    specs = [
        *load(suites_dir() / "gradient_descent.toml").runs("quick"),
        *load(suites_dir() / "xor.toml").runs("quick"),
    ]
    cost = suites_dir().parent / "results" / "baselines" / "quick" / "cost.csv"
    reference = pd.read_csv(cost).set_index("suite")
    store = Results(tmp_path, "quick")
    store.put(_ok_record(specs[0], "earlier", wall_time_s=7.0))
    warnings = []
    expected = expected_times(specs, store, typical_run_times(store, warnings.append))
    assert not warnings  # the committed reference is sound
    assert expected[specs[0].run_id] == 7.0  # this folder's own history first
    for spec in specs[1:]:
        mean = reference.loc[spec.suite, "wall_time_s"] / reference.loc[spec.suite, "runs"]
        here = 7.0 if spec.suite == specs[0].suite else pytest.approx(mean)
        assert expected[spec.run_id] == here
    # A machine twice as slow as the reference: what is left is expected to take twice as long.
    a, b, c = specs[-3:]
    progress = RunProgress([a, b, c], {a.run_id: 10.0, b.run_id: 10.0, c.run_id: 4.0})
    progress.finished("a", {"run_id": a.run_id, "status": "ok", "wall_time_s": 20.0})
    assert progress.eta(elapsed=20.0) == 28.0


def test_a_suites_first_runs_set_its_own_pace_and_suites_done_whole_the_others():
    """On a fresh clone the handout CNN's seeds, its suite's slowest runs, come first: three times
    their suite's mean must not make every other suite three times as long."""
    from dlrepro.console import RunProgress

    a1, a2 = load(suites_dir() / "gradient_descent.toml").runs("quick")[:2]
    b = load(suites_dir() / "xor.toml").runs("quick")[0]
    progress = RunProgress([a1, a2, b], {a1.run_id: 10.0, a2.run_id: 10.0, b.run_id: 10.0})
    progress.finished("a1", {"run_id": a1.run_id, "status": "ok", "wall_time_s": 30.0})
    assert progress.eta(elapsed=30.0) == 40.0  # a2 at its suite's pace (3), b's suite not begun
    progress.finished("a2", {"run_id": a2.run_id, "status": "ok", "wall_time_s": 10.0})
    assert progress.eta(elapsed=40.0) == 20.0  # b at the pace of the suite done whole: 40 s / 20


def test_the_progress_bar_counts_the_eta_down(tmp_path):
    from rich.console import Console

    from dlrepro import console as shown

    terminal = Console(file=(tmp_path / "tty").open("w"), force_terminal=True, width=120)
    saved, shown.diagnostics = shown.diagnostics, terminal
    try:
        a, b = load(suites_dir() / "xor.toml").runs("smoke")[:2]
        with shown.RunProgress([a, b], {a.run_id: 10.0, b.run_id: 100.0}) as progress:
            progress.finished("a", {"run_id": a.run_id, "status": "ok", "wall_time_s": 10.0})
            column = progress.bar.columns[-1]
            first = column.render(progress.bar.tasks[0]).plain
            time.sleep(1.1)
            later = column.render(progress.bar.tasks[0]).plain
    finally:
        shown.diagnostics = saved
    assert first in ("ETA 1 min 40 s", "ETA 1 min 39 s"), first
    assert later in ("ETA 1 min 39 s", "ETA 1 min 38 s"), later


def test_the_pipelines_text_is_shown_as_written_whatever_brackets_it_holds(capsys):
    from dlrepro.console import note, say

    note("xor [model=logistic] seed 0: to run first [bold]")
    say("[red]not markup[/]")
    shown = capsys.readouterr()
    assert "xor [model=logistic] seed 0: to run first [bold]" in shown.err
    assert "[red]not markup[/]" in shown.out
