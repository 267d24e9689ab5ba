"""Suite files: parse a TOML file, validate it against the schema and its experiment, expand it
into run specs.

A suite says *what* runs: one experiment of ``dlrepro/experiments``, a parameter grid, seeds and
resources per profile, and the slide's claims. Nothing in it is evaluated as code; every key is
checked when the file loads — types, the experiment's parameters for every point of every
profile's grid, the claims against the runs they would select — and a mistake is reported as
``file: key.path: message``. Loading imports neither torch nor pandas.
"""

from __future__ import annotations

import graphlib
import hashlib
import itertools
import json
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dlrepro import experiment as contract
from dlrepro.files import read_text
from dlrepro.formatting import assignments
from dlrepro.schema import PROFILES, Metric, Resources, SuiteModel

_ABSENT = object()


class SuiteError(Exception):
    """A suite (or runner) file that cannot be used; the message names the file and the key path."""

    def __init__(self, path: Path | str, key: str, message: str):
        self.path, self.key, self.reason = Path(path), key, message
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


# ``--set KEY=VALUE`` from the command line, VALUE read as TOML: applied on top of a suite file.
Override = tuple[str, Any]


def parse_override(text: str) -> Override:
    """``KEY=VALUE`` with VALUE as TOML (``7``, ``1e-3``, ``[3, 5, 7]``, ``true``, ``"pca"``); a bare word is a string."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        raise SuiteError("--set", "", f"{text!r} is not KEY=VALUE with a parameter name as KEY (e.g. --set epochs=7)")
    try:
        return key, tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value.strip()):
            return key, value.strip()
        raise SuiteError("--set", key, f"{value!r} is not a TOML value (a number, true/false, a \"string\", "
                         "a [list])") from None


def describe_overrides(overrides: list[Override]) -> str:
    """The overrides as written on a command line, in a canonical order: ``dataset=fashion_mnist,epochs=7``."""
    def toml(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ",".join(map(toml, value)) + "]"
        if isinstance(value, dict):
            return "{" + ",".join(f"{k}={toml(v)}" for k, v in value.items()) + "}"
        return str(value).lower() if isinstance(value, bool) else str(value)

    return ",".join(f"{key}={toml(value)}" for key, value in sorted(overrides, key=lambda o: o[0]))


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
    needs: dict[str, RunSpec] = field(default_factory=dict)  # name -> the producer run whose files it reads

    @property
    def label(self) -> str:
        shown = assignments((k, v) for k, v in self.params.items() if k in self.varied)
        return f"{self.suite} [{shown}] seed {self.seed}" if shown else f"{self.suite} seed {self.seed}"


@dataclass(frozen=True)
class Suite:
    path: Path
    model: SuiteModel
    experiment: contract.Experiment
    producers: dict[str, Suite]  # by need name: the suites whose runs this one reads
    specs: dict[str, list[RunSpec]] = field(default_factory=dict)  # by profile, filled when the file loads

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def metrics(self) -> dict[str, Metric]:
        return self.experiment.metrics

    def runs(self, profile: str) -> list[RunSpec]:
        """Grid × seeds of one profile, in a stable order, each with its deterministic run_id."""
        return self.specs[profile]


def run_id(suite: str, experiment: str, code: str, params: dict, seed: int, needs: dict[str, str]) -> str:
    """Hash of what determines a run's result: the resolved configuration, the code it executes
    (``Experiment.code_hash``) and the run_ids of the runs whose files it reads. Two profiles that
    resolve to the same configuration share the run, in their own results folders."""
    fields = {"suite": suite, "experiment": experiment, "code": code, "params": params, "seed": seed}
    key = json.dumps({**fields, "needs": needs} if needs else fields, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def load(path: Path | str, overrides: list[Override] = ()) -> Suite:
    """Parse and validate one suite file and the suites it needs; raise SuiteError naming the file
    and key on any problem. ``overrides`` (``--set``) apply on top of every profile of the file, and
    to the suites it needs for the parameters those share with it (``needs.*.same``)."""
    suite = _load(Path(path), [])
    if not overrides:
        return suite
    try:  # the file itself is sound: whatever fails now is the overrides' doing
        return _load(Path(path), list(overrides))
    except SuiteError as err:
        keys = [key for key, _ in overrides if key in err.key.split(".")] or [key for key, _ in overrides]
        raise SuiteError(path, "--set " + ", --set ".join(keys), err.reason) from None


def _load(path: Path, overrides: list[Override]) -> Suite:
    models: dict[Path, SuiteModel] = {}
    graph: dict[Path, list[Path]] = {}
    todo = [(path, overrides)]
    while todo:
        current, applied = todo.pop()
        if current.resolve() in graph:
            continue
        model = models[current.resolve()] = _parse(current, applied)
        graph[current.resolve()] = []
        for name, need in model.needs.items():
            producer = current.parent / f"{need.suite}.toml"
            if not producer.is_file():
                raise SuiteError(current, f"needs.{name}.suite", f"no suite file {producer}")
            graph[current.resolve()].append(producer.resolve())
            todo.append((producer, [(key, value) for key, value in applied if key in need.same]))
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        cycle = err.args[1]  # [a, b, …, a]: a needs … needs a
        first = cycle[-1]
        chain = " → ".join(p.stem for p in reversed(cycle))
        name = next(n for n, need in models[first].needs.items() if need.suite == cycle[-2].stem)
        raise SuiteError(first, f"needs.{name}.suite", f"circular dependency: {chain}") from None
    loaded: dict[Path, Suite] = {}
    for file in order:  # producers first
        loaded[file] = _build(path if file == path.resolve() else file, models[file], loaded, check_claims=not overrides)
    return loaded[path.resolve()]


def _parse(path: Path, overrides: list[Override]) -> SuiteModel:
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise SuiteError(path, "", "no such suite file") from None
    except IsADirectoryError:
        raise SuiteError(path, "", "is a directory, not a suite file") from None
    except PermissionError:
        raise SuiteError(path, "", "not readable (permission denied)") from None
    except UnicodeDecodeError as err:
        raise SuiteError(path, "", f"not UTF-8 text: {err.reason} at byte {err.start}") from None
    except OSError as err:
        raise SuiteError(path, "", f"cannot be read: {err.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SuiteError(path, "", f"not valid TOML: {err}") from None
    for key, value in overrides:
        _override(path, data, key, value)
    try:
        model = SuiteModel.model_validate(data)
    except ValidationError as err:
        error = _best_error(err)
        raise SuiteError(path, ".".join(_key_path(error)), _message(error)) from None
    if model.name != path.stem:
        raise SuiteError(path, "name", f"{model.name!r} differs from the file name {path.stem!r}")
    return model


def _override(path: Path, data: dict, key: str, value: Any) -> None:
    """Apply ``--set key=value`` to a suite file's data, in place, for every profile.

    ``seeds`` replaces every profile's seeds. A grid axis takes the value (a list sweeps it); an axis
    of tied entries named by the key keeps the entries with those values. A parameter that tied
    entries set takes the value in each of them. Any other parameter is fixed everywhere, or swept
    by a new axis when a list is given for a parameter that is not itself a list. Whatever it sets
    is then validated like the file."""
    profiles = [p for p in data.get("profiles", {}).values() if isinstance(p, dict)]
    if key == "seeds":
        for profile in profiles:
            profile["seeds"] = value if isinstance(value, list) else [value]
        return
    grids = [g for owner in [data, *profiles] if "grid" in owner
             for g in (owner["grid"] if isinstance(owner["grid"], list) else [owner["grid"]]) if isinstance(g, dict)]
    values = value if isinstance(value, list) else [value]
    on_axis = False
    for grid in grids:
        for axis, entries in grid.items():
            tied = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
            if axis == key:
                on_axis = True
                grid[axis] = values if not tied else [e for e in tied if e.get(key) in values] + \
                    [{key: v} for v in values if all(e.get(key) != v for e in tied)]
            elif any(key in e for e in tied):
                if isinstance(value, list):
                    raise SuiteError(path, f"--set {key}", f"set together with other parameters by the tied grid axis "
                                     f"{axis!r}, so a list cannot sweep it: override that axis (--set {axis}=[{{...}}])")
                for entry in tied:
                    if key in entry:
                        entry[key] = value
    if on_axis:
        return
    if isinstance(value, list) and not _takes_a_list(data.get("experiment"), key):
        for grid in grids:
            grid[key] = values
    else:
        for owner in [data, *profiles]:
            owner.setdefault("parameters", {})[key] = value


def _takes_a_list(experiment: object, key: str) -> bool:
    """Whether the experiment's parameter ``key`` is itself a list (so a list value sets it, not sweeps it)."""
    try:
        field = contract.get(str(experiment)).params.model_fields.get(key)
    except (KeyError, contract.ContractError):
        return False  # reported when the suite is built
    return field is not None and typing.get_origin(field.annotation) in (list, tuple)


