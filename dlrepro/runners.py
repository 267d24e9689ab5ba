"""Where runs execute: ``runners/<name>.toml`` configures one, ``local`` (in this process, a run
group at a time) or ``ray`` (``ray_runner``), which stores each finished record and hands it on.
Torch and Ray are imported only once runs start."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from dlrepro.console import RunProgress
from dlrepro.devices import DeviceChoice
from dlrepro.errors import Refused
from dlrepro.files import read_toml
from dlrepro.layout import Results
from dlrepro.planning import group_label, groups, unmet, waves
from dlrepro.project import runners_dir
from dlrepro.schema import LocalRunner, RayRunner, RunnerConfig, explain
from dlrepro.suite import RunSpec

RUNNER_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def load_runner(name: str) -> LocalRunner | RayRunner:
    known = ", ".join(p.stem for p in sorted(runners_dir().glob("*.toml")))
    if not RUNNER_NAME.match(name):
        raise Refused("--runner", "", f"{name!r} is not a runner name (a file of runners/ "
                         f"without .toml: {known})")
    path = runners_dir() / f"{name}.toml"
    if not path.exists():
        raise Refused(path, "", f"no runner named {name!r}; known runners: {known}")
    data = read_toml(path, "runner")
    try:
        return TypeAdapter(RunnerConfig).validate_python(data)
    except ValidationError as err:  # in a suite file's words, without the kind pydantic puts first
        keys, reason = explain(err)
        keys = keys[1:] if keys[:1] == [str(data.get("kind"))] else keys
        raise Refused(path, ".".join(keys), reason) from None


# Set by Ray for the driver of a job (`ray job submit`), whose working directory is temporary.
IN_A_RAY_JOB = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def check_ray_use(given: str | None, configured: str | None, results: Path) -> str | None:
    """The address the Ray runner connects to (None: an embedded instance), refused where it would
    send the runner astray: the job server's address for the cluster's, results written into a
    job's temporary copy of the checkout."""
    sources = [("--address", given), ("address in runners/ray.toml", configured),
               ("$RAY_ADDRESS", os.environ.get("RAY_ADDRESS"))]  # in ray.init's order
    source, address = next(((s, a) for s, a in sources if a), ("", None))
    if address and address.startswith(("http://", "https://")):
        raise Refused(f"{source} {address}: the runner takes the cluster's HOST:PORT, without "
                      "a scheme (the head's port 6379); an http:// address is the job "
                      "server's, for ray job submit")
    if address and address != "auto" and "://" not in address:  # auto, ray://: Ray's to read
        _answering(source, address)
    if IN_A_RAY_JOB in os.environ and not results.is_absolute():
        raise Refused(f"--results {results}: in a Ray job this is inside the job's temporary "
                      "working directory, removed when the job ends; give an absolute path on "
                      "the head")
    return address


def _answering(source: str, address: str) -> None:
    """Refuse a HOST:PORT where no Ray cluster listens: nothing, or a web server (the dashboard's
    port); ray.init would retry either for minutes. The cluster's GCS speaks HTTP/2 (gRPC), so
    an HTTP/1 request gets no HTTP/1 answer there."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise Refused(f"{source} {address}: not HOST:PORT (the head's port is 6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as peer:  # [::1]
            peer.sendall(b"GET / HTTP/1.0\r\n\r\n")
            peer.settimeout(3)
            web = peer.recv(5) == b"HTTP/"
    except TimeoutError:
        web = False  # it did not answer in HTTP/1
    except OSError as err:
        raise Refused(f"{source} {address}: no Ray cluster answers there "
                      f"({err.strerror or err})") from None
    if web:
        raise Refused(f"{source} {address}: a web server answers there (the dashboard and job "
                      "server's port, 8265 by default); the runner takes the cluster's GCS "
                      "port, the head's 6379")


def run(specs: list[RunSpec], results: Results, config: LocalRunner | RayRunner, *,
        data_dir: Path | None, on_record: Callable[[dict], None], address: str | None = None,
        expected: dict[str, float | None] | None = None,
        device: DeviceChoice = DeviceChoice.AUTO) -> None:
    """Run the specs with the configured runner; every finished record is stored before
    ``on_record``. ``expected``: each run's likely wall time, for the ETA; ``device``: the local
    runner's (on Ray, always the rule of ``devices``); ``address``: the cluster's, else None."""
    with RunProgress(specs, expected or {}) as progress:
        if isinstance(config, LocalRunner):
            return run_local(specs, results, config, data_dir=data_dir, on_record=on_record,
                             progress=progress, device=device)
        from dlrepro.ray_runner import run_ray  # Ray's import costs a second: only when asked for

        progress.running("starting Ray")
        run_ray(specs, results, address=address, num_cpus=config.num_cpus,
                max_retries=config.max_retries, energy_country=config.energy_country,
                data_dir=data_dir, on_record=on_record, progress=progress)


def run_local(specs: list[RunSpec], results: Results, config: LocalRunner, *, data_dir: Path | None,
              on_record: Callable[[dict], None], progress: RunProgress,
              device: DeviceChoice = DeviceChoice.AUTO) -> None:
    from dlrepro.energy import EnergyMeter
    from dlrepro.execute import execute, failed_records, warm_up

    warm_up()
    with EnergyMeter(results.energy, config.energy_country) as meter:
        for group in (group for wave in waves(specs) for group in groups(wave)):
            progress.running(group_label(group))
            blocked = unmet(group[0], results)  # a group shares its configuration, so its needs
            if blocked:
                records = failed_records(group, blocked)
            else:
                for spec in group:  # like Ray's fresh folder per attempt: no file of a failed one
                    results.discard_artifacts(spec)
                records = execute(group, meter=meter, artifact_dir=results.artifact_dir,
                                  data_dir=data_dir, device=device)
            for spec, record in zip(group, records):
                results.put(record)
                on_record(record)
                progress.finished(spec.label, record)
