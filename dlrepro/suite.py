"""Suite files: parse a TOML file, validate it against the schema and its experiment (every
profile's grid, the claims against the runs they select), expand it into run specs; a mistake is
``file: key.path: message``. Loading imports neither torch nor pandas."""

from __future__ import annotations

import dataclasses
import graphlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from dlrepro import experiment as contract
from dlrepro.errors import Refused, best_error, key_path, message
from dlrepro.files import read_text
from dlrepro.grid import RunSpec, describe, expand_profile, keyed_grids, matches
from dlrepro.overrides import Override, Verb, apply_override, named, sweeps
from dlrepro.schema import PROFILES, Metric, SuiteModel


@dataclass(frozen=True)
class Suite:
    path: Path
    model: SuiteModel
    experiment: contract.Experiment
    producers: dict[str, Suite]  # by need name: the suites whose runs this one reads
    # by profile, filled when the file loads
    specs: dict[str, list[RunSpec]] = field(default_factory=dict)
    only: dict[str, list] = field(default_factory=dict)  # ``--only``: the values kept, by key
    swept: tuple[str, ...] = ()  # parameters a ``--set`` list sweeps (claims must fix them)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def metrics(self) -> dict[str, Metric]:
        return self.experiment.metrics

    def runs(self, profile: str) -> list[RunSpec]:
        """Grid × seeds of one profile, in a stable order, each with its deterministic run_id; with
        ``--only``, those with its values."""
        return [spec for spec in self.specs[profile] if _kept(spec.params, self.only)]


def load(path: Path | str, overrides: list[Override] = (), only: list[Override] = ()) -> Suite:
    """Parse and validate one suite file and the suites it needs; raise Refused naming the file
    and key on any problem. ``overrides`` (``--set``) apply on top of every profile of the file, and
    to the suites it needs for the parameters those share with it (``needs.*.same``). ``only``
    (``--only``) then keeps this suite's runs with those values, at every profile."""
    suite = _load(Path(path), [])
    if overrides:
        try:  # the file itself is sound: whatever fails now is the overrides' doing
            suite = _load(Path(path), list(overrides))
        except Refused as err:
            blamed = [key for key, _ in overrides if key in err.key.split(".")]
            keys = blamed or [key for key, _ in overrides]
            raise Refused(path, named(Verb.SET, keys), err.reason) from None
        swept = [key for key, value in overrides if sweeps(suite.model.experiment, key, value)]
        suite = dataclasses.replace(suite, swept=tuple(swept))
    return _selected(suite, only) if only else suite


def _selected(suite: Suite, only: list[Override]) -> Suite:
    """The suite with the runs whose parameters have the ``--only`` values (each key: any of its
    values; a key given twice: any of both), each value checked like the file's."""
    fields = suite.experiment.params.model_fields
    kept: dict[str, list] = {}
    for key, value in only:
        if key not in fields:
            raise Refused(suite.path, named(Verb.ONLY, [key]), "unknown parameter of experiment "
                          f"{suite.model.experiment!r}; known: {', '.join(sorted(fields))}")
        for one in value if isinstance(value, list) else [value]:
            try:
                TypeAdapter(fields[key].annotation).validate_python(one)
            except ValidationError as err:
                raise Refused(suite.path, named(Verb.ONLY, [key]),
                              message(best_error(err))) from None
            kept.setdefault(key, []).append(one)
    return dataclasses.replace(suite, only=kept)


def _kept(params: dict, kept: dict[str, list]) -> bool:
    """Whether a configuration has, for each ``--only`` key, one of its values."""
    return all(any(matches(params, {key: v}) for v in values) for key, values in kept.items())


def check_selected(suites: list[Suite], profile: str) -> None:
    """Refuse a ``--only`` that keeps none of a suite's runs at ``profile``, naming the values its
    runs there have."""
    for suite in suites:
        if suite.only and not suite.runs(profile):
            there = [f"{key}={'/'.join(_values(suite.specs[profile], key))}" for key in suite.only]
            raise Refused(suite.path, named(Verb.ONLY, suite.only), "selects no "
                          f"run at profile {profile}; its runs there have {', '.join(there)}")


def _values(specs: list[RunSpec], key: str) -> list[str]:
    """The values a parameter takes in the runs that set it, each once, as text."""
    return list(dict.fromkeys(str(spec.params[key]) for spec in specs if key in spec.params))


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
                raise Refused(current, f"needs.{name}.suite", f"no suite file {producer}")
            graph[current.resolve()].append(producer.resolve())
            todo.append((producer, [(key, value) for key, value in applied if key in need.same]))
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        cycle = err.args[1]  # [a, b, …, a]: a needs … needs a
        first = cycle[-1]
        chain = " → ".join(p.stem for p in reversed(cycle))
        name = next(n for n, need in models[first].needs.items() if need.suite == cycle[-2].stem)
        raise Refused(first, f"needs.{name}.suite", f"circular dependency: {chain}") from None
    loaded: dict[Path, Suite] = {}
    for file in order:  # producers first
        shown = path if file == path.resolve() else file
        loaded[file] = _build(shown, models[file], loaded, check_claims=not overrides)
    return loaded[path.resolve()]