def _build(path: Path, model: SuiteModel, loaded: dict[Path, Suite], check_claims: bool = True) -> Suite:
    """The suite with its run specs per profile; an overridden one (``check_claims`` false) skips the
    checks that catch mistakes in a file but not in an override: repeated runs, claims left without runs."""
    try:
        experiment = contract.get(model.experiment)
    except KeyError:
        raise SuiteError(path, "experiment", f"unknown experiment {model.experiment!r}; "
                         f"available: {', '.join(contract.available())}") from None
    except contract.ContractError as err:
        raise SuiteError(path, "experiment", f"experiment {model.experiment!r} is broken: {err}") from None
    producers = {name: loaded[(path.parent / f"{need.suite}.toml").resolve()] for name, need in model.needs.items()}
    suite = Suite(path, model, experiment, producers)
    _check_names(suite)
    for profile in PROFILES:
        suite.specs[profile] = _expand_profile(suite, profile, check_repeats=check_claims)
    # A claim that selects no run is a mistake in a file, but an override may remove its runs on
    # purpose: then it says "not run" when evaluated.
    for profile in PROFILES if check_claims else ():
        _check_claims(suite, profile)
    return suite


def _check_names(suite: Suite) -> None:
    """Parameter names wherever the file sets or selects one; each parameter set by one axis per grid."""
    m, known = suite.model, set(suite.experiment.params.model_fields)

    def unknown(key: str, name: str, of: str = f"experiment {m.experiment!r}", names: set[str] = known) -> None:
        if name not in names:
            raise SuiteError(suite.path, key, f"unknown parameter of {of}; known: {', '.join(sorted(names))}")

    for name in m.parameters:
        unknown(f"parameters.{name}", name)
    for profile, spec in m.profiles.items():
        for name in spec.parameters:
            unknown(f"profiles.{profile}.parameters.{name}", name)
    for key, grid in _grids(suite):
        setters: dict[str, str] = {}
        for axis, values in grid.items():
            tied = [(f"{key}.{axis}.{i}", name) for i, v in enumerate(values) if isinstance(v, dict) for name in v]
            for where, name in tied or [(key, axis)]:
                unknown(f"{where}.{name}" if tied else f"{key}.{axis}", name)
                if setters.get(name, axis) != axis:
                    raise SuiteError(suite.path, f"{key}.{axis}", f"parameter {name!r} is also set by axis "
                                     f"{setters[name]!r}: each parameter may be set by one axis of a grid")
                setters[name] = axis
    for i, claim in enumerate(m.claims):
        if claim.metric not in suite.metrics:
            raise SuiteError(suite.path, f"claims.{i}.metric", f"experiment {m.experiment!r} never logs metric "
                             f"{claim.metric!r}; it logs: {', '.join(sorted(suite.metrics))}")
        for key in ("where", "applies", "left", "right"):
            for name in getattr(claim, key, {}):
                unknown(f"claims.{i}.{key}.{name}", name)
        for key, names in claim.axes().items():
            for name in names:
                unknown(f"claims.{i}.{key}", name)
    for name, need in m.needs.items():
        producer = suite.producers[name]
        for param in need.where:
            unknown(f"needs.{name}.where.{param}", param, f"suite {need.suite!r} (experiment "
                    f"{producer.model.experiment!r})", set(producer.experiment.params.model_fields))
        for i, param in enumerate(need.same):
            unknown(f"needs.{name}.same.{i}", param)
            unknown(f"needs.{name}.same.{i}", param, f"suite {need.suite!r} (experiment "
                    f"{producer.model.experiment!r})", set(producer.experiment.params.model_fields))


