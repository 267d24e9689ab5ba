"""``--set KEY=VALUE`` sets a parameter (or the seeds) on every run, a list sweeping it; ``--only
KEY=VALUE`` keeps the runs with that value. Both are validated like the file, cached like any run,
and kept out of the profile's own tables and report; every hint they print works when followed."""

import json
import re
import shlex

import pandas as pd
import pytest

from dlrepro.cli import main
from dlrepro.errors import Refused
from dlrepro.overrides import Verb, describe_overrides, parse_override
from dlrepro.project import resolve
from dlrepro.formatting import ClaimStatus


def test_an_overridden_parameter_runs_and_the_tables_say_so(xor_smoke):
    runs = pd.read_parquet(xor_smoke / "smoke+epochs=7" / "runs.parquet")
    trained = runs["model"] != "worked_neuron"  # the worked neuron trains nothing: no epochs
    assert (
        len(runs) == 9
        and (runs.loc[trained, "epochs"] == 7).all()
        and (runs["status"] == "ok").all()
    )
    metrics = pd.read_parquet(xor_smoke / "smoke+epochs=7" / "metrics.parquet")
    assert set(metrics["run_id"]) == set(runs["run_id"])


def test_overridden_runs_never_reach_the_profiles_tables_claims_or_report(xor_smoke, capsys):
    plain = xor_smoke / "smoke"
    before = {
        name: (plain / name).read_bytes() for name in ("runs.csv", "metrics.csv", "claims.csv")
    }
    assert (pd.read_parquet(plain / "runs.parquet")["epochs"].dropna() == 30).all()
    assert main(["report", "--profile", "smoke", "--results", str(xor_smoke)]) == 0
    assert (
        "--set" not in (plain / "report.md").read_text()
        and "epochs=7" not in (plain / "report.html").read_text()
    )
    assert before == {name: (plain / name).read_bytes() for name in ("runs.csv", "metrics.csv")} | {
        "claims.csv": before["claims.csv"]
    }
    assert (
        main(["report", "--profile", "smoke", "--set", "epochs=7", "--results", str(xor_smoke)])
        == 0
    )
    report = (xor_smoke / "smoke+epochs=7" / "report.md").read_text()
    assert (
        report.startswith("# dlrepro report — profile `smoke` with `--set epochs=7`")
        and "## xor" in report
    )
    assert "## gan" not in report  # an override's report is about the suites run with it
    assert (
        "with <code>--set epochs=7</code>"
        in (xor_smoke / "smoke+epochs=7" / "report.html").read_text()
    )


