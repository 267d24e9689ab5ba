"""Suites that read another suite's run (``needs``): resolution and its errors, the order runs
take, a producer run first when it is missing, its files found by the consumer, and a failed
producer turning into a clear failed record rather than a crash."""

import shutil
import sys
import types

import pandas as pd
import pytest

from conftest import copy_suite, edit, write_suite
from dlrepro.cli import main
from dlrepro import experiment as contract
from dlrepro import runners
from dlrepro.layout import Results
from dlrepro.planning import plan, waves
from dlrepro.errors import Refused
from dlrepro.project import suites_dir
from dlrepro.suite import load


def test_bundled_consumers_read_the_handout_cnn_of_the_same_profile():
    for name in ("autoencoder", "gan"):
        for profile in ("smoke", "quick", "full"):
            for spec in load(suites_dir() / f"{name}.toml").runs(profile):
                producer = spec.needs["classifier"]
                found = (producer.suite, producer.profile, producer.params["model"])
                assert found == ("mnist_cnn", profile, "cnn_handout")
                assert producer.seed == 0


def test_a_changed_producer_changes_the_consumers_run_ids(needs_chain):
    before = {s.run_id for s in load(needs_chain / "autoencoder.toml").runs("smoke")}
    edit(needs_chain / "mnist_cnn.toml", ("epochs = 1,", "epochs = 2,"))
    assert before.isdisjoint(s.run_id for s in load(needs_chain / "autoencoder.toml").runs("smoke"))


@pytest.mark.parametrize("change, key, message", [
    (('suite = "mnist_cnn"', 'suite = "no_such_suite"'), "needs.classifier.suite", "no suite file"),
    (('model = "cnn_handout" }', 'model = "cnn_crm" }'), "needs.classifier.where",
     "picks 0 configurations"),
    (('where = { model = "cnn_handout" }', "where = {}"), "needs.classifier.where",
     "picks 4 configurations"),
    (('where = { model = "cnn_handout" }', 'where = { depth = 3 }'), "needs.classifier.where.depth",
     "unknown parameter"),
])
def test_bad_needs_name_the_file_and_key(needs_chain, change, key, message):
    consumer = edit(needs_chain / "autoencoder.toml", change)
    if change[1] == "where = {}":  # against the whole grid, not the cut one
        copy_suite("mnist_cnn", needs_chain)
    with pytest.raises(Refused) as err:
        load(consumer)
    assert err.value.key == key and message in str(err.value)


def test_a_dependency_cycle_is_an_error(needs_chain):
    edit(needs_chain / "mnist_cnn.toml",
         ("[grid]", '[needs]\nfeatures = { suite = "autoencoder" }\n\n[grid]'))
    cycle = "circular dependency: autoencoder → mnist_cnn → autoencoder"
    with pytest.raises(Refused, match=cycle):
        load(needs_chain / "autoencoder.toml")


@pytest.mark.slow  # MNIST training
def test_the_producer_runs_first_then_is_reused(needs_chain_run, tmp_path):
    assert "to run first, another suite reads its files" in needs_chain_run.said
    results = shutil.copytree(needs_chain_run.results, tmp_path / "results")  # edited below
    store = Results(results, "smoke")
    [spec] = load(needs_chain_run.suites / "autoencoder.toml").runs("smoke")
    assert store.done(spec.needs["classifier"]) and store.done(spec)
    record = store.get(spec)
    assert {m["metric"] for m in record["metrics"]} >= {"test_mse", "midpoint_confidence"}
    assert record["finished_at"] > store.get(spec.needs["classifier"])["finished_at"]
    assert record["needs"] == {"classifier": spec.needs["classifier"].run_id}  # provenance

    # Cached: nothing to plan. The producer's files lost: the producer is planned again, before.
    assert plan([spec], store) == []
    shutil.rmtree(store.artifact_dir(spec.needs["classifier"]))
    store.put({**record, "status": "failed"})
    assert [s.suite for s in plan([spec], store)] == ["mnist_cnn", "autoencoder"]
    in_waves = [[s.suite for s in wave] for wave in waves(plan([spec], store))]
    assert in_waves == [["mnist_cnn"], ["autoencoder"]]


def test_a_failed_producer_fails_its_consumers_with_the_reason(needs_chain, mnist_dir, tmp_path):
    [spec] = load(needs_chain / "autoencoder.toml").runs("smoke")
    store = Results(tmp_path, "smoke")
    seen = []
    # No MNIST here: the producer fails, the consumer is not run and says why.
    runners.run(plan([spec], store), store, runners.load_runner("local"),
                data_dir=tmp_path / "empty", on_record=seen.append)
    statuses = [(r["suite"], r["status"]) for r in seen]
    assert statuses == [("mnist_cnn", "failed"), ("autoencoder", "failed")]
    assert "needs 'classifier': run mnist_cnn" in seen[1]["error"]
    assert "did not finish ok" in seen[1]["error"]


def _chain(folder, experiment_of_c: dict[str, str]):
    """Suites a → b → c in ``folder``, one run each at every profile: a and b are XOR runs, c
    ``experiment_of_c`` (experiment, its grid); each reads the next one's files and ignores them."""
    profiles = "".join(f"\n[profiles.{p}]\nseeds = [0]\n" for p in ("smoke", "quick", "full"))
    for name, needs, experiment, grid in [
        ("a", "b", "xor", 'model = ["logistic"]\nfeatures = ["phi"]\ncoding = ["01"]'),
        ("b", "c", "xor", 'model = ["logistic"]\nfeatures = ["raw"]\ncoding = ["01"]'),
        ("c", None, *experiment_of_c),
    ]:
        need = f'\n[needs]\nupstream = {{ suite = "{needs}" }}\n' if needs else ""
        write_suite(folder, f'name = "{name}"\ntitle = "link {name} of a chain"\n'
                    f'experiment = "{experiment}"\nsource = {{ seed = "002", slide = "chain" }}\n'
                    f"{need}\n[grid]\n{grid}\n{profiles}", name)
    return folder / "a.toml"


GRADIENT_DESCENT = ("gradient_descent", 'mode = ["sweep"]')


def test_a_chain_of_three_merges_every_link_into_the_tables(tmp_path):
    """a needs b needs c: running a runs c and b first, and c's rows are in the tables."""
    a = _chain(tmp_path, GRADIENT_DESCENT)
    results = tmp_path / "results"
    assert main(["run", str(a), "--profile", "smoke", "--results", str(results)]) == 0
    runs = pd.read_parquet(results / "smoke" / "runs.parquet")
    assert sorted(runs["suite"]) == ["a", "b", "c"] and (runs["status"] == "ok").all()


def test_a_broken_link_two_needs_away_is_refused_before_any_run(tmp_path, monkeypatch, capsys):
    """c's experiment breaks the contract: exit 2 naming c's file, not a failed run of it."""
    a = _chain(tmp_path, GRADIENT_DESCENT)
    broken = types.ModuleType("dlrepro.experiments.gradient_descent.run")
    broken.train = lambda params, ctx: None  # neither run nor run_seeds: the contract is broken
    monkeypatch.setitem(sys.modules, broken.__name__, broken)
    # the declaration is loaded once per process: forget the implementation it checked
    monkeypatch.delitem(contract.get("gradient_descent").__dict__, "implementation", raising=False)
    results = tmp_path / "results"
    assert main(["run", str(a), "--profile", "smoke", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'c.toml'}: experiment: experiment 'gradient_descent' is broken" in err
    assert not list(results.glob("smoke/records/*/*.json"))