def _grids(suite: Suite) -> list[tuple[str, dict]]:
    """Every grid in the file with its key path."""
    found = []
    for prefix, grid in [("grid", suite.model.grid)] + [(f"profiles.{name}.grid", spec.grid)
                                                        for name, spec in suite.model.profiles.items() if spec.grid]:
        found += [(f"{prefix}.{i}", one) for i, one in enumerate(grid)] if isinstance(grid, list) else [(prefix, grid)]
    return found


def _points(grid, key: str) -> list[tuple[str, dict[str, Any], dict[str, str], list[tuple[str, list]]]]:
    """Cartesian product of each grid's axes; a list of grids is their union, in order. Each point
    comes with the key path of its grid, the key path that set each parameter, and the tied-axis
    entries it took (key path, the axis's entries)."""
    points = []
    for i, one in enumerate(grid if isinstance(grid, list) else [grid]):
        where = f"{key}.{i}" if isinstance(grid, list) else key
        axes = [[(v, f"{where}.{name}.{j}", values) if isinstance(v, dict) else ({name: v}, None, values)
                 for j, v in enumerate(values)] for name, values in one.items()]
        for combo in itertools.product(*axes):
            point = {k: v for part, _, _ in combo for k, v in part.items()}
            origin = {k: f"{entry}.{k}" if entry else f"{where}.{k}" for part, entry, _ in combo for k in part}
            ties = [(entry, values) for _, entry, values in combo if entry]
            points.append((where, point, origin, ties))
    return points


