"""What the command line prints and where: results on stdout (tables a script can parse with
--format csv or json), progress and diagnostics on stderr, plain --help, and a dry run that writes
nothing. Streams are read from a real subprocess through a pipe."""

import io
import json
import math
import signal
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import copy_suite, dlrepro, start_dlrepro
from dlrepro.claims import COLUMNS as CLAIM_COLUMNS
from dlrepro.cli import LIST_COLUMNS, main
from dlrepro.console import OutputFormat, write_rows
from dlrepro.formatting import no_results
from dlrepro.project import shipped, suites_dir
from dlrepro.formatting import ClaimStatus

STATUSES = tuple(ClaimStatus)


def test_claims_in_a_pipe_are_on_stdout_and_nothing_else(xor_smoke):
    out = dlrepro("claims", "--results", xor_smoke, "--profile", "smoke")
    assert out.returncode == 1, out.stderr  # the suites not run make it fail
    *lines, unrun, count = out.stdout.splitlines()
    every = dlrepro("claims", "--results", xor_smoke, "--profile", "smoke", "--format", "csv")
    every = pd.read_csv(io.StringIO(every.stdout))
    assert len(lines) == (every["suite"] == "xor").sum()  # the others: one line, not one a claim
    assert unrun == no_results(sorted(set(shipped()) - {"xor"}))
    assert all(line.startswith(STATUSES) for line in lines)
    assert count.startswith("claims: ") and out.stderr == ""


@pytest.mark.parametrize("form", list(OutputFormat)[1:])
def test_claims_as_csv_and_json_carry_the_tables_columns(xor_smoke, form):
    out = dlrepro("claims", "--results", xor_smoke, "--profile", "smoke", "--format", form)
    parsed = (pd.read_csv(io.StringIO(out.stdout)) if form is OutputFormat.CSV
              else pd.DataFrame(json.loads(out.stdout)))
    assert list(parsed.columns) == list(CLAIM_COLUMNS)
    assert set(pd.read_csv(xor_smoke / "smoke" / "claims.csv")["claim"]) <= set(parsed["claim"])
    assert (parsed.set_index("claim")["status"].loc[["phi-separates", "raw-at-most-75"]]
            == "reproduced").all()


def test_list_shows_the_profile_asked_for(xor_smoke):
    smoke, quick = (dlrepro("list", "xor", "--results", xor_smoke, "--profile", profile,
                            "--format", "csv") for profile in ("smoke", "quick"))
    smoke, quick = (pd.read_csv(io.StringIO(out.stdout), keep_default_na=False)
                    for out in (smoke, quick))
    assert list(smoke.columns) == list(LIST_COLUMNS)
    assert smoke.to_dict("records") == [
        {"suite": "xor", "experiment": "xor", "profile": "smoke", "overrides": "", "runs": 9,
         "cached": 9, "claims": 11},
        {"suite": "xor", "experiment": "xor", "profile": "smoke", "overrides": "epochs=7",
         "runs": 9, "cached": 9, "claims": 11}]
    assert set(quick["profile"]) == {"quick"} and (quick["runs"] > 9).all()
    assert (quick["cached"] == 0).all()


def test_list_in_a_pipe_is_a_whole_line_a_row(xor_smoke):
    out = dlrepro("list", "--results", xor_smoke, "--profile", "smoke")
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and out.stderr == ""
    assert len(lines) == len(list(suites_dir().glob("*.toml"))) + 1  # and xor's override folder
    assert "gradient_descent (gradient_descent) at smoke: 5 runs, 0 cached," in out.stdout
    assert "xor (xor) at smoke+epochs=7: 9 runs, 9 cached, 11 claims" in lines


