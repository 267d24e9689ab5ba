"""A multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``), one per test session.

Run as a script, in a process of its own so that the test process keeps no Ray state (Ray reads
its token settings once, at import):

    python tests/simulated_cluster.py TEMP_DIR NODE_ENV_JSON NAME=CPUS[:GPUS] ...

it starts a head without CPUs, with the job server on the loopback, and the named nodes (each with
NODE_ENV), prints one JSON line (the address, the job server's; each node's id and raylet pid),
then obeys stdin, a JSON line back for each command: ``remove NAME`` (hard: every process of the
node killed at once), ``add NAME=CPUS[:GPUS]``. At the end of stdin every node is stopped.

Imported by the tests, ``SimulatedCluster`` drives that process. No node shares the driver's
disk: every node runs with an audit hook (a ``sitecustomize`` on its ``PYTHONPATH``) that makes
the driver's folder (results and data) not exist for it, as on a real cluster, so a runner that
opened a driver path on a worker would fail its runs. Each node has its own data directory
(``$DLREPRO_DATA_DIR``). Every node is stopped by the cluster's process, never with ``ray stop``.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).parent / "ray")
# The head without CPUs (the driver's, as in cluster.yaml), two CPU nodes, one with a fake GPU.
NODES = {"cpu-a": "2", "cpu-b": "2", "gpu": "2:1"}

# What a node runs at start: the driver's folder is not on this node.
NO_SHARED_DISK = '''
import os, sys

DRIVER_ONLY = os.environ.get("DLREPRO_DRIVER_ONLY")
EVENTS = {"open", "os.listdir", "os.scandir", "os.mkdir", "os.rename", "os.remove",
          "shutil.rmtree", "os.chdir"}


def refuse_driver_paths(event, args):
    if event in EVENTS and isinstance(args[0], (str, bytes, os.PathLike)):
        try:
            path = os.path.abspath(os.fsdecode(args[0]))
        except FileNotFoundError:  # a relative path in a working directory removed meanwhile
            return  # (the simulated nodes share one session folder: one's cleanup is all's)
        if path == DRIVER_ONLY or path.startswith(DRIVER_ONLY + os.sep):
            raise FileNotFoundError(2, "not on this node: it shares no disk with the driver", path)


if DRIVER_ONLY:
    sys.addaudithook(refuse_driver_paths)
'''

# The cluster's and the driver's: token authentication, and Ray's switch for a cluster on the
# loopback (its default on macOS and Windows). The driver is given its data with --data-dir:
# each node has its own.
CLUSTER_ENV = {**{k: v for k, v in os.environ.items()
                  if k not in ("RAY_ADDRESS", "DLREPRO_DATA_DIR")},
               "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex(),
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
               "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


class SimulatedCluster:
    """The cluster's process and what it said of its nodes."""

    def __init__(self, process: subprocess.Popen, driver: Path):
        self.process, self.driver = process, driver
        started = self._answer()
        self.address, self.jobs = started["address"], started["jobs"]
        self.nodes = started["nodes"]

    @classmethod
    def start(cls, temp_dir: str, driver: Path, node_env: dict) -> "SimulatedCluster":
        process = subprocess.Popen(
            [sys.executable, __file__, temp_dir, json.dumps(node_env),
             *(f"{name}={shape}" for name, shape in NODES.items())],
            env=CLUSTER_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return cls(process, driver)

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        assert line, "the simulated cluster stopped"
        return json.loads(line)

    def _command(self, *words: str) -> dict:
        self.process.stdin.write(" ".join(words) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def node_id(self, name: str) -> str:
        return self.nodes[name]["id"]

    def remove(self, name: str) -> None:
        """Kill every process of a node, at once: a spot preemption, a pulled plug."""
        self._command("remove", name)
        del self.nodes[name]

    def restore(self) -> None:
        """Bring back, as new nodes, those removed: the next test meets the whole cluster."""
        for name in NODES.keys() - self.nodes.keys():
            self.nodes[name] = self._command("add", f"{name}={NODES[name]}")["added"]

    def running_on(self, name: str) -> list[psutil.Process]:
        """The worker processes of a node that are running a group now."""
        raylet = psutil.Process(self.nodes[name]["raylet"])
        return [p for p in raylet.children(recursive=True) if running_a_group(p)]

    def ray_job(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        """``ray job ARGS`` on this cluster's job server, as a user's shell would run it."""
        return subprocess.Popen([RAY, "job", args[0], "--address", self.jobs, *args[1:]],
                                env=env or CLUSTER_ENV, cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def dlrepro(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        """``dlrepro ARGS --runner ray --address`` this cluster, as the driver's own process."""
        return subprocess.Popen(
            [sys.executable, "-m", "dlrepro", *args, "--runner", "ray", "--address", self.address],
            env=env or CLUSTER_ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)


def running_a_group(process: psutil.Process) -> bool:
    try:
        return (process.cmdline() or [""])[0].startswith("ray::run_group")
    except psutil.Error:  # it ended meanwhile
        return False


def _node(node) -> dict:
    from ray._private import ray_constants

    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process
    return {"id": node.node_id, "raylet": raylet.pid}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(temp_dir: str, node_env: str, *nodes: str) -> None:
    from ray.cluster_utils import Cluster

    env = json.loads(node_env)
    # Ray notes the newest cluster's address in its default temp dir (/tmp/ray), where a later
    # bare ray.init() of this machine would find it: here, in the cluster's own.
    os.environ["RAY_TMPDIR"] = temp_dir
    os.makedirs(os.path.join(temp_dir, "ray"), exist_ok=True)
    # Ports of its own: another Ray instance on this machine may hold the defaults.
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "node_ip_address": "127.0.0.1", "temp_dir": temp_dir, "env_vars": env,
        "include_dashboard": True, "dashboard_host": "127.0.0.1",
        "dashboard_port": _free_port(), "dashboard_agent_listen_port": _free_port()})
    started = {}

    def add(spec: str) -> dict:
        name, shape = spec.split("=")
        cpus, _, gpus = shape.partition(":")
        started[name] = cluster.add_node(num_cpus=int(cpus), num_gpus=float(gpus or 0),
                                         env_vars=env)
        return _node(started[name])

    try:
        print(json.dumps({"address": cluster.address, "jobs": f"http://{cluster.webui_url}",
                          "nodes": {spec.split("=")[0]: add(spec) for spec in nodes}}), flush=True)
        for line in sys.stdin:
            command, argument = line.split()
            if command == "add":
                print(json.dumps({"added": add(argument)}), flush=True)
                continue
            cluster.remove_node(started.pop(argument), allow_graceful=False)
            print(json.dumps({"removed": argument}), flush=True)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