def _expand_profile(suite: Suite, profile: str, check_repeats: bool = True) -> list[RunSpec]:
    m, prof = suite.model, suite.model.profiles[profile]
    grid_key = f"profiles.{profile}.grid" if prof.grid is not None else "grid"
    fixed = {**{k: f"parameters.{k}" for k in m.parameters},
             **{k: f"profiles.{profile}.parameters.{k}" for k in prof.parameters}}
    resolved, points = [], _points(prof.grid if prof.grid is not None else m.grid, grid_key)
    for where, point, origin, ties in points:
        try:
            params = suite.experiment.params.model_validate({**m.parameters, **prof.parameters, **point}).model_dump()
        except ValidationError as err:
            error = _best_error(err)
            raise SuiteError(suite.path, _source(error, where, {**fixed, **origin}, ties), _message(error)) from None
        resolved.append(params)
    # In the grid's order of axes: how labels and baselines name a configuration.
    varied = tuple(dict.fromkeys(k for _, point, _, _ in points for k in point
                                 if len({json.dumps(q.get(k)) for q in resolved}) > 1))
    resources, code = prof.resources or m.resources, suite.experiment.code_hash
    specs = []
    for params in resolved:
        needs = _producers(suite, profile, params)
        need_ids = {name: spec.run_id for name, spec in needs.items()}
        specs += [RunSpec(suite=suite.name, experiment=m.experiment, profile=profile, params=params, seed=seed,
                          resources=resources, varied=varied, needs=needs,
                          run_id=run_id(suite.name, m.experiment, code, params, seed, need_ids))
                  for seed in prof.seeds]
    if not check_repeats:  # overrides may make two grids' runs the same: run it once
        specs = list({s.run_id: s for s in specs}.values())
    ids = [s.run_id for s in specs]
    if len(ids) != len(set(ids)):
        twice = next(s for s in specs if ids.count(s.run_id) > 1)
        raise SuiteError(suite.path, grid_key, f"profile {profile} lists the same run twice ({twice.label}): "
                         "each configuration may appear once in its grids")
    return specs


def _source(error: dict, grid_key: str, origin: dict[str, str], ties: list[tuple[str, list]]) -> str:
    """The key path in the file that supplied, or should have supplied, the offending parameter."""
    loc = _key_path(error)
    if not loc:  # a rule across parameters: the grid point that combined them
        return grid_key
    name = loc[0]
    if name in origin:
        return ".".join([origin[name], *loc[1:]])
    for entry, entries in ties:  # a tied entry that forgot what the axis's other entries set
        if any(name in e for e in entries):
            return entry
    return f"parameters.{name}"


