"""Suite files: every bundled suite is valid and expands as written (bad ones:
test_bad_input.py)."""

import textwrap

import pytest

from conftest import write_suite
from dlrepro.cli import main
from dlrepro.schema import PROFILES
from dlrepro.project import resolve, suites_dir
from dlrepro.suite import load, run_id

VALID = textwrap.dedent("""
    name = "NAME"
    title = "t"
    experiment = "xor"
    source = { seed = "002", slide = "ou exclusif" }
    [[grid]]
    model = ["perceptron"]
    features = ["raw", "phi"]
    coding = ["pm1"]
    [profiles.smoke]
    seeds = [0]
    [profiles.quick]
    seeds = [0, 1]
    [profiles.full]
    seeds = [0, 1, 2]
""")


@pytest.mark.parametrize("suite", [p.stem for p in sorted(suites_dir().glob("*.toml"))])
def test_bundled_suites_load_and_expand(suite):
    loaded = load(suites_dir() / f"{suite}.toml")
    for profile in PROFILES:
        specs = loaded.runs(profile)
        assert specs, profile
        assert len({s.run_id for s in specs}) == len(specs), "run ids: unique within a profile"


def test_grid_expansion_and_ties(tmp_path):
    text = VALID.replace('coding = ["pm1"]',
                         'pair = [{ coding = "pm1", lr = 1.0 }, { coding = "01", lr = 0.5 }]')
    specs = load(write_suite(tmp_path, text, "tied")).runs("quick")
    # 2 features × 2 tied (coding, lr) pairs × 2 seeds
    assert len(specs) == 8
    assert {(s.params["coding"], s.params["lr"]) for s in specs} == {("pm1", 1.0), ("01", 0.5)}


def test_run_id_is_deterministic_and_sensitive():
    args = ("xor", "xor", "abc", {"model": "perceptron", "lr": 1.0}, 0, {})
    assert run_id(*args) == run_id(*args)
    assert run_id(*args) != run_id("xor", "xor", "abc", {"model": "perceptron", "lr": 0.5}, 0, {})
    assert run_id(*args) != run_id("xor", "xor", "abc", {"model": "perceptron", "lr": 1.0}, 1, {})
    assert run_id(*args) != run_id("xor", "xor", "abd", {"model": "perceptron", "lr": 1.0}, 0, {})
    # a run that reads another run's files changes with it
    assert run_id(*args[:-1], {"model": "1"}) != run_id(*args[:-1], {"model": "2"})


def test_unknown_suite_name_lists_known(capsys, tmp_path):
    assert main(["run", "nonexistent", "--results", str(tmp_path)]) == 2
    assert "known suites: " in capsys.readouterr().err


def test_resolve_all_is_every_file_in_suites():
    assert [s.name for s in resolve([])] == sorted(p.stem for p in suites_dir().glob("*.toml"))