def _parse(path: Path, overrides: list[Override]) -> SuiteModel:
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise Refused(path, "", "no such suite file") from None
    except IsADirectoryError:
        raise Refused(path, "", "is a directory, not a suite file") from None
    except PermissionError:
        raise Refused(path, "", "not readable (permission denied)") from None
    except UnicodeDecodeError as err:
        raise Refused(path, "", f"not UTF-8 text: {err.reason} at byte {err.start}") from None
    except OSError as err:
        raise Refused(path, "", f"cannot be read: {err.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise Refused(path, "", f"not valid TOML: {err}") from None
    for key, value in overrides:
        apply_override(path, data, key, value)
    try:
        model = SuiteModel.model_validate(data)
    except ValidationError as err:
        error = best_error(err)
        raise Refused(path, ".".join(key_path(error)), message(error)) from None
    if model.name != path.stem:
        raise Refused(path, "name", f"{model.name!r} differs from the file name {path.stem!r}")
    return model


def _build(path: Path, model: SuiteModel, loaded: dict[Path, Suite],
           check_claims: bool = True) -> Suite:
    """The suite with its run specs per profile; an overridden one (``check_claims`` false) skips
    the checks that catch mistakes in a file but not in an override: repeated runs, claims left
    without runs."""
    try:
        experiment = contract.get(model.experiment)
    except KeyError:
        raise Refused(path, "experiment", f"unknown experiment {model.experiment!r}; "
                      f"available: {', '.join(contract.available())}") from None
    except Refused as err:
        raise Refused(path, "experiment", f"experiment {model.experiment!r} is broken: "
                      f"{err}") from None
    producers = {name: loaded[(path.parent / f"{need.suite}.toml").resolve()]
                 for name, need in model.needs.items()}
    suite = Suite(path, model, experiment, producers)
    _check_names(suite)
    for profile in PROFILES:
        producer_runs = {name: producer.runs(profile) for name, producer in producers.items()}
        suite.specs[profile] = expand_profile(path, model, experiment, profile, producer_runs,
                                              check_repeats=check_claims)
    # A claim that selects no run is a mistake in a file, but an override may remove its runs on
    # purpose: then it says "not run" when evaluated.
    for profile in PROFILES if check_claims else ():
        _check_claims(suite, profile)
    return suite


def _check_names(suite: Suite) -> None:
    """Parameter names wherever the file sets or selects one; each parameter set by one axis per
    grid."""
    m, known = suite.model, set(suite.experiment.params.model_fields)

    def unknown(key: str, name: str, of: str = f"experiment {m.experiment!r}",
                names: set[str] = known) -> None:
        if name not in names:
            raise Refused(suite.path, key, f"unknown parameter of {of}; known: "
                          f"{', '.join(sorted(names))}")

    for name in m.parameters:
        unknown(f"parameters.{name}", name)
    for profile, spec in m.profiles.items():
        for name in spec.parameters:
            unknown(f"profiles.{profile}.parameters.{name}", name)
    for key, grid in keyed_grids(m):
        setters: dict[str, str] = {}
        for axis, values in grid.items():
            tied = [(f"{key}.{axis}.{i}", name) for i, v in enumerate(values)
                    if isinstance(v, dict) for name in v]
            for where, name in tied or [(key, axis)]:
                unknown(f"{where}.{name}" if tied else f"{key}.{axis}", name)
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
        producer = suite.producers[name]
        of_producer = f"suite {need.suite!r} (experiment {producer.model.experiment!r})"
        producer_names = set(producer.experiment.params.model_fields)
        for param in need.where:
            unknown(f"needs.{name}.where.{param}", param, of_producer, producer_names)
        for i, param in enumerate(need.same):
            unknown(f"needs.{name}.same.{i}", param)
            unknown(f"needs.{name}.same.{i}", param, of_producer, producer_names)


def _check_claims(suite: Suite, profile: str) -> None:
    """A claim that applies at ``profile`` must select runs there, and vary what it reads along."""
    configurations = [json.loads(c) for c in dict.fromkeys(json.dumps(s.params, sort_keys=True)
                                                           for s in suite.runs(profile))]
    for i, claim in enumerate(suite.model.claims):
        if not claim.at(profile):
            continue
        for key, selection in claim.selections().items():
            chosen = [c for c in configurations if matches(c, selection)]
            if not chosen:
                raise Refused(suite.path, f"claims.{i}.{key}", f"selects no run at profile "
                              f"{profile} ({describe(selection)}): it could never give a "
                              "verdict; fix the selection or limit the claim with "
                              "profiles = [...]")
            for axis_key, names in claim.axes().items():
                for name in names:
                    values = {json.dumps(c.get(name)) for c in chosen}
                    if len(values) < 2:
                        raise Refused(suite.path, f"claims.{i}.{axis_key}", f"parameter "
                                      f"{name!r} does not vary in the runs the claim selects at "
                                      f"profile {profile} (only {name}={chosen[0].get(name)}): "
                                      "it could never give a verdict")