def _producers(suite: Suite, profile: str, params: dict) -> dict[str, RunSpec]:
    """The one producer run per need of a configuration: the one ``where`` picks, with the
    configuration's own values of the ``same`` parameters, at its first seed."""
    chosen = {}
    for name, need in suite.model.needs.items():
        where = {**need.where, **{key: params[key] for key in need.same}}
        matching = [s for s in suite.producers[name].runs(profile) if _matches(s.params, where)]
        configurations = {json.dumps(s.params, sort_keys=True) for s in matching}
        if len(configurations) != 1:
            raise SuiteError(suite.path, f"needs.{name}.where", f"picks {len(configurations)} configurations of "
                             f"suite {need.suite!r} at profile {profile} ({_describe(where)}); it must pick exactly one")
        chosen[name] = min(matching, key=lambda s: s.seed)
    return chosen


def _matches(params: dict, where: dict) -> bool:
    """Whether a configuration has every value of ``where`` (a boolean is not a number here)."""
    return all(params.get(k, _ABSENT) == v and isinstance(params.get(k), bool) == isinstance(v, bool)
               for k, v in where.items())


def _check_claims(suite: Suite, profile: str) -> None:
    """A claim that applies at ``profile`` must select runs there, and vary what it reads along."""
    configurations = [json.loads(c) for c in dict.fromkeys(json.dumps(s.params, sort_keys=True)
                                                           for s in suite.runs(profile))]
    for i, claim in enumerate(suite.model.claims):
        if claim.profiles is not None and profile not in claim.profiles:
            continue
        for key, selection in claim.selections().items():
            chosen = [c for c in configurations if _matches(c, selection)]
            if not chosen:
                raise SuiteError(suite.path, f"claims.{i}.{key}", f"selects no run at profile {profile} "
                                 f"({_describe(selection)}): it could never give a verdict; fix the selection or "
                                 f"limit the claim with profiles = [...]")
            for axis_key, names in claim.axes().items():
                for name in names:
                    values = {json.dumps(c.get(name)) for c in chosen}
                    if len(values) < 2:
                        raise SuiteError(suite.path, f"claims.{i}.{axis_key}", f"parameter {name!r} does not vary "
                                         f"in the runs the claim selects at profile {profile} (only "
                                         f"{name}={chosen[0].get(name)}): it could never give a verdict")


def _describe(selection: dict) -> str:
    return assignments(selection.items()) or "every run"


def _key_path(error: dict) -> list[str]:
    # pydantic puts the member type of a union or a validator's name in the location; it is not a key.
    return [str(p) for p in error["loc"] if not (isinstance(p, str) and ("[" in p or p in UNION_TAGS))]


UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "function-after", "function-before", "tagged-union"}


def _best_error(err: ValidationError) -> dict:
    """The deepest error: for a union, the branch that got furthest says what is really wrong."""
    return max(err.errors(), key=lambda e: len(_key_path(e)))


def _message(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required, and given nowhere"
    return error["msg"].removeprefix("Value error, ")


def suites_dir() -> Path:
    """The project's suites/ folder: beside the package in a checkout, else in the working directory."""
    beside = Path(__file__).resolve().parents[1] / "suites"
    return beside if beside.is_dir() else Path.cwd() / "suites"


def resolve(names: list[str], overrides: list[Override] = ()) -> list[Suite]:
    """Suites named on the command line (a name in suites/ or a path to a TOML file); none means all.
    ``overrides`` apply to each of them."""
    if not names:
        return [load(p, overrides) for p in sorted(suites_dir().glob("*.toml"))]
    found = []
    for name in names:
        is_path = name.endswith(".toml") or "/" in name or "\\" in name
        path = Path(name) if is_path else suites_dir() / f"{name}.toml"
        if not is_path and not path.exists():
            known = ", ".join(p.stem for p in sorted(suites_dir().glob("*.toml")))
            raise SuiteError(path, "", f"no suite named {name!r}; known suites: {known}")
        found.append(load(path, overrides))
    return found

