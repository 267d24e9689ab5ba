"""The Ray runner on a multi-node cluster simulated on this machine (the session's ``cluster``,
tests/simulated_cluster.py: loopback only, token authentication, no disk shared with the driver):
a head without CPUs, two CPU nodes and one node with a fake GPU."""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from dlrepro.cli import main
from dlrepro.project import suites_dir
from dlrepro.suite import load
from simulated_cluster import CLUSTER_ENV

from conftest import copy_suite, metrics_of, untimed

pytestmark = pytest.mark.slow  # Ray: a simulated multi-node cluster

ROOT = suites_dir().parent


def local_metrics(suites: list[Path], tmp_path: Path, *args: str) -> pd.DataFrame:
    """The metrics of the same runs on the local runner."""
    results = tmp_path / "local"
    assert main(["run", *map(str, suites), "--profile", "smoke", "--results", str(results),
                 *args]) == 0
    return metrics_of(results / "smoke")


def finished(driver: subprocess.Popen) -> tuple[str, str]:
    """The driver's stdout and stderr, once it ended well."""
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err[-3000:]
    return out, err


def test_the_nodes_cannot_open_the_drivers_folder(cluster):
    """The audit hook is on in the nodes' workers: without it the other tests could not catch a
    shared path."""
    (cluster.driver / "probe").write_text("the driver's")
    probe = f"""
import ray
ray.init(address={cluster.address!r})

@ray.remote(num_cpus=1)
def read():
    try:
        return open({str(cluster.driver / "probe")!r}).read()
    except FileNotFoundError as err:
        return err.strerror

print(ray.get(read.remote()))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, env=CLUSTER_ENV)
    assert out.stdout.strip() == "not on this node: it shares no disk with the driver", out.stderr


def test_runs_are_placed_by_shape_and_both_shapes_run_at_once(cluster, tmp_path):
    """Half-GPU runs share the GPU node's one GPU; CPU runs spread over the two CPU nodes, at the
    same time as the GPU runs; each record names its node, where its energy was measured, and
    every run's files and codecarbon's logs come back to the driver. (The metrics are those of
    the local runner: the tests of a lost node compare them.)"""
    suites = [copy_suite("small_facts", tmp_path, smoke="resources = { cpus = 1, gpus = 0.5 }\n"),
              copy_suite("gradient_descent", tmp_path)]
    results = cluster.driver / "placed"
    finished(cluster.dlrepro("run", *map(str, suites), "--profile", "smoke",
                             "--results", str(results)))
    runs = pd.read_parquet(results / "smoke" / "runs.parquet")
    assert (runs["status"] == "ok").all() and len(runs) == 6 + 5
    gpu, cpu = runs[runs["suite"] == "small_facts"], runs[runs["suite"] == "gradient_descent"]
    assert set(gpu["node"]) == {cluster.node_id("gpu")}
    assert gpu["worker"].str.endswith(" GPU 0").all() and gpu["worker"].nunique() == 2
    assert set(cpu["node"]) == {cluster.node_id("cpu-a"), cluster.node_id("cpu-b")}
    # At once: each suite's first run started before the other's last ended.
    assert gpu["started_at"].min() < cpu["finished_at"].max()
    assert cpu["started_at"].min() < gpu["finished_at"].max()
    for _, run in runs.iterrows():
        assert run["energy_method"].endswith(f"on Ray node {run['node']}, in worker process "
                                             f"{run['worker'].split(' pid ')[1].split()[0]}")
    logs = {p.name.split("-")[1] for p in (results / "smoke" / "energy").glob("ray-*")}
    assert logs == {cluster.node_id(n)[:12] for n in ("gpu", "cpu-a", "cpu-b")}
    # the E3 figure data, written on the CPU nodes
    assert len(list((results / "smoke" / "artifacts" / "gradient_descent").glob("*/*.npz"))) == 2


def test_a_dry_run_plans_the_sweep_on_the_cluster_it_sees(cluster, tmp_path):
    """Runs to do by resource shape, as many at once as the cluster holds (the GPU node's CPUs
    left to GPU runs), and the ETA from the profile's committed cost.csv, or that it has none."""
    def dry_run(profile: str) -> list[str]:
        out, _ = finished(cluster.dlrepro("run", "--profile", profile, "--dry-run",
                                          "--results", str(tmp_path)))
        return out.splitlines()

    where = f"On the Ray cluster at {cluster.address}: 4 node(s), 6 CPU(s), 1 GPU(s):"
    quick = dry_run("quick")
    shapes = quick[quick.index(where) + 1:-1]
    assert [line.split(": ")[0] for line in shapes] == ["  2 CPU(s) and 0 GPU(s) a run",
                                                        "  1 CPU(s) and 0 GPU(s) a run"]
    assert shapes[0].endswith(" to do, 2 at once") and shapes[1].endswith(" to do, 4 at once")
    assert re.fullmatch(r"\d+ runs to do; ETA about .+ on this cluster \(earlier runs here, "
                        r"else the committed results/baselines/quick/cost\.csv\)", quick[-1])
    full = dry_run("full")
    assert "  2 CPU(s) and 1 GPU(s) a run: 63 runs to do, 1 at once" in full
    assert full[-1].endswith("on this cluster (earlier runs here, else the committed "
                             "results/baselines/full/cost.csv)"), full[-1]
    assert not (tmp_path / "quick").exists()  # nothing written


