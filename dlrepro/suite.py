"""Suite files: a TOML file parsed, validated against the schema and its experiment (every
profile's grid, the claims against the runs they select) and expanded into run specs; a mistake is
``file: key.path: message``, at the key that set the value. Loads without torch or pandas."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dlrepro import experiment as contract
from dlrepro.errors import Refused
from dlrepro.files import read_toml
from dlrepro.formatting import assignments
from dlrepro.overrides import Override, Verb, apply_override, named, select, sweeps
from dlrepro.schema import PROFILES, Grids, Metric, Resources, SuiteModel, choices, explain


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
    needs: dict[str, RunSpec] = field(default_factory=dict)  # need name -> the run it reads

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


def matches(params: dict, where: dict) -> bool:
    """Whether a configuration has every value of ``where``, or one of a list of them (a boolean is
    not a number here)."""
    return all(any(k in params and params[k] == v
                   and isinstance(params[k], bool) == isinstance(v, bool) for v in choices(vs))
               for k, vs in where.items())


def describe(selection: dict) -> str:
    """A selection of runs in words, for messages."""
    return assignments(selection.items()) or "every run"


@dataclass(frozen=True)
class Suite:
    path: Path
    model: SuiteModel
    experiment: contract.Experiment
    producers: dict[str, Suite]  # by need name: the suites whose runs this one reads
    specs: dict[str, list[RunSpec]] = field(default_factory=dict)  # by profile, filled on load
    only: dict[str, list] = field(default_factory=dict)  # ``--only``: the values kept, by key
    swept: tuple[str, ...] = ()  # parameters a ``--set`` list sweeps (claims must fix them)
    refused: dict[str, Refused] = field(default_factory=dict)  # an override a profile can't take

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def metrics(self) -> dict[str, Metric]:
        return self.experiment.metrics

    @property
    def parameters(self) -> dict[str, Any]:  # pydantic's fields, by name
        return self.experiment.params.model_fields

    def runs(self, profile: str) -> list[RunSpec]:
        """Grid × seeds of one profile, in a stable order; with ``--only``, those it keeps."""
        if profile in self.refused:
            raise self.refused[profile]
        return [spec for spec in self.specs[profile] if matches(spec.params, self.only)]

    def refuse_unknown(self, key: str, name: str, of: Suite | None = None) -> None:
        """Refuse, at ``key``, a parameter unknown to ``of`` (this suite, or one it needs)."""
        of = of or self
        if name not in of.parameters:
            whose = f"experiment {of.model.experiment!r}"
            whose = f"suite {of.name!r} ({whose})" if of is not self else whose
            raise Refused(self.path, key, f"unknown parameter of {whose}; known: "
                          f"{', '.join(sorted(of.parameters))}")


def load(path: Path | str, overrides: list[Override] = (), only: list[Override] = ()) -> Suite:
    """One suite file and the suites it needs, validated. ``overrides`` (``--set``) apply to every
    profile of the file, and of the suites it needs for the parameters they share with it
    (``needs.*.same``); ``only`` (``--only``) then keeps the runs with those values."""
    suite = _load(Path(path), [], {})
    if overrides:
        try:  # the file itself is sound: whatever fails now is the overrides' doing
            suite = _load(Path(path), list(overrides), {})
        except Refused as err:
            raise _blamed(err, path, overrides) from None
        suite.refused.update({p: _blamed(err, path, overrides) for p, err in suite.refused.items()})
        swept = [key for key, value in overrides if sweeps(suite.model.experiment, key, value)]
        suite = dataclasses.replace(suite, swept=tuple(swept))
    return select(suite, only) if only else suite


def _blamed(err: Refused, path: Path | str, overrides: list[Override]) -> Refused:
    """An override's refusal, naming the ``--set`` keys to blame (all of them if none is named)."""
    keys = [key for key, _ in overrides if key in err.key.split(".")]
    return Refused(path, named(Verb.SET, keys or [key for key, _ in overrides]), err.reason)


def _load(path: Path, overrides: list[Override], loaded: dict[Path, Suite],
          chain: tuple[Path, ...] = ()) -> Suite:
    """A suite, built after the suites it needs (``loaded``, by file); ``chain``: the files that
    need it, in order, to refuse a cycle."""
    file = path.resolve()
    if file in loaded:
        return loaded[file]
    model = _parse(path, overrides)
    producers = {}
    for name, need in model.needs.items():
        producer = path.parent / f"{need.suite}.toml"
        if not producer.is_file():
            raise Refused(path, f"needs.{name}.suite", f"no suite file {producer}")
        producer = producer.resolve()
        if producer in (*chain, file):
            cycle = [*chain, file, producer][[*chain, file].index(producer):]
            raise Refused(path, f"needs.{name}.suite", "circular dependency: "
                          f"{' → '.join(p.stem for p in cycle)}")
        shared = [(key, value) for key, value in overrides if key in need.same]
        producers[name] = _load(producer, shared, loaded, (*chain, file))
    loaded[file] = _build(path, model, producers, check_claims=not overrides)
    return loaded[file]


