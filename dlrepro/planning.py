"""What to run and in which order, whatever the runner: the specs not done, the runs they need,
waves in which every run comes after the runs it reads, and groups of seeds trained together."""

from __future__ import annotations

import graphlib
import json
import math
from collections.abc import Mapping

from dlrepro import experiment as contract
from dlrepro.layout import Results
from dlrepro.schema import Resources
from dlrepro.suite import RunSpec


def plan(specs: list[RunSpec], results: Results) -> list[RunSpec]:
    """The specs not done, and every run they need that is not done or lost its files."""
    needed = {p.run_id: p for spec in specs for p in _needed(spec)}
    # producers first: they come before their consumers in waves
    todo = {run_id: producer for run_id, producer in needed.items()
            if not results.done(producer) or not results.artifact_dir(producer).is_dir()}
    todo.update({spec.run_id: spec for spec in specs if not results.done(spec)})
    return list(todo.values())


def _needed(spec: RunSpec) -> list[RunSpec]:
    """Every run ``spec`` reads, directly or through another."""
    found = []
    for producer in spec.needs.values():
        found += [*_needed(producer), producer]
    return found


def datasets_read(specs: list[RunSpec]) -> set[str]:
    needed = set()
    for spec in specs:
        experiment = contract.get(spec.experiment)
        needed |= experiment.datasets(experiment.params.model_validate(spec.params))
    return needed


def waves(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """The specs in waves: each run comes after every run it needs that is also to be run."""
    pending = {s.run_id for s in specs}
    sorter = graphlib.TopologicalSorter(
        {s.run_id: [p.run_id for p in s.needs.values() if p.run_id in pending] for s in specs})
    sorter.prepare()
    ordered = []
    while sorter.is_active():
        ready = set(sorter.get_ready())
        ordered.append([s for s in specs if s.run_id in ready])  # in the order asked
        sorter.done(*ready)
    return ordered


def expected_times(todo: list[RunSpec], results: Results,
                   typical: dict[str, float]) -> dict[str, float | None]:
    """Each run's likely wall time (docs/eta.md): that of the latest earlier ok run of its
    configuration and seed in this folder, whatever code it ran; else the mean ok run in this
    folder (this machine's) of its suite's runs most like it; else its suite's ``typical`` run
    (the committed cost.csv's mean, measured on another machine). None: nothing is known."""
    latest: dict[str, tuple[str, float]] = {}  # by configuration and seed: when, how long
    done: dict[str, list[tuple[dict, float]]] = {}  # by suite: each ok run's parameters, time
    for record in (r for suite in {s.suite for s in todo} for r in results.read_records(suite)):
        try:
            if record["status"] == "ok":
                seconds, found = float(record["wall_time_s"]), _key(record)
                latest[found] = max(latest.get(found, ("", 0.0)), (record["finished_at"], seconds))
                done.setdefault(record["suite"], []).append((dict(record["params"]), seconds))
        except (KeyError, TypeError, ValueError):
            continue  # an unreadable record only costs its estimate
    times = {}
    for spec in todo:
        alike = _most_alike(spec, done.get(spec.suite, []))
        times[spec.run_id] = (latest.get(_key(vars(spec)), ("", None))[1]
                              or (alike and sum(alike) / len(alike)) or typical.get(spec.suite))
    return times


def _key(run: dict) -> str:
    return json.dumps([run["suite"], run["params"], run["seed"]], sort_keys=True, default=str)


def _most_alike(spec: RunSpec, done: list[tuple[dict, float]]) -> list[float]:
    """The times of the runs that share the spec's values of the parameters the suite's times
    differ most by (the autoencoder's model before its d), as many of them as any run shares."""
    def spread(name: str) -> float:  # between the mean log times of the parameter's values
        logs: dict[str, list[float]] = {}
        for params, seconds in done:
            logs.setdefault(str(params.get(name)), []).append(math.log(max(seconds, 1e-3)))
        means = [sum(values) / len(values) for values in logs.values()]
        return max(means) - min(means)

    names = sorted(spec.varied, key=spread, reverse=True) if done else []
    for depth in range(len(names), -1, -1):
        alike = [seconds for params, seconds in done
                 if all(params.get(name) == spec.params.get(name) for name in names[:depth])]
        if alike:
            return alike
    return []


def eta(specs: list[RunSpec], expected: dict[str, float | None],
        at_once: dict[Resources, int] | None = None, *, pace: Mapping[str, float] = {},
        unknown: float | None = None) -> float | None:
    """Seconds the specs would take (docs/eta.md): each counts at its expected time times its
    suite's ``pace`` (default 1), an unknown one at ``unknown`` (default: the known mean). One run
    at a time, or wave after wave the slowest shape, its runs shared by the runs of that shape
    held ``at_once``. None: nothing is known."""
    known = [pace.get(s.suite, 1.0) * expected[s.run_id] for s in specs
             if expected.get(s.run_id) is not None]
    if unknown is None and not known:
        return None
    unknown = sum(known) / len(known) if unknown is None else unknown
    total = 0.0
    for wave in waves(specs) if at_once else [specs]:
        load: dict[Resources, float] = {}
        for spec in wave:
            time = expected.get(spec.run_id)
            load[spec.resources] = load.get(spec.resources, 0.0) + (
                unknown if time is None else pace.get(spec.suite, 1.0) * time)
        total += max(load[shape] / at_once[shape] for shape in load) if at_once else sum(
            load.values())
    return total


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


def cannot_honour(specs: list[RunSpec], cpus: int, gpus: float, where: str) -> list[str]:
    """What ``where``, with ``cpus`` and ``gpus`` in all, cannot give the specs, said once a
    shape: GPU runs without a GPU go on the CPU, a run asking for more CPUs gets them all."""
    lines = []
    for shape in dict.fromkeys(spec.resources for spec in specs):
        suites = ", ".join(sorted({spec.suite for spec in specs if spec.resources == shape}))
        if shape.gpus and not gpus:
            lines.append(f"warning: {suites} ask(s) for a GPU and {where} has none: the runs go "
                         "on the CPU")
        if shape.cpus > cpus >= 1:
            lines.append(f"warning: {suites} ask(s) for {shape.cpus} CPUs and {where} has "
                         f"{cpus}: each run uses {cpus}")
    return lines