def test_a_submitted_job_streams_its_log_stops_keeping_its_records_and_resumes(cluster,
                                                                              tmp_path):
    """`ray job submit --working-dir .` as the README has it: the job's driver runs on the head
    and its log reaches the submitter as the runs finish; `ray job stop` mid-sweep stops it as
    Ctrl-C does, every record it wrote whole; the same job submitted again runs only the rest."""
    # Nine runs of seconds each on the CPU nodes' four CPUs: time to stop the sweep midway.
    suite = copy_suite("xor", tmp_path, ("{ epochs = 30 }", "{ epochs = 40000 }"))
    results = tmp_path / "head"  # the job's driver is on the head: its disk, not this driver's
    records = results / "smoke" / "records" / "xor"
    specs = sorted(spec.run_id for spec in load(suite).runs("smoke"))

    def submit(job: str) -> subprocess.Popen:
        return cluster.ray_job(
            "submit", "--submission-id", job, "--working-dir", str(ROOT), "--runtime-env-json",
            json.dumps({"env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": "30"}}), "--",
            sys.executable, "-m", "dlrepro", "run", str(suite), "--profile", "smoke",
            "--runner", "ray", "--results", str(results))

    stopped, streamed, deadline = submit("stopped"), [], time.time() + 240
    while not streamed or not streamed[-1].startswith("[1/9] xor "):
        assert time.time() < deadline and stopped.poll() is None, "".join(streamed)[-3000:]
        streamed.append(stopped.stdout.readline())
    # The first run's line, read while the job runs: the log streams.
    out, _ = cluster.ray_job("stop", "stopped").communicate(timeout=120)
    assert "Job 'stopped' was stopped" in out, out
    streamed.append(stopped.communicate(timeout=60)[0])
    # The job server's whole log: the submitter's tail was once seen to end before its last lines.
    log, _ = cluster.ray_job("logs", "stopped").communicate(timeout=60)
    status, _ = cluster.ray_job("status", "stopped").communicate(timeout=60)
    assert "Interrupted: finished runs are kept; run again to resume." in log, (
        f"{status}\n{log[-3000:]}\nstreamed:\n{''.join(streamed)[-2000:]}")
    kept = {path.stem: path.read_bytes() for path in records.glob("*.json")}
    assert 0 < len(kept) < len(specs)
    assert all(json.loads(record)["status"] == "ok" for record in kept.values())
    runs = pd.read_parquet(results / "smoke" / "runs.parquet")  # merged as the job stopped
    assert sorted(runs["run_id"]) == sorted(kept)

    resumed = submit("resumed")
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log[-3000:]
    assert (f"xor: 9 runs at profile smoke, {len(kept)} cached, {9 - len(kept)} to run"
            in log), log[-3000:]
    runs = pd.read_parquet(results / "smoke" / "runs.parquet")
    assert sorted(runs["run_id"]) == specs and (runs["status"] == "ok").all()
    assert {run: (records / f"{run}.json").read_bytes() for run in kept} == kept  # not rerun


