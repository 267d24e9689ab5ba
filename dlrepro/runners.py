"""Where runs execute. A runner takes the run specs still to do, stores each finished record and
hands it to a callback; ``runners/<name>.toml`` configures it.

- ``local``: in this process, one run group at a time, with the run's own thread count.
- ``ray``: on a pool of Ray actors, on an embedded instance or a cluster (see ``ray_runner``).

Runs that read another run's files (a suite's ``needs``) come in a later wave than that run; a run
whose producer failed is recorded as failed with the reason, not run. Torch and Ray are imported
only once runs start, so that choosing a runner costs nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from dlrepro.console import RunProgress
from dlrepro.devices import DeviceChoice
from dlrepro.errors import Refused
from dlrepro.files import read_text
from dlrepro.layout import Results
from dlrepro.planning import group_label, groups, unmet, waves
from dlrepro.project import runners_dir
from dlrepro.schema import LocalRunner, RayRunner, RunnerConfig
from dlrepro.suite import RunSpec

RUNNER_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def load_runner(name: str) -> LocalRunner | RayRunner:
    """Read ``runners/<name>.toml``; a name, not a path."""
    known = ", ".join(p.stem for p in sorted(runners_dir().glob("*.toml")))
    if not RUNNER_NAME.match(name):
        raise Refused("--runner", "", f"{name!r} is not a runner name (a file of runners/ "
                         f"without .toml: {known})")
    path = runners_dir() / f"{name}.toml"
    try:
        return TypeAdapter(RunnerConfig).validate_python(tomllib.loads(read_text(path)))
    except FileNotFoundError:
        raise Refused(path, "", f"no runner named {name!r}; known runners: {known}") from None
    except tomllib.TOMLDecodeError as err:
        raise Refused(path, "", f"not valid TOML: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        raise Refused(path, ".".join(map(str, first["loc"])), first["msg"]) from None


def run(specs: list[RunSpec], results: Results, config: LocalRunner | RayRunner, *,
        data_dir: Path | None, on_record: Callable[[dict], None], address: str | None = None,
        expected: dict[str, float | None] | None = None,
        device: DeviceChoice = DeviceChoice.AUTO) -> None:
    """Run the specs with the configured runner; every finished record is stored before
    ``on_record``. ``expected``: each run's likely wall time, for the ETA (see RunProgress);
    default: none known. ``device``: the local runner's (on Ray, always the rule of ``devices``).
    ``address``: Ray's cluster, as ``pipeline.Request.cluster`` resolves it."""
    with RunProgress(expected or dict.fromkeys(s.run_id for s in specs)) as progress:
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
