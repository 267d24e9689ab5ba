"""What to run and in which order, whatever the runner: the specs not done, the runs they need,
waves in which every run comes after the runs it reads, and groups of seeds trained together."""

from __future__ import annotations

import graphlib
import json
from dataclasses import dataclass
from pathlib import Path

from dlrepro import experiment as contract
from dlrepro.layout import Results
from dlrepro.schema import Resources
from dlrepro.suite import RunSpec


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


def datasets_read(specs: list[RunSpec]) -> set[str]:
    """The data sets the runs read."""
    needed = set()
    for spec in specs:
        experiment = contract.get(spec.experiment)
        needed |= experiment.datasets(experiment.params.model_validate(spec.params))
    return needed


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


def expected_times(todo: list[RunSpec], results: Results,
                   typical: dict[str, float]) -> dict[str, float | None]:
    """Each run's likely wall time, for the ETA: that of the latest earlier ok run of its
    configuration and seed in this folder, whatever code it ran, else its suite's ``typical`` run
    (the mean of the committed cost.csv, measured on another machine). None: nothing is known."""
    def key(suite: str, params: dict, seed: int) -> str:
        return json.dumps([suite, params, seed], sort_keys=True, default=str)

    latest: dict[str, dict] = {}
    for record in (r for suite in {s.suite for s in todo} for r in results.read_records(suite)):
        try:
            found = key(record["suite"], record["params"], record["seed"])
            if record["status"] == "ok" and record["finished_at"] > latest.get(
                    found, {}).get("finished_at", ""):
                latest[found] = record
        except (KeyError, TypeError):
            continue  # an unreadable record only costs its estimate
    times = {}
    for spec in todo:
        earlier = latest.get(key(spec.suite, spec.params, spec.seed), {}).get("wall_time_s")
        times[spec.run_id] = typical.get(spec.suite) if earlier is None else earlier
    return times


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


@dataclass
class SuitePlan:
    """An asked suite's runs at the profile: how many, how many cached, where the rest would run."""

    name: str
    runs: int
    cached: int
    device: str  # what its runs to do would execute on; empty when none is to do

    @property
    def to_run(self) -> int:
        return self.runs - self.cached


@dataclass
class Plan:
    """What ``dlrepro run`` is about to do: ``run`` says it, ``dry_run`` returns it and stops."""

    profile: str
    records: Path  # where the cached runs' records are
    suites: list[SuitePlan]
    first: list[str]  # runs of other suites that the asked ones read: they run first
    expected: dict[str, float | None]  # each run to do's likely wall time, None: not known
    unknown: list[str]  # the suites of the runs whose time is not known
    cluster: ClusterPlan | None = None  # the dry run of the Ray runner: the cluster it sees

    @property
    def todo(self) -> int:
        return len(self.expected)

    @property
    def eta_s(self) -> float | None:
        """The runs' expected time one after the other; an unknown one counted as the known mean."""
        known = [t for t in self.expected.values() if t is not None]
        return sum(known) / len(known) * self.todo if known else None

    def lines(self) -> list[str]:
        """The plan as plain lines for a person."""
        from dlrepro.console import duration
        from dlrepro.formatting import counted

        lines = []
        for suite in self.suites:
            where = f", on {suite.device}" if suite.device else ""
            lines.append(f"{suite.name}: {counted(suite.runs, 'run')} at profile {self.profile}, "
                         f"{suite.cached} cached, {suite.to_run} to run{where}")
        for label in self.first:
            lines.append(f"{label}: to run first, another suite reads its files")
        if not self.todo:
            return [*lines, f"Nothing to run: every run is cached in {self.records}."]
        to_do = f"{counted(self.todo, 'run')} to do"
        unknown_runs = sum(t is None for t in self.expected.values())
        guessed = (f"; {unknown_runs} of them ({', '.join(self.unknown)}) counted at the others' "
                   "mean" if unknown_runs else "")
        if self.cluster:
            return [*lines, *self.cluster.lines, f"{to_do}; {self.cluster.outlook(guessed)}"]
        if self.eta_s is None:
            return [*lines, f"{to_do}; ETA not known (no earlier run, no cost baseline)"]
        return [*lines, f"{to_do}; ETA about {duration(self.eta_s)}, run after run{guessed}"]


@dataclass
class ClusterPlan:
    """What the runs to do would take on the Ray cluster a dry run sees."""

    lines: list[str]  # what it cannot honour, the cluster, each shape's runs and how many at once
    eta_s: float | None  # see cluster_eta
    source: str  # of the typical run times: the profile's committed cost.csv, or that it has none
    problem: str | None = None  # why the cluster cannot run them

    def outlook(self, guessed: str) -> str:
        """The ETA on this cluster, or why it cannot run the runs."""
        from dlrepro.console import duration

        if self.problem:
            return f"this cluster cannot run them: {self.problem}"
        if self.eta_s is None:
            return f"ETA not known: no earlier run here and {self.source}"
        return (f"ETA about {duration(self.eta_s)} on this cluster (earlier runs here, else "
                f"{self.source}){guessed}")


def cluster_eta(todo: list[RunSpec], expected: dict[str, float | None],
                at_once: dict[Resources, int]) -> float | None:
    """Wave after wave, the slowest shape: its runs' expected times shared by the runs the cluster
    holds at once. An unknown run counts as the known mean; none known: None."""
    known = [t for t in expected.values() if t is not None]
    if not known:
        return None
    mean, total = sum(known) / len(known), 0.0
    for wave in waves(todo):
        load: dict[Resources, float] = {}
        for spec in wave:
            time = expected.get(spec.run_id)
            load[spec.resources] = load.get(spec.resources, 0.0) + (mean if time is None else time)
        total += max(seconds / at_once[shape] for shape, seconds in load.items())
    return total
