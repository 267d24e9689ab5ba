"""What to run and in which order, whatever the runner: the specs not done, the runs they need,
waves in which every run comes after the runs it reads, and groups of seeds trained together."""

from __future__ import annotations

import graphlib
import json

from dlrepro import experiment as contract
from dlrepro.layout import Results
from dlrepro.grid import RunSpec


class SchedulingError(Exception):
    """The runner cannot run what was asked (e.g. GPU runs on a cluster without GPUs)."""


def plan(specs: list[RunSpec], results: Results) -> list[RunSpec]:
    """What to run: the specs not done, and every run they need that is not done or lost its
    files."""
    todo: dict[str, RunSpec] = {}
    needed = {p.run_id: p for spec in specs for p in _needed(spec)}
    # producers first: they come before their consumers in waves
    for run_id, spec in needed.items():
        if not results.done(spec) or not results.artifact_dir(spec).is_dir():
            todo[run_id] = spec
    for spec in specs:
        if spec.run_id not in todo and not results.done(spec):
            todo[spec.run_id] = spec
    return list(todo.values())


def _needed(spec: RunSpec) -> list[RunSpec]:
    """Every run ``spec`` reads, directly or through another."""
    found = []
    for producer in spec.needs.values():
        found += [*_needed(producer), producer]
    return found


def waves(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """The specs in waves: each run comes after every run it needs that is also to be run."""
    pending = {s.run_id: s for s in specs}
    sorter = graphlib.TopologicalSorter(
        {s.run_id: [p.run_id for p in s.needs.values() if p.run_id in pending] for s in specs})
    sorter.prepare()
    ordered = []
    while sorter.is_active():
        ready = set(sorter.get_ready())
        ordered.append([s for s in specs if s.run_id in ready])  # in the order asked
        sorter.done(*ready)
    return ordered


def unmet(spec: RunSpec, results: Results) -> str | None:
    """Why a spec cannot run now: a run it needs has not finished ok."""
    for name, producer in spec.needs.items():
        if not results.done(producer):
            return f"needs {name!r}: run {producer.label} ({producer.run_id}) did not finish ok"
    return None


def groups(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """Specs to execute together: the seeds of one configuration when the experiment trains seeds
    together, else one spec per group. Order is kept."""
    together: dict[str, list[RunSpec]] = {}
    for spec in specs:
        stackable = contract.get(spec.experiment).stacks_seeds
        configuration = [spec.suite, spec.params, spec.resources.model_dump()]
        key = json.dumps(configuration, sort_keys=True) if stackable else spec.run_id
        together.setdefault(key, []).append(spec)
    return list(together.values())


def group_label(group: list[RunSpec]) -> str:
    """How progress names a group: its configuration, and how many seeds train together."""
    return group[0].label + (f" ×{len(group)} seeds" if len(group) > 1 else "")