def test_a_lost_node_holding_a_producers_files_costs_no_run(cluster_to_break, needs_chain,
                                                           mnist_dir, tmp_path):
    """The classifier trains on some node; once its record is in, that node is lost. The
    autoencoder that reads its model still runs, elsewhere, with the files the driver kept and
    the data of its own node (the driver's data directory is not on any node)."""
    cluster = cluster_to_break
    data = cluster.driver / "data" / "MNIST" / "raw"
    shutil.copytree(mnist_dir / "MNIST" / "raw", data)
    consumer = needs_chain / "autoencoder.toml"
    results = cluster.driver / "needs"
    driver = cluster.dlrepro("run", str(consumer), "--profile", "smoke",
                             "--data-dir", str(data.parents[1]), "--results", str(results))
    records = results / "smoke" / "records" / "mnist_cnn"
    deadline = time.time() + 240
    while not list(records.glob("*.json")) and driver.poll() is None:
        assert time.time() < deadline, "the classifier did not finish"
        time.sleep(0.2)
    producer = pd.read_json(next(records.glob("*.json")), typ="series")
    lost = next(name for name, node in cluster.nodes.items() if node["id"] == producer["node"])
    cluster.remove(lost)
    finished(driver)
    runs = pd.read_parquet(results / "smoke" / "runs.parquet").set_index("suite")
    assert (runs["status"] == "ok").all()
    assert runs.loc["autoencoder", "node"] != producer["node"]
    suites = list(needs_chain.glob("*.toml"))
    local = local_metrics([consumer], tmp_path, "--data-dir", str(mnist_dir))
    pd.testing.assert_frame_equal(untimed(metrics_of(results / "smoke"), suites),
                                  untimed(local, suites), rtol=1e-5)


def test_a_node_lost_mid_sweep_loses_no_run_and_duplicates_none(cluster_to_break, tmp_path):
    """The first node seen running a group is killed: its runs are retried on the other nodes (a
    retry counted against max_retries) and the tables are those of a sweep without the fault."""
    cluster = cluster_to_break
    # Three groups, two of them long enough (a second or so) to be caught running most often;
    # without the claims that select the runs cut.
    suite = copy_suite("xor", tmp_path, ("{ epochs = 30 }", "{ epochs = 2000 }"),
                       ('model = ["perceptron", "logistic"]', 'model = ["logistic"]'),
                       ('coding = ["pm1", "01"]', 'coding = ["pm1"]'), claims=False)
    results = cluster.driver / "lost"
    driver = cluster.dlrepro("run", str(suite), "--profile", "smoke", "--results", str(results))
    deadline, lost = time.time() + 240, None
    while lost is None:
        assert driver.poll() is None and time.time() < deadline, "no run was seen running"
        lost = next((name for name in cluster.nodes if cluster.running_on(name)), None)
        time.sleep(0.05)
    lost_node = cluster.node_id(lost)
    cluster.remove(lost)
    # its worker processes may outlive the raylet by a moment and hand in the group they finish
    lost_at = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=5)).isoformat()
    _, err = finished(driver)
    # whichever group the node held: a logistic one, or on a fast machine the 0.0 s neuron
    assert re.search(r"its worker died running xor \[.+\] seed 0; retry 1/2 ran it", err), err
    runs = pd.read_parquet(results / "smoke" / "runs.parquet")
    specs = [spec.run_id for spec in load(suite).runs("smoke")]
    assert sorted(runs["run_id"]) == sorted(specs)  # complete, none twice
    assert (runs["status"] == "ok").all()
    assert len(list((results / "smoke" / "records" / "xor").glob("*.json"))) == len(specs)
    # A run on the lost node counts only if it finished as the node was lost, not after.
    assert (runs.loc[runs["node"] == lost_node, "finished_at"] < lost_at).all()
    pd.testing.assert_frame_equal(untimed(metrics_of(results / "smoke"), [suite]),
                                  untimed(local_metrics([suite], tmp_path), [suite]))


def test_runs_kept_off_the_gpu_node_go_there_once_every_other_node_is_lost(cluster_to_break,
                                                                         tmp_path):
    """Both CPU nodes lost mid-sweep: the runs without a GPU, kept off the GPU node while other
    nodes could hold them, run there rather than wait for a node that may never come (the driver
    looks when nothing came back for 10 s)."""
    cluster = cluster_to_break
    suite = copy_suite("xor", tmp_path, ("{ epochs = 30 }", "{ epochs = 40000 }"))
    results = cluster.driver / "stranded"
    driver = cluster.dlrepro("run", str(suite), "--profile", "smoke", "--results", str(results))
    deadline, cpu_nodes = time.time() + 240, ("cpu-a", "cpu-b")
    while not any(cluster.running_on(name) for name in cpu_nodes):
        assert driver.poll() is None and time.time() < deadline, "no run was seen running"
        time.sleep(0.05)
    for name in cpu_nodes:
        cluster.remove(name)
    finished(driver)
    runs = pd.read_parquet(results / "smoke" / "runs.parquet")
    assert sorted(runs["run_id"]) == sorted(spec.run_id for spec in load(suite).runs("smoke"))
    assert (runs["status"] == "ok").all()
    assert cluster.node_id("gpu") in set(runs["node"])