def test_overridden_runs_are_cached(xor_smoke, capsys):
    assert (
        main(
            [
                "run",
                "xor",
                "--profile",
                "smoke",
                "--set",
                "epochs=7",
                "--results",
                str(xor_smoke),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "Nothing to run" in err and "dlrepro report --profile smoke --set epochs=7" in err


def test_a_claim_whose_runs_an_override_removed_is_not_run(tmp_path):
    assert (
        main(
            [
                "run",
                "xor",
                "--profile",
                "smoke",
                "--set",
                "features=raw",
                "--results",
                str(tmp_path),
            ]
        )
        == 0
    )
    runs = pd.read_parquet(tmp_path / "smoke+features=raw" / "runs.parquet")
    assert set(runs["features"].dropna()) == {"raw"} and "worked_neuron" in set(runs["model"])
    claims = pd.read_csv(tmp_path / "smoke+features=raw" / "claims.csv").set_index("claim")[
        "status"
    ]
    claims = claims.map(ClaimStatus)
    assert claims["phi-separates"] == ClaimStatus.NOT_RUN
    assert claims["raw-at-most-75"] == ClaimStatus.REPRODUCED
    assert ClaimStatus.NOT_REPRODUCED not in set(claims)


def test_a_list_sweeps_an_axis_across_every_grid_once():
    (suite,) = resolve(["autoencoder"], [parse_override("d=[3,5,7]")])
    specs = suite.runs(
        "quick"
    )  # two grids (every model, and PCA at d = 30) now ask for the same PCA runs
    assert {s.params["d"] for s in specs} == {3, 5, 7} and len(specs) == 9


def test_set_sets_a_tied_parameter_on_every_run_and_only_selects_the_entries():
    (suite,) = resolve(["mnist_cnn"], [parse_override("model=cnn_crm")])
    specs = suite.runs("smoke")  # the handout's entry too, with its own lr and batch size
    assert {s.params["model"] for s in specs} == {"cnn_crm"} and len(specs) == 4
    assert sorted({s.params["lr"] for s in specs}) == [0.01, 0.1]
    (suite,) = resolve(["mnist_cnn"], only=[parse_override("model=cnn_crm", Verb.ONLY)])
    specs = suite.runs("smoke")
    assert {(s.params["model"], s.params["lr"]) for s in specs} == {("cnn_crm", 0.01)}
    assert sorted(s.params["batch_size"] for s in specs) == [10, 32, 100]


def test_only_keeps_the_tied_entries_settings_and_a_list_keeps_any_of_its_values():
    (suite,) = resolve(["autoencoder"], only=[parse_override("model=cnn", Verb.ONLY)])
    specs = suite.runs("quick")  # the CNN's own entry: no CNN at PCA's d = 30
    assert {s.params["model"] for s in specs} == {"cnn"} and len(specs) == 5
    assert {(s.params["train_size"], s.params["epochs"]) for s in specs} == {(20000, 1)}
    (suite,) = resolve(["autoencoder"], only=[parse_override("model=[pca,cnn]", Verb.ONLY)])
    assert {s.params["model"] for s in suite.runs("quick")} == {"pca", "cnn"}
    assert len(suite.runs("quick")) == 11
    (suite,) = resolve(["autoencoder"], [parse_override("model=cnn")])
    assert {s.params["model"] for s in suite.runs("quick")} == {"cnn"}  # d = 30 too: set is set
    (suite,) = resolve(["autoencoder"], [parse_override("epochs=2")])
    trained = [s for s in suite.runs("quick") if s.params["model"] != "pca"]
    assert trained and {s.params["epochs"] for s in trained} == {2}


def test_a_list_sweeps_a_tied_parameter_across_every_entry():
    (suite,) = resolve(["five_points"], [parse_override("hidden=[5,10]")])
    tied = [s for s in suite.runs("smoke") if s.params["task"] != "poly"]
    assert tied and {s.params["hidden"] for s in tied} == {5, 10}
    assert suite.swept == ("hidden",)


def test_a_list_for_a_plain_parameter_becomes_an_axis_and_seeds_can_be_set():
    (suite,) = resolve(["xor"], [parse_override("lr=[0.5, 2.0]"), parse_override("seeds=[4]")])
    specs = suite.runs("smoke")
    assert {s.params.get("lr") for s in specs} == {0.5, 2.0, None} and {s.seed for s in specs} == {
        4
    }
    assert describe_overrides([("seeds", [4]), ("lr", [0.5, 2.0])]) == "lr=[0.5,2.0],seeds=[4]"


def test_the_needed_classifier_is_trained_on_the_runs_own_dataset():
    (suite,) = resolve(["autoencoder"], [parse_override("dataset=fashion_mnist")])
    specs = suite.runs("quick")
    assert {s.params["dataset"] for s in specs} == {"fashion_mnist"}
    assert {s.needs["classifier"].params["dataset"] for s in specs} == {"fashion_mnist"}
    (plain,) = resolve(["autoencoder"])
    assert {s.needs["classifier"].run_id for s in plain.runs("quick")}.isdisjoint(
        {s.needs["classifier"].run_id for s in specs}
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["xor", "--set", "no_such_key=1"],
            "xor.toml: --set no_such_key: unknown parameter of experiment 'xor'",
        ),
        (
            ["xor", "--set", "epochs=seven"],
            "xor.toml: --set epochs: Input should be a valid integer",
        ),
        (
            ["xor", "--set", "epochs=0"],
            "xor.toml: --set epochs: Input should be greater than or equal to 1",
        ),
        (["xor", "--set", "epochs"], "--set: 'epochs' is not KEY=VALUE"),
        (["xor", "--set", "lr=[1,"], "--set: lr: '[1,' is not a TOML value"),
        (
            ["autoencoder", "--only", "d=30"],
            "autoencoder.toml: --only d: selects no run at profile smoke; its runs there have "
            "d=2/32",
        ),
        (  # the worked neuron has no features: not listed as None
            ["xor", "--only", "features=raw", "--only", "model=worked_neuron"],
            "its runs there have features=raw/phi, model=perceptron/logistic/worked_neuron",
        ),
        (
            ["autoencoder", "--only", "model=cnnn"],
            "autoencoder.toml: --only model: Input should be 'pca', 'linear' or 'cnn'",
        ),
        (
            ["xor", "--only", "no_such_key=1"],
            "xor.toml: --only no_such_key: unknown parameter of experiment 'xor'",
        ),
        (["xor", "--only", "model"], "--only: 'model' is not KEY=VALUE"),
        (
            ["gradient_descent", "--set", "dataset=fashion_mnist"],
            "gradient_descent.toml: --set dataset: unknown parameter",
        ),
        (
            ["autoencoder", "--set", "dataset=cifar10"],
            "autoencoder.toml: --set dataset: model 'cnn_handout' takes 28 × 28 grey images",
        ),
    ],
)
def test_a_bad_override_is_refused_before_any_work(tmp_path, capsys, args, message):
    assert main(["run", *args, "--profile", "smoke", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def _suggested(text: str, prefix: str) -> list[str]:
    """The command a message suggests, as the arguments after ``dlrepro``."""
    found = re.search(rf"(?:`|theirs: )dlrepro ({prefix}[^`\n]*)", text)
    assert found, text
    return shlex.split(found[1])


def test_every_hint_for_overrides_works_when_followed(tmp_path, capsys):
    """A report of overrides not yet run names the run that makes them; that run names the
    report; a claim spread over a sweep names the --only that fixes it."""
    swept = ["--set", "eta=[0.1,0.3]", "--set", "steps=[10,20]"]
    results = ["--results", str(tmp_path)]
    assert main(["report", "--profile", "smoke", *swept, *results]) == 2
    run = _suggested(capsys.readouterr().err, "run ")
    assert run[:2] == ["run", "gradient_descent"] and "--set" in run
    assert main([*run, *results]) == 0
    out, err = capsys.readouterr()
    runs = pd.read_parquet(tmp_path / "smoke+eta=_0.1,0.3_,steps=_10,20_" / "runs.parquet")
    assert len(runs) == 13 and (runs["status"] == "ok").all()  # 8 + 4 + the sweep (reads neither)
    assert main([*_suggested(err, "report "), *results]) == 0
    fix = re.search(r"basins-2d: measured selects 4 configurations \(eta=0.1/0.3, "
                    r"steps=10/20\) where --set swept eta/steps: fix it with (--only \S+ "
                    r"--only \S+);", out)
    assert fix, out
    assert main([*run, *shlex.split(fix[1]), *results]) == 0
    out, err = capsys.readouterr()
    assert "basins-2d: measured" in out and "selects" not in out
    assert main([*_suggested(err, "report "), *results]) == 0
    capsys.readouterr()
    assert main(["claims", "--profile", "smoke", *swept, *shlex.split(fix[1]), *results]) in (0, 1)
    assert "selects" not in capsys.readouterr().out


def test_a_sweep_of_a_parameter_the_claims_fix_leaves_them_not_run(tmp_path, capsys):
    args = ["run", "gradient_descent", "--profile", "smoke", "--results", str(tmp_path)]
    assert main([*args, "--set", "eta=[0.1,0.3]"]) == 0
    folder = tmp_path / "smoke+eta=_0.1,0.3_"
    assert len(pd.read_parquet(folder / "runs.parquet")) == 7  # trajectories 2 × 2, basins 2, sweep
    claims = pd.read_csv(folder / "claims.csv", keep_default_na=False).set_index("claim")
    status = claims["status"].map(ClaimStatus)
    assert status["eta-0125-from-0578-global"] == ClaimStatus.NOT_RUN  # η = 0.125 is not run
    assert claims.loc["eta-0125-from-0578-global", "reason"] == ("no run here has eta=0.125 (its "
                                                                 "runs have eta=0.1/0.3)")
    assert status["basins-2d"] == ClaimStatus.NOT_RUN  # both η: a mean over two descents
    assert claims.loc["basins-2d", "reason"].startswith("selects 2 configurations (eta=0.1/0.3)")
    assert status["oscillation-onset-theory"] == ClaimStatus.REPRODUCED  # the sweep reads no η


@pytest.mark.parametrize("sweep, judged", [
    # Held-out error at d = 2 against d = 4 and d = 20: each side fixes the degree; the
    # classifier's claim spans the swept steps.
    (["five_points", "--set", "degree=[1,2,3,4,20]", "--set", "steps=[300,1000]", "--only",
      "task=[poly,classify]"], ["loo-small-d-beats-d4", "loo-small-d-beats-d20"]),
    (["xor", "--set", "epochs=[5,30]"], ["worked-neuron"]),  # the worked neuron trains nothing
])
def test_a_sweep_judges_each_claim_that_fixes_it_on_every_side_and_every_hint_works(
        tmp_path, capsys, sweep, judged):
    run = ["run", *sweep, "--profile", "smoke", "--results", str(tmp_path)]
    assert main(run) == 0
    out = capsys.readouterr().out
    for claim in judged:
        assert re.search(rf"^reproduced \w+/{claim}: measured \d", out, re.M), out
    hints = re.findall(r"^not run \w+/(\S+): measured selects .* fix it with ((?:--only \S+ ?)+);",
                       out, re.M)
    assert hints, out
    for claim, fix in hints:
        main([*run, *shlex.split(fix)])
        assert re.search(rf"^(?:reproduced|not reproduced) \w+/{claim}: measured -?\d",
                         capsys.readouterr().out, re.M), (claim, fix)


def test_a_bare_word_is_a_string_and_toml_values_keep_their_type():
    assert parse_override("model=pca") == ("model", "pca")
    assert parse_override("lr=1e-3") == ("lr", 0.001) and parse_override("shuffle=true") == (
        "shuffle",
        True,
    )
    assert parse_override("d=[3, 5]") == ("d", [3, 5])
    with pytest.raises(Refused):
        parse_override("=3")


@pytest.mark.slow  # every suite at smoke, and the MNIST ones on Fashion-MNIST
def test_generalise_puts_each_claims_verdicts_on_mnist_and_fashion_mnist_side_by_side(
    smoke, capsys
):
    results, plain = smoke
    before = sorted(pd.read_parquet(plain / "runs.parquet")["run_id"])
    assert main(["generalise", "--profile", "smoke", "--results", str(results)]) == 0
    assert (
        "Nothing to run" in capsys.readouterr().err
    )  # the MNIST side: the profile's own runs, cached
    other = results / "smoke+dataset=fashion_mnist"
    runs = pd.read_parquet(other / "runs.parquet")
    assert set(runs["suite"]) == {"autoencoder", "gan", "layer_maps", "mnist_cnn", "mnist_mlp"}
    assert (runs["dataset"] == "fashion_mnist").all() and (runs["status"] == "ok").all()
    table = pd.read_csv(other / "generalisation.csv", keep_default_na=False)
    mnist = pd.read_csv(plain / "claims.csv", keep_default_na=False)
    mnist = mnist[mnist["suite"].isin(runs["suite"])]
    assert sorted(zip(table["suite"], table["claim"])) == sorted(
        zip(mnist["suite"], mnist["claim"])
    )
    assert set(table["mnist"].map(ClaimStatus)) == {ClaimStatus.REPRODUCED}
    assert set(table["other"].map(ClaimStatus)) <= {
        ClaimStatus.REPRODUCED,
        ClaimStatus.NOT_REPRODUCED,
        ClaimStatus.NOT_RUN,
    }
    assert (table["changed"] == (table["mnist"] != table["other"])).all()
    measured = [json.loads(values) for values in table["values_mnist"]]  # numbers, not text
    assert all(values and all(isinstance(v, float) for v in values) for values in measured)
    assert (
        sorted(pd.read_parquet(plain / "runs.parquet")["run_id"]) == before
    )  # nothing of the other set there


def test_a_range_sweeps_its_values_in_a_folder_named_by_its_text(tmp_path, capsys):
    results = ["--results", str(tmp_path)]
    assert main(["run", "five_points", "--profile", "smoke", "--set", "degree=range(1, 4)",
                 *results]) == 0
    err = capsys.readouterr().err
    runs = pd.read_parquet(tmp_path / "smoke+degree=range_1,4_" / "runs.parquet")
    assert sorted(runs.loc[runs["task"] == "poly", "degree"]) == [1, 2, 3]
    assert (runs["status"] == "ok").all()
    report = _suggested(err, "report ")
    assert report[-2:] == ["--set", "degree=range(1,4)"]  # quoted for the shell: followed, it works
    assert main([*report, *results]) == 0
    assert "`--set degree=range(1,4)`" in (
        tmp_path / "smoke+degree=range_1,4_" / "report.md").read_text()


def test_linspace_gives_evenly_spaced_numbers_stop_included():
    key, values = parse_override("lr=linspace(0.1, 0.5, 5)")
    assert (key, values) == ("lr", [0.1, 0.2, 0.3, 0.4, 0.5])
    assert describe_overrides([(key, values)]) == "lr=linspace(0.1,0.5,5)"
    assert parse_override("d=range(10,0,-4)")[1] == [10, 6, 2]
