"""Suite files: every bundled suite is valid; every kind of bad input is one clear line, exit 2, nothing written."""

import textwrap

import pytest

from dlrepro.cli import main
from dlrepro.suite import PROFILES, load, resolve, run_id, suites_dir

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
    [metrics]
    accuracy = { better = "higher" }
""")


def write_suite(tmp_path, text, name="bad"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace("NAME", name))
    return path


@pytest.mark.parametrize("suite", [p.stem for p in sorted(suites_dir().glob("*.toml"))])
def test_bundled_suites_load_and_expand(suite):
    loaded = load(suites_dir() / f"{suite}.toml")
    for profile in PROFILES:
        specs = loaded.runs(profile)
        assert specs, profile
        assert len({s.run_id for s in specs}) == len(specs), "run ids must be unique within a profile"


def test_grid_expansion_and_ties(tmp_path):
    text = VALID.replace('coding = ["pm1"]', 'pair = [{ coding = "pm1", lr = 1.0 }, { coding = "01", lr = 0.5 }]')
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


BAD = {
    "malformed toml": ("name = ", ""),
    "unknown top-level key": ("colour = 'red'\n" + VALID, "colour"),
    "wrong type": (VALID.replace("seeds = [0, 1]", 'seeds = "zero"'), "profiles.quick.seeds"),
    "unknown experiment": (VALID.replace('experiment = "xor"', 'experiment = "nope"'), "experiment"),
    "unknown parameter in grid": (VALID.replace('coding = ["pm1"]', 'coding = ["pm1"]\nwidth = [3]'), "grid.0.width"),
    "unknown parameter in profile": (VALID.replace("seeds = [0, 1, 2]", "seeds = [0]\nparameters = { epochz = 3 }"),
                                     "profiles.full.parameters.epochz"),
    "bad parameter value": (VALID.replace('coding = ["pm1"]', 'coding = ["ternary"]'), "grid.0.coding"),
    "empty grid": (VALID.replace('[[grid]]\nmodel = ["perceptron"]\nfeatures = ["raw", "phi"]\ncoding = ["pm1"]\n', "grid = {}\n"), "grid"),
    "empty axis": (VALID.replace('features = ["raw", "phi"]', "features = []"), "grid.0.features"),
    "unknown profile": (VALID + "[profiles.huge]\nseeds = [0]\n", "profiles.huge"),
    "missing profile": (VALID.replace("[profiles.full]\nseeds = [0, 1, 2]\n", ""), "profiles"),
    "claim on an undeclared metric": (VALID + '[[claims]]\nid = "c"\ntext = "t"\nkind = "threshold"\nmetric = "loss"\nop = "<"\nvalue = 1\n', "claims.0.metric"),
    "unknown claim kind": (VALID + '[[claims]]\nid = "c"\ntext = "t"\nkind = "vibes"\nmetric = "accuracy"\n', "claims.0"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_clear_line_and_exit_2(case, tmp_path, capsys):
    text, key = BAD[case]
    path = write_suite(tmp_path, text)
    results = tmp_path / "results"
    assert main(["run", str(path), "--profile", "smoke", "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and f": {key}" in err, err
    assert not results.exists(), "bad input must write nothing"


def test_unknown_suite_name_lists_known(capsys, tmp_path):
    assert main(["run", "nonexistent", "--results", str(tmp_path)]) == 2
    assert "known suites: " in capsys.readouterr().err


def test_unknown_profile_on_the_command_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "xor", "--profile", "huge"])
    assert exit_.value.code == 2


def test_resolve_all_is_every_file_in_suites():
    assert [s.name for s in resolve([])] == sorted(p.stem for p in suites_dir().glob("*.toml"))
