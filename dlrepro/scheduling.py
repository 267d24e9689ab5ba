"""Where runs execute. A runner takes the run specs still to do, stores each finished record and
hands it to a callback; ``runners/<name>.toml`` configures it.

- ``local``: in this process, one run group at a time, with the run's own thread count.
- ``ray``: on a pool of Ray actors, on an embedded instance or a cluster (see ``ray_runner``).

Runs that read another run's files (a suite's ``needs``) come in a later wave than that run; a run
whose producer failed is recorded as failed with the reason, not run.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dlrepro.energy import DEFAULT_COUNTRY, EnergyMeter
from dlrepro.execute import execute, failed_records, group_label, groups, warm_up
from dlrepro.store import RecordStore
from dlrepro.suite import RunSpec, SuiteError, suites_dir

console = Console(stderr=True)


class SchedulingError(Exception):
    """The runner cannot run what was asked (e.g. GPU runs on a cluster without GPUs)."""


class _Runner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    energy_country: str = Field(DEFAULT_COUNTRY, pattern=r"^[A-Z]{3}$",
                                description="ISO 3166-1 alpha-3 code for codecarbon's carbon intensity")


class LocalRunner(_Runner):
    kind: Literal["local"]


class RayRunner(_Runner):
    kind: Literal["ray"]
    address: str | None = Field(None, description="a cluster's address; none: $RAY_ADDRESS, else an embedded instance")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the embedded instance (default: all cores)")
    max_retries: int = Field(2, ge=0, description="retries of a run group whose worker process died")


RunnerConfig = Annotated[LocalRunner | RayRunner, Field(discriminator="kind")]


def runner_config(name: str) -> LocalRunner | RayRunner:
    """Read ``runners/<name>.toml`` (beside suites/)."""
    path = suites_dir().parent / "runners" / f"{name}.toml"
    try:
        return TypeAdapter(RunnerConfig).validate_python(tomllib.loads(path.read_text()))
    except FileNotFoundError:
        raise SuiteError(path, "", f"no runner named {name!r}") from None
    except tomllib.TOMLDecodeError as err:
        raise SuiteError(path, "", f"not valid TOML: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        raise SuiteError(path, ".".join(map(str, first["loc"])), first["msg"]) from None


def plan(specs: list[RunSpec], store: RecordStore) -> list[RunSpec]:
    """What to run: the specs not done, and every run they need that is not done or lost its files."""
    todo: dict[str, RunSpec] = {}

    def add(spec: RunSpec, needed: bool) -> None:
        if spec.run_id in todo:
            return
        for producer in spec.needs.values():
            add(producer, needed=True)
        if not store.done(spec) or (needed and not store.artifact_dir(spec).is_dir()):
            todo[spec.run_id] = spec

    for spec in specs:
        add(spec, needed=False)
    return list(todo.values())


def waves(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """The specs in waves: each run comes after every run it needs that is also to be run."""
    pending = {s.run_id for s in specs}
    depth: dict[str, int] = {}

    def level(spec: RunSpec) -> int:
        if spec.run_id not in depth:
            depth[spec.run_id] = 1 + max((level(p) for p in spec.needs.values() if p.run_id in pending), default=-1)
        return depth[spec.run_id]

    ordered: list[list[RunSpec]] = []
    for spec in specs:
        while len(ordered) <= level(spec):
            ordered.append([])
        ordered[level(spec)].append(spec)
    return ordered


def unmet(spec: RunSpec, store: RecordStore) -> str | None:
    """Why a spec cannot run now: a run it needs has not finished ok."""
    for name, producer in spec.needs.items():
        if not store.done(producer):
            return f"needs {name!r}: run {producer.label} ({producer.run_id}) did not finish ok"
    return None


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)


def run(specs: list[RunSpec], store: RecordStore, config: LocalRunner | RayRunner, *, data_dir: Path | None,
        on_record: Callable[[dict], None], address: str | None = None) -> None:
    """Run the specs with the configured runner; every finished record is stored before ``on_record``."""
    if isinstance(config, LocalRunner):
        return run_local(specs, store, config, data_dir=data_dir, on_record=on_record)
    from dlrepro.ray_runner import run_ray  # Ray's import costs a second: only when asked for

    with progress() as bar:
        task = bar.add_task("starting Ray", total=len(specs))
        run_ray(specs, store, address=address or config.address, num_cpus=config.num_cpus,
                max_retries=config.max_retries, energy_country=config.energy_country, data_dir=data_dir,
                on_record=on_record, on_event=lambda text: bar.console.print(text, soft_wrap=True),
                on_progress=lambda text, done: bar.update(task, advance=done, **({"description": text} if text else {})))
        bar.update(task, description="done")


def run_local(specs: Iterable[RunSpec], store: RecordStore, config: LocalRunner, *,
              data_dir: Path | None, on_record: Callable[[dict], None]) -> None:
    specs = list(specs)
    warm_up()
    with EnergyMeter(store.root / "energy", config.energy_country) as meter, progress() as bar:
        task = bar.add_task("starting", total=len(specs))
        for group in (group for wave in waves(specs) for group in groups(wave)):
            bar.update(task, description=group_label(group))
            blocked = unmet(group[0], store)  # a group shares its configuration, so its needs
            records = (failed_records(group, blocked) if blocked else
                       execute(group, meter=meter, artifact_dir=store.artifact_dir, data_dir=data_dir))
            for record in records:
                store.put(record)
                on_record(record)
                bar.advance(task)
        bar.update(task, description="done")