def _parse(path: Path, overrides: list[Override]) -> SuiteModel:
    data = read_toml(path, "suite")
    for key, value in overrides:
        apply_override(data, key, value)
    try:
        model = SuiteModel.model_validate(data)
    except ValidationError as err:
        keys, reason = explain(err)
        raise Refused(path, ".".join(keys), reason) from None
    if model.name != path.stem:
        raise Refused(path, "name", f"{model.name!r} differs from the file name {path.stem!r}")
    return model


def _build(path: Path, model: SuiteModel, producers: dict[str, Suite], check_claims: bool) -> Suite:
    """An overridden suite (``check_claims`` false) skips the checks that catch mistakes in a file
    but not in an override: repeated runs, claims left without runs (evaluated as not run)."""
    try:
        experiment = contract.get(model.experiment)
    except KeyError:
        raise Refused(path, "experiment", f"unknown experiment {model.experiment!r}; "
                      f"available: {', '.join(contract.available())}") from None
    except Refused as err:
        raise Refused(path, "experiment", f"experiment {model.experiment!r} is broken: "
                      f"{err}") from None
    suite = Suite(path, model, experiment, producers)
    _check_names(suite)
    for profile in PROFILES:
        try:
            suite.specs[profile] = _expand(suite, profile, check_repeats=check_claims)
        except Refused as err:
            if check_claims:  # the file's own mistake
                raise
            suite.refused[profile] = err  # an override's: refused where that profile is run
    if len(suite.refused) == len(PROFILES):
        raise next(iter(suite.refused.values()))
    for profile in PROFILES if check_claims else ():
        _check_claims(suite, profile)
    return suite


def _each_grid(grid: Grids, key: str) -> list[tuple[str, dict]]:
    """A grid with its key path, or each grid of a list of them."""
    if isinstance(grid, list):
        return [(f"{key}.{i}", one) for i, one in enumerate(grid)]
    return [(key, grid)]


def _check_names(suite: Suite) -> None:
    """Parameter names in grids and wherever the file selects one (those it sets elsewhere are
    checked as it sets them); one axis per parameter per grid."""
    m, unknown = suite.model, suite.refuse_unknown
    grids = _each_grid(m.grid, "grid")
    for profile, spec in m.profiles.items():
        grids += _each_grid(spec.grid, f"profiles.{profile}.grid") if spec.grid else []
    for key, grid in grids:
        setters: dict[str, str] = {}
        for axis, values in grid.items():
            tied = [(f"{key}.{axis}.{i}", name) for i, v in enumerate(values)
                    if isinstance(v, dict) for name in v]
            for where, name in tied or [(key, axis)]:
                unknown(f"{where}.{name}", name)
                if setters.get(name, axis) != axis:
                    raise Refused(suite.path, f"{key}.{axis}", f"parameter {name!r} is also set "
                                  f"by axis {setters[name]!r}: each parameter may be set by one "
                                  "axis of a grid")
                setters[name] = axis
    for i, claim in enumerate(m.claims):
        if claim.metric not in suite.metrics:
            raise Refused(suite.path, f"claims.{i}.metric", f"experiment {m.experiment!r} never "
                          f"logs metric {claim.metric!r}; it logs: "
                          f"{', '.join(sorted(suite.metrics))}")
        for key in ("where", "applies", "left", "right"):
            for name in getattr(claim, key, {}):
                unknown(f"claims.{i}.{key}.{name}", name)
        for key, names in claim.axes().items():
            for name in names:
                unknown(f"claims.{i}.{key}", name)
    for name, need in m.needs.items():
        for param in need.where:
            unknown(f"needs.{name}.where.{param}", param, suite.producers[name])
        for i, param in enumerate(need.same):
            unknown(f"needs.{name}.same.{i}", param)
            unknown(f"needs.{name}.same.{i}", param, suite.producers[name])


