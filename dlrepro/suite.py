"""Suite files: parse a TOML file, validate it against the schema, expand it into run specs.

A suite says *what* runs: one experiment of `dlrepro.experiments`, a parameter grid, seeds and
resources per profile, the metrics it reports and the slide's claims. Nothing in it is evaluated
as code; every key is checked, and a mistake is reported as ``file: key.path: message``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dlrepro import experiments
from dlrepro.claims import Claim, Scalar

PROFILES = ("smoke", "quick", "full")
Profile = Literal["smoke", "quick", "full"]
ParamValue = Scalar | list[Scalar]
# A grid axis lists values for one parameter, or tables of parameters that move together (a tie).
Axis = Annotated[list[ParamValue] | list[dict[str, ParamValue]], Field(min_length=1)]
Grid = dict[str, Axis]
_ABSENT = object()
_LOADING: list[Path] = []  # suite files being loaded, outermost first: a need that loops back is a cycle


class SuiteError(Exception):
    """A suite file that cannot be used; the message names the file and the key path."""

    def __init__(self, path: Path | str, key: str, message: str):
        self.path, self.key = Path(path), key
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    seed: str = Field(description="the seed document, e.g. '002' for 002_*.txt in shared/seeds")
    slide: str = Field(description="the slide or section title, as printed")
    note: str = ""


class Resources(Strict):
    cpus: int = Field(1, ge=1, description="CPU cores, also the torch thread count of the run")
    gpus: float = Field(0, ge=0, description="GPUs, fractions allowed (Ray packs runs on one GPU)")


class Metric(Strict):
    better: Literal["higher", "lower", "two-sided"]
    description: str = ""
    tolerance: float | None = Field(None, ge=0, description="absolute tolerance for regression checks")
    rel_tolerance: float | None = Field(None, ge=0, description="relative tolerance for regression checks")
    timing: bool = Field(False, description="a speed measurement: hardware-bound, so never in regression baselines")


class Need(Strict):
    suite: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the suite, in the same folder, whose run's files are read")
    where: dict[str, Scalar] = Field({}, description="parameters that pick one configuration of that suite")


class ProfileSpec(Strict):
    seeds: Annotated[list[int], Field(min_length=1)]
    parameters: dict[str, ParamValue] = {}
    grid: Grid | list[Grid] | None = Field(None, description="replaces the suite's grid")
    resources: Resources | None = None


class SuiteModel(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    source: Source
    experiment: str
    parameters: dict[str, ParamValue] = {}
    grid: Grid | list[Grid]
    resources: Resources = Resources()
    needs: dict[str, Need] = Field({}, description="runs of other suites whose files (e.g. a trained model) each "
                                   "run reads, under the given name; they run first, at the same profile")
    profiles: dict[Profile, ProfileSpec]
    metrics: dict[str, Metric] = {}
    claims: list[Claim] = []

    @field_validator("profiles")
    @classmethod
    def _all_profiles(cls, profiles: dict) -> dict:
        missing = [p for p in PROFILES if p not in profiles]
        if missing:
            raise ValueError(f"missing profile(s) {', '.join(missing)}; every suite defines {', '.join(PROFILES)}")
        return profiles


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
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items() if k in self.varied)
        return f"{self.suite} [{shown}] seed {self.seed}" if shown else f"{self.suite} seed {self.seed}"


@dataclass(frozen=True)
class Suite:
    path: Path
    model: SuiteModel

    @property
    def name(self) -> str:
        return self.model.name

    @functools.cached_property
    def metrics(self) -> dict[str, Metric]:
        """The experiment's own metric declarations (``METRICS`` in its module), overridden by the suite's."""
        defaults = getattr(experiments.load(self.model.experiment), "METRICS", {})
        return {**{name: Metric(**spec) for name, spec in defaults.items()}, **self.model.metrics}

    def runs(self, profile: str) -> list[RunSpec]:
        """Grid × seeds of one profile, in a stable order, each with its deterministic run_id."""
        if profile not in PROFILES:
            raise SuiteError(self.path, "profiles", f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
        prof = self.model.profiles[profile]
        module = experiments.load(self.model.experiment)
        grid_key = f"profiles.{profile}.grid" if prof.grid is not None else "grid"
        keyed = _expand(prof.grid if prof.grid is not None else self.model.grid, grid_key)
        points = [point for _, point in keyed]
        varied = tuple(dict.fromkeys(k for p in points for k in p if len({json.dumps(q.get(k)) for q in points}) > 1))
        resources = prof.resources or self.model.resources
        needs = self.producers(profile)
        specs = []
        for key, point in keyed:
            given = {**self.model.parameters, **prof.parameters, **point}
            try:
                params = module.Params(**given).model_dump()
            except ValidationError as err:
                raise SuiteError(self.path, _param_source(err, key, profile, point, prof.parameters),
                                 _first_error(err)) from None
            for seed in prof.seeds:
                specs.append(RunSpec(
                    suite=self.name, experiment=self.model.experiment, profile=profile, params=params,
                    seed=seed, resources=resources, varied=varied, needs=needs,
                    run_id=run_id(self.name, self.model.experiment, experiments.code_hash(module), params, seed,
                                  {name: spec.run_id for name, spec in needs.items()}),
                ))
        return specs

    @functools.cached_property
    def producer_suites(self) -> dict[str, Suite]:
        """The suites named under ``needs``, loaded from this suite's folder; a cycle is an error."""
        found = {}
        for name, need in self.model.needs.items():
            path = self.path.parent / f"{need.suite}.toml"
            if path.resolve() in _LOADING:
                chain = " → ".join(p.stem for p in [*_LOADING, path])
                raise SuiteError(self.path, f"needs.{name}.suite", f"circular dependency: {chain}")
            if not path.exists():
                raise SuiteError(self.path, f"needs.{name}.suite", f"no suite file {path}")
            found[name] = load(path)
        return found

    def producers(self, profile: str) -> dict[str, RunSpec]:
        """The one producer run per need: the configuration ``where`` picks, at its first seed."""
        chosen = {}
        for name, need in self.model.needs.items():
            producer = self.producer_suites[name]
            matching = [s for s in producer.runs(profile)
                        if all(s.params.get(k, _ABSENT) == v for k, v in need.where.items())]
            configurations = {json.dumps(s.params, sort_keys=True) for s in matching}
            if len(configurations) != 1:
                raise SuiteError(self.path, f"needs.{name}.where", f"picks {len(configurations)} configurations of "
                                 f"suite {need.suite!r} at profile {profile}; it must pick exactly one")
            chosen[name] = min(matching, key=lambda s: s.seed)
        return chosen