def test_list_takes_a_suite_file_by_path(tmp_path, capsys):
    path = copy_suite("gradient_descent", tmp_path, rename="my_suite")
    assert main(["list", str(path), "--results", str(tmp_path / "r"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["suite"], row["profile"]) for row in rows] == [
        ("my_suite", "smoke"), ("my_suite", "quick"), ("my_suite", "full")]


@pytest.mark.parametrize("form", list(OutputFormat))
def test_a_reader_that_leaves_early_ends_the_command_quietly(xor_smoke, form):
    proc = start_dlrepro("list", "--results", xor_smoke, "--format", form, stdout=subprocess.PIPE)
    proc.stdout.close()  # like `| head` gone before the first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 128 + signal.SIGPIPE and err == ""


def test_a_reader_of_progress_too_that_leaves_early_ends_the_command_quietly(xor_smoke):
    """`dlrepro run ... 2>&1 | head`: progress meeting a closed pipe stops it as results do."""
    proc = start_dlrepro("run", "xor", "--profile", "smoke", "--results", xor_smoke,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc.stdout.close()  # gone before the plan's first line, on stderr
    assert proc.wait(timeout=120) == 128 + signal.SIGPIPE


@pytest.mark.parametrize("command", [[], ["run"], ["generalise"], ["list"], ["claims"], ["report"],
                                     ["check"], ["baseline"], ["baseline", "update"]])
def test_help_is_plain_text_and_says_what_a_command_writes_and_exits_with(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    text = capsys.readouterr().out
    assert stop.value.code == 0 and "`" not in text and "[/" not in text
    assert "exit codes:" in text or command == ["baseline"]
    assert "writes: " in text or command in ([], ["baseline"])
    assert ("dlrepro baseline update [-h]" in text) == (command == ["baseline", "update"])


def test_dry_run_prints_the_plan_and_writes_nothing(xor_smoke, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in xor_smoke.rglob("*")}
    out = dlrepro("run", "xor", "gradient_descent", "--profile", "smoke", "--results", xor_smoke,
                  "--dry-run")
    assert out.returncode == 0, out.stderr
    assert {p: p.stat().st_mtime_ns for p in xor_smoke.rglob("*")} == before
    lines = out.stdout.splitlines()
    assert lines[0] == "xor: 9 runs at profile smoke, 9 cached, 0 to run"
    assert lines[1].startswith("gradient_descent: 5 runs at profile smoke, 0 cached, 5 to run, on ")
    assert lines[2].startswith("5 runs to do; ETA about ") and len(lines) == 3
    fresh = tmp_path / "fresh"
    assert main(["run", "xor", "--profile", "smoke", "--results", str(fresh), "--dry-run"]) == 0
    assert not fresh.exists()


def test_a_dry_run_names_the_suites_whose_run_times_it_does_not_know(tmp_path, capsys):
    """A suite of one's own has no row in the committed cost.csv: its runs count at the mean."""
    mine = copy_suite("xor", tmp_path, rename="mine")
    assert main(["run", "xor", str(mine), "--profile", "smoke", "--results", str(tmp_path),
                 "--dry-run"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("18 runs to do; ETA about "), last
    assert last.endswith(", run after run; 9 of them (mine) counted at the others' mean"), last


def test_rows_for_a_script_have_numbers_as_numbers_and_nan_as_nothing(capsys):
    rows = [{"name": "a", "count": np.int64(3), "value": np.float64(math.nan)}]
    write_rows(["name", "count", "value"], rows, OutputFormat.JSON)
    assert json.loads(capsys.readouterr().out) == [{"name": "a", "count": 3, "value": None}]
    write_rows(["name", "count", "value"], rows, OutputFormat.CSV)
    assert capsys.readouterr().out == "name,count,value\na,3,\n"


def test_a_failed_run_is_one_line_naming_the_experiments_line():
    from dlrepro.formatting import failure

    error = ('Traceback (most recent call last):\n'
             '  File "/x/dlrepro/execute.py", line 50, in execute\n'
             '  File "/x/dlrepro/experiments/line_fit/run.py", line 28, in run\n'
             '  File "/x/dlrepro/experiment.py", line 80, in log\n'
             "ValueError: metric 'b' is not declared in the experiment's METRICS\n")
    assert failure(error) == ("ValueError: metric 'b' is not declared in the experiment's "
                               "METRICS (dlrepro/experiments/line_fit/run.py:28)")
    assert failure("RuntimeError: no frame\n") == "RuntimeError: no frame"
