"""A multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``), in a process of its
own, so that the test process keeps no Ray state (Ray reads its token settings once, at import).

    python tests/simulated_cluster.py TEMP_DIR NODE_ENV_JSON NAME=CPUS[:GPUS] ...

starts a head without CPUs, with the job server on the loopback, and the named nodes (each with
NODE_ENV), prints one JSON line (the address, the job server's; each node's id and raylet pid),
then obeys stdin, a JSON line back for each command:
``remove NAME`` (hard: every process of the node killed at once). At the end of stdin every node
is stopped.
"""

import json
import os
import socket
import sys

from ray._private import ray_constants
from ray.cluster_utils import Cluster


def _node(node) -> dict:
    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process
    return {"id": node.node_id, "raylet": raylet.pid}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(temp_dir: str, node_env: str, *nodes: str) -> None:
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
            _, name = line.split()  # remove NAME
            cluster.remove_node(started.pop(name), allow_graceful=False)
            print(json.dumps({"removed": name}), flush=True)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
