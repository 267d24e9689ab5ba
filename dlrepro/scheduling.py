"""Where runs execute. A runner takes the run specs still to do and hands each finished record
to a callback; ``runners/<name>.toml`` configures it.

The local runner runs in this process, one run at a time, with the run's own thread count.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dlrepro.energy import DEFAULT_COUNTRY, EnergyMeter
from dlrepro.execute import execute, groups, warm_up
from dlrepro.store import RecordStore
from dlrepro.suite import RunSpec, SuiteError, suites_dir

console = Console(stderr=True)


class RunnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local"]
    description: str = ""
    energy_country: str = Field(DEFAULT_COUNTRY, pattern=r"^[A-Z]{3}$",
                                description="ISO 3166-1 alpha-3 code for codecarbon's carbon intensity")


def runner_config(name: str) -> RunnerConfig:
    """Read ``runners/<name>.toml`` (beside suites/)."""
    path = suites_dir().parent / "runners" / f"{name}.toml"
    try:
        return RunnerConfig(**tomllib.loads(path.read_text()))
    except FileNotFoundError:
        raise SuiteError(path, "", f"no runner named {name!r}") from None
    except tomllib.TOMLDecodeError as err:
        raise SuiteError(path, "", f"not valid TOML: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        raise SuiteError(path, ".".join(map(str, first["loc"])), first["msg"]) from None


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)


def run_local(specs: Iterable[RunSpec], store: RecordStore, config: RunnerConfig, *,
              data_dir: Path | None, on_record: Callable[[dict], None]) -> None:
    specs = list(specs)
    warm_up()
    with EnergyMeter(store.root / "energy", config.energy_country) as meter, progress() as bar:
        task = bar.add_task("starting", total=len(specs))
        for group in groups(specs):
            seeds = f" ×{len(group)} seeds" if len(group) > 1 else ""
            bar.update(task, description=group[0].label + seeds)
            for record in execute(group, meter=meter, artifact_dir=store.artifact_dir, data_dir=data_dir):
                store.put(record)
                on_record(record)
                bar.advance(task)
        bar.update(task, description="done")
