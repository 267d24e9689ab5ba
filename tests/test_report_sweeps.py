"""A sweep's report draws what ran: the slide's figures at the swept values, and beside them the
suite's declared metrics against each swept parameter."""

import struct
from pathlib import Path

import pytest

from dlrepro.cli import main


def width(png: Path) -> int:
    return struct.unpack(">I", png.read_bytes()[16:20])[0]


def swept(tmp_path: Path, suite: str, *flags: str) -> Path:
    """The figures folder of the suite's report after a run with ``flags`` at smoke."""
    for command in ("run", "report"):
        assert main([command, suite, "--profile", "smoke", "--results", str(tmp_path),
                     *flags]) == 0
    (folder,) = tmp_path.glob("smoke+*")
    assert f"figures/{suite}/against_" in (folder / "report.md").read_text()
    return folder / "figures" / suite


@pytest.mark.parametrize("degrees", ["[1,3,5,9]", "[1,2,3,4,20]"])
def test_five_points_draws_a_fit_per_swept_degree_and_the_errors_against_it(tmp_path, degrees):
    figures = swept(tmp_path, "five_points", "--set", f"degree={degrees}", "--only", "task=poly")
    panels_in_a_row = min(degrees.count(",") + 1, 4)  # five wrap into two rows
    assert width(figures / "five_points_polynomials.png") == 462 * panels_in_a_row
    assert width(figures / "against_degree.png") > 900  # training and held-out error


def test_xor_draws_its_regions_and_its_metrics_against_the_swept_rate(tmp_path):
    figures = swept(tmp_path, "xor", "--set", "lr=[0.1,1.0]")
    assert {p.name for p in figures.glob("*.png")} == {"xor_decision_regions.png",
                                                       "against_lr.png"}


def test_small_facts_draws_each_swept_depth(tmp_path):
    figures = swept(tmp_path, "small_facts", "--set", "depth=[5,12]", "--only", "fact=vanishing")
    assert {p.name for p in figures.glob("*.png")} == {"vanishing_gradients.png",
                                                       "against_depth.png"}


def test_gradient_descent_draws_the_basins_of_each_swept_step_size(tmp_path):
    figures = swept(tmp_path, "gradient_descent", "--set", "eta=[0.1,0.3]", "--only", "mode=basins")
    assert width(figures / "gd_basins.png") == 2 * 715