def run_id(suite: str, experiment: str, code: str, params: dict, seed: int, needs: dict[str, str]) -> str:
    """Hash of what determines a run's result: the resolved configuration, the experiment's code and
    the run_ids of the runs whose files it reads.

    The profile is not part of it: two profiles that resolve to the same configuration share results.
    """
    fields = {"suite": suite, "experiment": experiment, "code": code, "params": params, "seed": seed}
    key = json.dumps({**fields, "needs": needs} if needs else fields, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _expand(grid: Grid | list[Grid], key: str) -> list[tuple[str, dict[str, Any]]]:
    """Cartesian product of each grid's axes; a list of grids is their union, in order.
    Each point comes with the key path of the grid it came from."""
    points = []
    for i, one in enumerate(grid if isinstance(grid, list) else [grid]):
        axes = [[v if isinstance(v, dict) else {name: v} for v in values] for name, values in one.items()]
        for combo in itertools.product(*axes):
            points.append((f"{key}.{i}" if isinstance(grid, list) else key,
                           {k: v for part in combo for k, v in part.items()}))
    return points


def _param_source(err: ValidationError, grid_key: str, profile: str, point: dict, profile_params: dict) -> str:
    """The key path in the file that supplied the offending parameter."""
    loc = _best_error(err)["loc"]
    name = str(loc[0]) if loc else ""
    if name in point:
        return f"{grid_key}.{name}"
    if name in profile_params:
        return f"profiles.{profile}.parameters.{name}"
    return f"parameters.{name}" if name else "parameters"


def _key_path(error: dict) -> list[str]:
    # pydantic puts the member type of a union in the location (e.g. 'list[...]'); it is not a key.
    return [str(p) for p in error["loc"] if not (isinstance(p, str) and ("[" in p or p in UNION_TAGS))]


UNION_TAGS = {"str", "int", "float", "bool", "function-after", "tagged-union"}


def _best_error(err: ValidationError) -> dict:
    """The deepest error: for a union, the branch that got furthest says what is really wrong."""
    return max(err.errors(), key=lambda e: len(_key_path(e)))


def _first_error(err: ValidationError) -> str:
    best = _best_error(err)
    return "unknown key" if best["type"] == "extra_forbidden" else best["msg"]


def load(path: Path | str) -> Suite:
    """Parse and validate one suite file; raise SuiteError naming the file and key on any problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(path, "", "no such suite file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SuiteError(path, "", f"not valid TOML: {err}") from None
    try:
        model = SuiteModel(**data)
    except ValidationError as err:
        raise SuiteError(path, ".".join(_key_path(_best_error(err))), _first_error(err)) from None
    if model.name != path.stem:
        raise SuiteError(path, "name", f"{model.name!r} differs from the file name {path.stem!r}")
    suite = Suite(path, model)
    _LOADING.append(path.resolve())
    try:
        _check_references(suite)
    finally:
        _LOADING.pop()
    return suite


def _check_references(suite: Suite) -> None:
    """Experiment, parameter and metric names must exist; grids must be expandable for every profile."""
    m = suite.model
    try:
        module = experiments.load(m.experiment)
    except KeyError:
        raise SuiteError(suite.path, "experiment",
                         f"unknown experiment {m.experiment!r}; available: {', '.join(experiments.available())}") from None
    known = set(module.Params.model_fields)
    named = [("parameters", k) for k in m.parameters]
    for name, prof in m.profiles.items():
        named += [(f"profiles.{name}.parameters", k) for k in prof.parameters]
    for prefix, grid in [("grid", m.grid)] + [(f"profiles.{n}.grid", p.grid) for n, p in m.profiles.items() if p.grid]:
        for i, one in enumerate(grid if isinstance(grid, list) else [grid]):
            where = f"{prefix}.{i}" if isinstance(grid, list) else prefix
            if not one:
                raise SuiteError(suite.path, where, "empty grid: give at least one axis with at least one value")
            for axis, values in one.items():
                tied = [k for v in values if isinstance(v, dict) for k in v]
                named += [(f"{where}.{axis}", k) for k in tied] if tied else [(where, axis)]
    for prefix, key in named:
        if key not in known:
            raise SuiteError(suite.path, f"{prefix}.{key}",
                             f"unknown parameter of experiment {m.experiment!r}; known: {', '.join(sorted(known))}")
    for i, claim in enumerate(m.claims):
        for metric in claim.metrics():
            if metric not in suite.metrics:
                raise SuiteError(suite.path, f"claims.{i}.metric", f"metric {metric!r} is declared neither under "
                                 f"[metrics] nor by experiment {m.experiment!r}")
        for param in claim.parameters():
            if param not in known:
                raise SuiteError(suite.path, f"claims.{i}", f"unknown parameter {param!r} in a claim")
    for name, need in m.needs.items():
        producer = suite.producer_suites[name].model
        unknown = set(need.where) - set(experiments.load(producer.experiment).Params.model_fields)
        if unknown:
            raise SuiteError(suite.path, f"needs.{name}.where.{sorted(unknown)[0]}",
                             f"unknown parameter of suite {need.suite!r} (experiment {producer.experiment!r})")
    ids = [c.id for c in m.claims]
    if len(ids) != len(set(ids)):
        raise SuiteError(suite.path, "claims", "claim ids must be unique")
    for profile in PROFILES:
        suite.runs(profile)


def suites_dir() -> Path:
    """The project's suites/ folder: beside the package in a checkout, else in the working directory."""
    beside = Path(__file__).resolve().parents[1] / "suites"
    return beside if beside.is_dir() else Path.cwd() / "suites"


def resolve(names: list[str]) -> list[Suite]:
    """Suites named on the command line (a name in suites/ or a path to a TOML file); none means all."""
    if not names:
        return [load(p) for p in sorted(suites_dir().glob("*.toml"))]
    found = []
    for name in names:
        path = Path(name) if name.endswith(".toml") else suites_dir() / f"{name}.toml"
        if not path.exists() and not name.endswith(".toml"):
            known = ", ".join(p.stem for p in sorted(suites_dir().glob("*.toml")))
            raise SuiteError(path, "", f"no suite named {name!r}; known suites: {known}")
        found.append(load(path))
    return found
