"""A suite of one's own, given by path, is as good as a shipped one: claims and report cover it,
found again from the results folder; suites with no results take one line; and two files of one
name never mix their runs."""

import json
from pathlib import Path

import pytest

from conftest import edit, write_suite
from dlrepro.cli import main
from dlrepro.formatting import no_results
from dlrepro.project import shipped, suites_dir

MINE = """\
name = "NAME"
title = "My XOR check"
experiment = "xor"
source = { seed = "002", slide = "ou exclusif" }

[parameters]
epochs = 30
lr = 1.0

[[grid]]
model = ["perceptron"]
features = ["phi"]
coding = ["pm1"]

[profiles.smoke]
seeds = [0]

[profiles.quick]
seeds = [0]

[profiles.full]
seeds = [0]

[[claims]]
id = "phi-separates-alone"
text = "with Φ the perceptron alone gets 4 of 4"
kind = "approx"
metric = "accuracy"
reduce = "min"
value = 1.0
tolerance = 0
"""


def suite_file(folder: Path, name: str = "mine") -> Path:
    return write_suite(folder, MINE, name)


def smoke(command: str, *args: str | Path, results: Path) -> int:
    return main([command, *map(str, args), "--profile", "smoke", "--results", str(results)])


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, Path]:
    """My suite and shipped xor run at smoke into one folder: (my suite file, results root)."""
    root = tmp_path_factory.mktemp("own")
    mine = suite_file(root / "elsewhere")
    assert smoke("run", mine, "xor", results=root / "results") == 0
    return mine, root / "results"


@pytest.mark.parametrize("given", ["path", "name"])
def test_claims_of_my_suite_cover_it_alone(ran, capsys, given):
    mine, results = ran
    assert smoke("claims", mine if given == "path" else "mine", results=results) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["reproduced mine/phi-separates-alone: measured 1 (min of 1); expected 1 ± 0",
                   "claims: 1 of 1 reproduced, 0 not reproduced, 0 not run"]


def test_claims_of_every_suite_say_those_not_run_in_one_line(ran, capsys):
    assert smoke("claims", results=ran[1]) == 1  # suites not run make it fail
    out = capsys.readouterr().out.splitlines()
    unrun = sorted(set(shipped()) - {"xor"})
    assert [line for line in out if line.startswith("not run")] == [no_results(unrun)]
    assert "reproduced mine/phi-separates-alone" in out[0]
    assert sum(line.startswith("reproduced xor/") for line in out) == 11


def test_list_shows_my_suite_beside_the_shipped_ones(ran, capsys):
    assert main(["list", "--profile", "smoke", "--results", str(ran[1])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "mine (xor) at smoke: 1 run, 1 cached, 1 claim" in out
    assert len(out) == len(shipped()) + 1


def test_the_report_gives_my_suite_a_section_with_its_figures(ran, capsys):
    mine, results = ran
    assert smoke("report", results=results) == 0  # mine found again: no path repeated
    folder = results / "smoke"
    page, markdown = (folder / "report.html").read_text(), (folder / "report.md").read_text()
    figures = sorted((folder / "figures" / "mine").glob("*.png"))
    assert figures and all(p.stat().st_size > 5_000 for p in figures)
    section = page[page.index('<section id="suite-mine">'):]
    section = section[:section.index("</section>")]
    assert section.count("<img src=\"data:image/png;base64,") == len(figures)
    assert 'href="#suite-mine"' in page and "## mine: My XOR check" in markdown
    assert f"figures/mine/{figures[0].name}" in markdown
    unrun = no_results(sorted(set(shipped()) - {"xor"}))
    assert markdown.count(unrun) == 1 and unrun in page
    assert "## gan:" not in markdown and 'id="suite-gan"' not in page


def test_a_second_file_of_a_name_the_folder_holds_is_refused_naming_both(ran, tmp_path, capsys):
    mine, results = ran
    namesakes = [suite_file(tmp_path / "copy"), suite_file(tmp_path / "variant", "xor")]
    for namesake, first in zip(namesakes, [mine, suites_dir() / "xor.toml"]):
        for command in ("run", "claims", "report"):
            assert smoke(command, namesake, results=results) == 2
            (line,) = capsys.readouterr().err.splitlines()
            assert str(namesake) in line and str(first) in line, line


def test_two_given_files_of_one_name_are_refused_before_any_work(tmp_path, capsys):
    files = [suite_file(tmp_path / "a"), suite_file(tmp_path / "b")]
    assert smoke("run", *files, results=tmp_path / "results") == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert all(str(path) in line for path in files) and not (tmp_path / "results").exists()


def test_an_edited_copy_of_a_shipped_suite_stands_for_its_name_in_its_own_folder(tmp_path,
                                                                               capsys):
    variant = suite_file(tmp_path / "variant", "xor")
    results = tmp_path / "results"
    assert smoke("run", variant, results=results) == 0
    assert json.loads((results / "smoke" / "suites.json").read_text()) == {"xor": str(variant)}
    capsys.readouterr()
    assert smoke("claims", results=results) == 1
    out = capsys.readouterr().out
    assert "reproduced xor/phi-separates-alone" in out and "xor/raw-at-most-75" not in out
    assert smoke("run", "xor", results=results) == 2  # the shipped one would mix with it
    assert str(variant) in capsys.readouterr().err


def test_results_of_a_suite_file_gone_are_left_out_with_a_warning(tmp_path, capsys):
    mine = suite_file(tmp_path / "elsewhere")
    results = tmp_path / "results"
    assert smoke("run", mine, results=results) == 0
    mine.unlink()
    capsys.readouterr()
    assert smoke("report", results=results) == 0
    err = capsys.readouterr().err
    assert f"warning: mine: its suite file {mine} is gone; its results are left out" in err
    assert 'id="suite-mine"' not in (results / "smoke" / "report.html").read_text()


def test_an_edited_claim_is_seen_by_the_next_claims_and_report(tmp_path, capsys):
    """Claims are evaluated afresh from the suite file: never a verdict left from before."""
    mine, results = suite_file(tmp_path / "elsewhere"), tmp_path / "results"
    assert smoke("run", mine, results=results) == 0
    edit(mine, ("value = 1.0", "value = 0.5"))
    capsys.readouterr()
    assert smoke("claims", mine, results=results) == 1
    assert "not reproduced mine/phi-separates-alone" in capsys.readouterr().out
    assert smoke("report", results=results) == 0
    assert "not reproduced" in (results / "smoke" / "claims.csv").read_text()


def test_my_suite_bearing_a_shipped_name_gets_its_own_figures_and_claims_gone_or_not(tmp_path,
                                                                                     capsys):
    """Its runs never meet the shipped five_points' figure code or claims: while its file is there
    it stands for the name; once gone, its results are left out and the shipped namesake, which
    would mix with them, is refused."""
    mine, results = suite_file(tmp_path / "elsewhere", "five_points"), tmp_path / "results"
    assert smoke("run", mine, results=results) == 0
    assert smoke("report", results=results) == 0
    folder = results / "smoke"
    assert [p.name for p in (folder / "figures" / "five_points").glob("*.png")] == [
        "xor_decision_regions.png"]
    assert "five_points | phi-separates-alone" in (folder / "report.md").read_text()
    mine.unlink()
    capsys.readouterr()
    assert smoke("report", results=results) == 0
    assert "five_points: its suite file" in capsys.readouterr().err
    assert 'id="suite-five_points"' not in (folder / "report.html").read_text()
    assert smoke("report", "five_points", results=results) == 2
    assert str(mine) in capsys.readouterr().err