def _expand(suite: Suite, profile: str, check_repeats: bool) -> list[RunSpec]:
    """The run specs of one profile, in a stable order. Without ``check_repeats`` (overrides may
    make two grids' runs the same) a repeated run is kept once instead of refused."""
    model, prof = suite.model, suite.model.profiles[profile]
    grid_key = "grid" if prof.grid is None else f"profiles.{profile}.grid"
    fixed = {**{k: f"parameters.{k}" for k in model.parameters},
             **{k: f"profiles.{profile}.parameters.{k}" for k in prof.parameters}}
    resolved, points = [], _points(prof.grid or model.grid, grid_key, fixed)
    for where, point, blame in points:
        try:
            values = {**model.parameters, **prof.parameters, **point}
            resolved.append(suite.experiment.params.model_validate(values).model_dump())
        except ValidationError as err:
            keys, reason = explain(err)
            key = where  # a rule across parameters: the grid point that combined them
            if keys:
                key = ".".join([blame.get(keys[0], f"parameters.{keys[0]}"), *keys[1:]])
                suite.refuse_unknown(key, keys[0])  # extra="forbid": not a parameter
            raise Refused(suite.path, key, reason) from None
    # In the grid's order of axes: how labels and baselines name a configuration.
    varied = tuple(dict.fromkeys(k for _, point, _ in points for k in point
                                 if _varies(resolved, k)))
    specs, code = [], suite.experiment.code_hash
    for params in resolved:
        needs = _producers(suite, profile, params)
        need_ids = {name: spec.run_id for name, spec in needs.items()}
        specs += [RunSpec(suite=model.name, experiment=model.experiment, profile=profile,
                          params=params, seed=seed, resources=prof.resources or model.resources,
                          varied=varied, needs=needs,
                          run_id=run_id(model.name, model.experiment, code, params, seed, need_ids))
                  for seed in prof.seeds]
    kept = list({s.run_id: s for s in specs}.values())
    if check_repeats and len(kept) < len(specs):
        twice = next(s for i, s in enumerate(specs) if s in specs[:i])
        raise Refused(suite.path, grid_key, f"profile {profile} lists the same run twice "
                      f"({twice.label}): each configuration may appear once in its grids")
    return kept


def _points(grid: Grids, key: str, fixed: dict[str, str]) -> list[tuple[str, dict, dict]]:
    """Cartesian product of each grid's axes (a list of grids: their union, in order), each point
    with the key path of its grid and the key path to blame for each parameter, that set it or,
    in a tied axis, should have set it (as the axis's other entries do)."""
    points = []
    for where, one in _each_grid(grid, key):
        axes = []  # each value as the parameters it sets, its key path if tied, the axis's values
        for name, values in one.items():
            tied = isinstance(values[0], dict)  # an axis is all values or all tables (checked)
            entries = values if tied else [{name: v} for v in values]
            axes.append([(entry, tied and f"{where}.{name}.{j}", values)
                         for j, entry in enumerate(entries)])
        for combo in itertools.product(*axes):
            point = {k: v for part, _, _ in combo for k, v in part.items()}
            forgot = {k: entry for _, entry, values in reversed(combo) if entry
                      for other in values for k in other}
            origin = {k: f"{entry or where}.{k}" for part, entry, _ in combo for k in part}
            points.append((where, point, {**forgot, **fixed, **origin}))
    return points


def _varies(configurations: list[dict], name: str) -> bool:
    return len({json.dumps(c.get(name)) for c in configurations}) > 1


def _producers(suite: Suite, profile: str, params: dict) -> dict[str, RunSpec]:
    """The one producer run per need of a configuration: the one ``where`` picks, with the
    configuration's own values of the ``same`` parameters, at its first seed."""
    chosen = {}
    for name, need in suite.model.needs.items():
        where = {**need.where, **{key: params[key] for key in need.same}}
        matching = [s for s in suite.producers[name].runs(profile) if matches(s.params, where)]
        configurations = {json.dumps(s.params, sort_keys=True) for s in matching}
        if len(configurations) != 1:
            raise Refused(suite.path, f"needs.{name}.where", f"picks {len(configurations)} "
                          f"configurations of suite {need.suite!r} at profile {profile} "
                          f"({describe(where)}); it must pick exactly one")
        chosen[name] = min(matching, key=lambda s: s.seed)
    return chosen


def _check_claims(suite: Suite, profile: str) -> None:
    """A claim that applies at ``profile`` must select runs there, and vary what it reads along."""
    for i, claim in enumerate(suite.model.claims):
        for key, selection in claim.selections().items() if claim.at(profile) else ():
            chosen = [s.params for s in suite.runs(profile) if matches(s.params, selection)]
            if not chosen:
                raise Refused(suite.path, f"claims.{i}.{key}", f"selects no run at profile "
                              f"{profile} ({describe(selection)}): it could never give a "
                              "verdict; fix the selection or limit the claim with "
                              "profiles = [...]")
            for axis_key, names in claim.axes().items():
                for name in names:
                    if not _varies(chosen, name):
                        raise Refused(suite.path, f"claims.{i}.{axis_key}", f"parameter "
                                      f"{name!r} does not vary in the runs the claim selects at "
                                      f"profile {profile} (only {name}={chosen[0].get(name)}): "
                                      "it could never give a verdict")
