"""Grid expansion: a profile's parameters, grid and seeds become run specs, each with its
deterministic run_id and the producer runs it reads; a configuration the experiment refuses is
reported at the key path that set the offending value."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dlrepro import experiment as contract
from dlrepro.errors import Refused, best_error, key_path, message
from dlrepro.formatting import assignments
from dlrepro.schema import Resources, SuiteModel, choices

_ABSENT = object()

# A point of a grid: the key path of its grid, its values, the key path that set each parameter,
# and the tied-axis entries it took (key path, the axis's entries).
Point = tuple[str, dict[str, Any], dict[str, str], list[tuple[str, list]]]


@dataclass(frozen=True)
class RunSpec:
    """One run: a resolved configuration of one suite at one profile and seed."""

    suite: str
    experiment: str
    profile: str
    params: dict[str, Any]
    seed: int
    resources: Resources
    run_id: str
    varied: tuple[str, ...] = ()  # parameters that differ across the suite's grid, for labels
    # need name -> the producer run whose files it reads
    needs: dict[str, RunSpec] = field(default_factory=dict)

    @property
    def label(self) -> str:
        shown = assignments((k, v) for k, v in self.params.items() if k in self.varied)
        shown = f" [{shown}]" if shown else ""
        return f"{self.suite}{shown} seed {self.seed}"


def run_id(suite: str, experiment: str, code: str, params: dict, seed: int,
           needs: dict[str, str]) -> str:
    """Hash of what determines a run's result: the resolved configuration, the code it executes
    (``Experiment.code_hash``) and the run_ids of the runs whose files it reads. Two profiles that
    resolve to the same configuration share the run, in their own results folders."""
    fields = {"suite": suite, "experiment": experiment, "code": code, "params": params,
              "seed": seed}
    key = json.dumps({**fields, "needs": needs} if needs else fields, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def keyed_grids(model: SuiteModel) -> list[tuple[str, dict]]:
    """Every grid in the file with its key path."""
    owners = [("grid", model.grid)]
    owners += [(f"profiles.{name}.grid", spec.grid)
               for name, spec in model.profiles.items() if spec.grid]
    found = []
    for prefix, grid in owners:
        if isinstance(grid, list):
            found += [(f"{prefix}.{i}", one) for i, one in enumerate(grid)]
        else:
            found.append((prefix, grid))
    return found


def expand_profile(path: Path, model: SuiteModel, experiment: contract.Experiment, profile: str,
                   producer_runs: dict[str, list[RunSpec]],
                   check_repeats: bool = True) -> list[RunSpec]:
    """The run specs of one profile, in a stable order; ``producer_runs``: the runs at this profile
    of each need's suite. Without ``check_repeats`` (overrides may make two grids' runs the same)
    a repeated run is kept once instead of refused."""
    prof = model.profiles[profile]
    grid_key = f"profiles.{profile}.grid" if prof.grid is not None else "grid"
    fixed = {**{k: f"parameters.{k}" for k in model.parameters},
             **{k: f"profiles.{profile}.parameters.{k}" for k in prof.parameters}}
    resolved, points = [], _points(prof.grid if prof.grid is not None else model.grid, grid_key)
    for where, point, origin, ties in points:
        try:
            values = {**model.parameters, **prof.parameters, **point}
            params = experiment.params.model_validate(values).model_dump()
        except ValidationError as err:
            error = best_error(err)
            key = _source(error, where, {**fixed, **origin}, ties)
            raise Refused(path, key, message(error)) from None
        resolved.append(params)
    # In the grid's order of axes: how labels and baselines name a configuration.
    varied = tuple(dict.fromkeys(k for _, point, _, _ in points for k in point
                                 if len({json.dumps(q.get(k)) for q in resolved}) > 1))
    resources, code = prof.resources or model.resources, experiment.code_hash
    specs = []
    for params in resolved:
        needs = _producers(path, model, profile, params, producer_runs)
        need_ids = {name: spec.run_id for name, spec in needs.items()}
        specs += [RunSpec(suite=model.name, experiment=model.experiment, profile=profile,
                          params=params, seed=seed, resources=resources, varied=varied, needs=needs,
                          run_id=run_id(model.name, model.experiment, code, params, seed, need_ids))
                  for seed in prof.seeds]
    if not check_repeats:
        specs = list({s.run_id: s for s in specs}.values())
    ids = [s.run_id for s in specs]
    if len(ids) != len(set(ids)):
        twice = next(s for s in specs if ids.count(s.run_id) > 1)
        raise Refused(path, grid_key, f"profile {profile} lists the same run twice "
                      f"({twice.label}): each configuration may appear once in its grids")
    return specs


def _points(grid, key: str) -> list[Point]:
    """Cartesian product of each grid's axes; a list of grids is their union, in order."""
    points = []
    for i, one in enumerate(grid if isinstance(grid, list) else [grid]):
        where = f"{key}.{i}" if isinstance(grid, list) else key
        axes = [[_axis_value(v, f"{where}.{name}.{j}", name, values) for j, v in enumerate(values)]
                for name, values in one.items()]
        for combo in itertools.product(*axes):
            point = {k: v for part, _, _ in combo for k, v in part.items()}
            origin = {k: f"{entry or where}.{k}" for part, entry, _ in combo for k in part}
            ties = [(entry, values) for _, entry, values in combo if entry]
            points.append((where, point, origin, ties))
    return points


def _axis_value(value: Any, entry: str, name: str, values: list) -> tuple[dict, str | None, list]:
    """One value of an axis as the parameters it sets, the key path of its tied entry (None for a
    plain value) and the axis's values."""
    if isinstance(value, dict):
        return value, entry, values
    return {name: value}, None, values


def _source(error: dict, grid_key: str, origin: dict[str, str],
            ties: list[tuple[str, list]]) -> str:
    """The key path in the file that supplied, or should have supplied, the offending parameter."""
    loc = key_path(error)
    if not loc:  # a rule across parameters: the grid point that combined them
        return grid_key
    name = loc[0]
    if name in origin:
        return ".".join([origin[name], *loc[1:]])
    for entry, entries in ties:  # a tied entry that forgot what the axis's other entries set
        if any(name in e for e in entries):
            return entry
    return f"parameters.{name}"


def _producers(path: Path, model: SuiteModel, profile: str, params: dict,
               producer_runs: dict[str, list[RunSpec]]) -> dict[str, RunSpec]:
    """The one producer run per need of a configuration: the one ``where`` picks, with the
    configuration's own values of the ``same`` parameters, at its first seed."""
    chosen = {}
    for name, need in model.needs.items():
        where = {**need.where, **{key: params[key] for key in need.same}}
        matching = [s for s in producer_runs[name] if matches(s.params, where)]
        configurations = {json.dumps(s.params, sort_keys=True) for s in matching}
        if len(configurations) != 1:
            raise Refused(path, f"needs.{name}.where", f"picks {len(configurations)} "
                          f"configurations of suite {need.suite!r} at profile {profile} "
                          f"({describe(where)}); it must pick exactly one")
        chosen[name] = min(matching, key=lambda s: s.seed)
    return chosen


def matches(params: dict, where: dict) -> bool:
    """Whether a configuration has every value of ``where``, or one of a list of them (a boolean is
    not a number here)."""
    return all(any(params.get(k, _ABSENT) == v
                   and isinstance(params.get(k), bool) == isinstance(v, bool) for v in choices(vs))
               for k, vs in where.items())


def describe(selection: dict) -> str:
    """A selection of runs in words, for messages."""
    return assignments(selection.items()) or "every run"
