"""The declarative files' schema: suites (with their claims and metric declarations) and runners.

Pure pydantic, strict: a number is a number (no "100" for 100, no true for 1), every float is
finite, unknown keys are refused. Nothing here imports torch, pandas or Ray, so that a bad file is
refused at once. What a key *means* against an experiment (its parameters, its metrics, the
expanded grid) is checked by ``suite``.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      ValidationError, field_validator, model_validator)
from pydantic_core import PydanticCustomError

from dlrepro.errors import key_path

Profile = Literal["smoke", "quick", "full"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
MAX_SEED = 2**32 - 1  # numpy's seed range
Op = Literal["<", "<=", ">", ">=", "=="]


def _scalar(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if not isinstance(value, bool | int | float | str):
        raise ValueError(f"expected a number, a string or a boolean, got {type(value).__name__}")
    return value


def _param_value(value: Any) -> Any:
    return [_scalar(v) for v in value] if isinstance(value, list) else _scalar(value)


def _choice(value: Any) -> Any:
    if value == []:
        raise ValueError("an empty list selects no run: give at least one value")
    return _param_value(value)


def choices(value: Any) -> list:
    """The values a ``where`` entry accepts: its list, or the one value."""
    return value if isinstance(value, list) else [value]


def _axis(values: Any) -> Any:
    """A grid axis: values of one parameter, or tables of parameters that move together (a tie)."""
    if not isinstance(values, list) or not values:
        raise ValueError("an axis is a non-empty list of values, or of tables of tied parameters")
    tables = [isinstance(v, dict) for v in values]
    if any(tables) and not all(tables):
        raise ValueError("an axis mixes values and tables: give only values, or only tables of "
                         "tied parameters")
    if all(tables):
        for table in values:
            if not table:
                raise ValueError("an empty table in a tied axis")
        return [{k: _param_value(v) for k, v in table.items()} for table in values]
    return [_param_value(v) for v in values]


def _grids(grid: Any) -> Any:
    """A grid is a table of axes; a list of grids is their union. Neither may be empty."""
    grids = grid if isinstance(grid, list) else [grid]
    if not grids:
        raise ValueError("an empty list of grids: give at least one grid")
    for one in grids:
        if not isinstance(one, dict):
            raise ValueError("a grid is a table of axes")
        if not one:
            raise ValueError("empty grid: give at least one axis with at least one value")
    return grid


Scalar = Annotated[bool | int | float | str, BeforeValidator(_scalar)]
# A claim's ``where``: a value, or a list of values of which a run has any.
Choice = Annotated[Any, BeforeValidator(_choice)]


ParamValue = Annotated[Any, BeforeValidator(_param_value)]
Axis = Annotated[list[Any], BeforeValidator(_axis)]
Grid = dict[str, Axis]
Grids = Annotated[Grid | list[Grid], BeforeValidator(_grids)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Source(Strict):
    seed: str = Field(description="the seed document, e.g. '002' for 002_*.txt in shared/seeds")
    slide: str = Field(description="the slide or section title, as printed")
    note: str = ""


class Resources(Strict):
    cpus: int = Field(1, ge=1, description="CPU cores, also the torch thread count of the run")
    gpus: float = Field(0, ge=0, description="GPUs, fractions allowed (Ray packs runs on one GPU)")


class Metric(Strict):
    """What an experiment declares of each metric it logs."""

    better: Literal["higher", "lower", "two-sided"]
    description: str = ""
    tolerance: float | None = Field(
        None, ge=0, description="absolute tolerance for regression checks")
    rel_tolerance: float | None = Field(
        None, ge=0, description="relative tolerance for regression checks")
    timing: bool = Field(
        False, description="a speed measurement: hardware-bound, so never in regression baselines")


class Need(Strict):
    suite: Name = Field(description="the suite, in the same folder, whose run's files are read")
    where: dict[str, Scalar] = Field(
        {}, description="parameters that pick one configuration of that suite")
    same: list[Name] = Field(
        [], description="parameters the producer run shares with each run that reads it "
        "(dataset: the classifier trained on the run's own data)")


def _repeated(values: list) -> Any | None:
    """The first of ``values`` that the list holds more than once, or None."""
    return next((v for v in values if values.count(v) > 1), None)


def _seeds(seeds: list[int]) -> list[int]:
    twice = _repeated(seeds)
    if twice is not None:
        raise ValueError(f"seed {twice} is listed twice: each seed is one run")
    return seeds


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class ProfileSpec(Strict):
    seeds: Annotated[list[Seed], Field(min_length=1), AfterValidator(_seeds)]
    parameters: dict[str, ParamValue] = {}
    grid: Grids | None = Field(None, description="replaces the suite's grid")
    resources: Resources | None = None


# ---- claims: the slide's words as checks (evaluated by dlrepro.claims) ----

class ClaimBase(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    text: str = Field(description="the slide's words")
    source: str = Field("", description="where the words are, when not the suite's own source")
    metric: str
    where: dict[str, Choice] = Field(
        {}, description="the runs the claim is about: a value, or a list of which a run has any")
    step: int | Literal["last"] | None = Field(
        None, description="None: the run's final value (no step)")
    reduce: Literal["mean", "median", "min", "max", "worst"] = Field(
        "mean",
        description="over the selected runs; worst (approx only): the one farthest from the value")
    profiles: list[Profile] | None = Field(
        None, description="the profiles whose settings the claim is about (e.g. the paper's "
        "epochs: full); default all")
    applies: dict[str, Scalar] = Field(
        {}, description="the parameter values the claim is about, e.g. dataset = 'mnist' for a "
        "published MNIST number: on other runs it does not apply")

    @model_validator(mode="after")
    def _worst_needs_a_value(self) -> ClaimBase:
        if self.reduce == "worst" and getattr(self, "kind", None) != "approx":
            raise ValueError("reduce = 'worst' (the run farthest from the value) is for approx "
                             "claims; use min or max to take the least favourable run of a "
                             "threshold")
        return self

    def at(self, profile: str) -> bool:
        """Whether the claim is about ``profile``'s settings (it is judged there)."""
        return self.profiles is None or profile in self.profiles

    def selections(self) -> dict[str, dict[str, Any]]:
        """Each selection of runs the claim compares, by the key that names it in the file."""
        return {"where": {**self.where, **self.applies}}

    def axes(self) -> dict[str, list[str]]:
        """Parameters the claim reads values along, by key: each must vary across its runs."""
        return {}


class Threshold(ClaimBase):
    kind: Literal["threshold"]
    op: Op
    value: float


class Published(Strict):
    """Marks an ``approx`` claim's ``value`` as a number printed in the course material (or the
    paper it cites): the claim becomes a row of the fidelity table."""

    source: str = Field(
        min_length=1, description="where it is printed: the seed and slide, the handout, the paper")
    why: str = Field(
        min_length=1, description="why this tolerance: the figure's rounding, the seed spread, a "
        "shorter budget than the source's")


class Approx(ClaimBase):
    kind: Literal["approx"]
    value: float | list[float]
    tolerance: float | None = Field(None, ge=0)
    rel_tolerance: float | None = Field(None, ge=0)
    over: str | None = None
    published: Published | None = None

    @model_validator(mode="after")
    def _shape(self) -> Approx:
        if (self.tolerance is None) == (self.rel_tolerance is None):
            raise ValueError("give exactly one of tolerance and rel_tolerance")
        if isinstance(self.value, list) != (self.over is not None):
            raise ValueError("a list value needs 'over' (a parameter or 'step'), and 'over' needs "
                             "a list value")
        return self

    def axes(self) -> dict[str, list[str]]:
        return {"over": [self.over]} if self.over not in (None, "step") else {}


class Monotone(ClaimBase):
    kind: Literal["monotone"]
    over: str
    direction: Literal["increasing", "decreasing"]
    strict: bool = True

    def axes(self) -> dict[str, list[str]]:
        return {"over": [self.over]} if self.over != "step" else {}


class Compare(ClaimBase):
    kind: Literal["compare"]
    left: dict[str, Scalar]
    right: dict[str, Scalar]
    op: Op
    factor: float = Field(
        1.0, gt=0, description="left op factor × right: 'at most a tenth of' is <= with 0.1")
    by: list[str] = []

    def selections(self) -> dict[str, dict[str, Any]]:
        both = super().selections()["where"]
        return {"left": {**both, **self.left}, "right": {**both, **self.right}}

    def axes(self) -> dict[str, list[str]]:
        return {"by": list(self.by)} if self.by else {}


Claim = Annotated[Threshold | Approx | Monotone | Compare, Field(discriminator="kind")]


class Level(StrEnum):
    """Where a key of a suite file can be, in the words a message uses."""

    TOP = "at the top level"
    SOURCE = "in source = { ... }"
    RESOURCES = "under [resources]"
    PROFILE = "under [profiles.NAME]"
    CLAIM = "in a [[claims]] table"
    NEED = "under [needs.NAME]"


def _level(keys: list[str]) -> Level | None:
    """The level of the table that the key path ``keys`` leads to, if it is one of Level."""
    match keys:
        case []:
            return Level.TOP
        case ["source"]:
            return Level.SOURCE
        case ["resources"] | ["profiles", _, "resources"]:
            return Level.RESOURCES
        case ["profiles", _]:
            return Level.PROFILE
        case ["claims", _]:
            return Level.CLAIM
        case ["needs", _]:
            return Level.NEED
    return None


def _misplaced(error: dict) -> PydanticCustomError | None:
    """An unknown key that is a key of another level: the error that says where it belongs."""
    if error["type"] != "extra_forbidden":
        return None
    *table, key = key_path(error)
    here = _level(table)
    places = [level for level in Level if level != here and key in _LEVEL_KEYS[level]]
    if here is None or not places:
        return None
    belong = "belong" if key.endswith("s") else "belongs"  # a plural name: "seeds belong"
    where = " or ".join(places)
    return PydanticCustomError("misplaced_key", f"unknown key ({key} {belong} {where})")


class SuiteModel(Strict):
    name: Name
    title: str
    source: Source
    experiment: str
    parameters: dict[str, ParamValue] = {}
    grid: Grids
    resources: Resources = Resources()
    needs: dict[str, Need] = Field(
        {}, description="runs of other suites whose files (e.g. a trained model) each run reads, "
        "under the given name; they run first, at the same profile")
    profiles: dict[Profile, ProfileSpec]
    claims: list[Claim] = []

    @model_validator(mode="wrap")
    @classmethod
    def _misplaced_key_first(cls, data: Any, handler) -> SuiteModel:
        """A key at the wrong level is the mistake to name, not what its absence where it belongs
        makes required."""
        try:
            return handler(data)
        except ValidationError as err:
            for error in err.errors():
                misplaced = _misplaced(error)
                if misplaced is not None:
                    raise ValidationError.from_exception_data(err.title, [
                        {"type": misplaced, "loc": error["loc"], "input": error["input"]}
                    ]) from None
            raise

    @field_validator("profiles")
    @classmethod
    def _every_profile(cls, profiles: dict) -> dict:
        missing = [p for p in PROFILES if p not in profiles]
        if missing:
            raise ValueError(f"missing profile(s) {', '.join(missing)}; every suite defines "
                             f"{', '.join(PROFILES)}")
        return profiles

    @field_validator("claims")
    @classmethod
    def _unique_ids(cls, claims: list) -> list:
        twice = _repeated([c.id for c in claims])
        if twice is not None:
            raise ValueError(f"claim id {twice!r} is used twice: ids must be unique")
        return claims


_LEVEL_KEYS = {
    Level.TOP: set(SuiteModel.model_fields), Level.SOURCE: set(Source.model_fields),
    Level.RESOURCES: set(Resources.model_fields), Level.PROFILE: set(ProfileSpec.model_fields),
    Level.CLAIM: set().union(*(kind.model_fields for kind in get_args(get_args(Claim)[0]))),
    Level.NEED: set(Need.model_fields),
}


# ---- runners: where runs execute (runners/<name>.toml) ----

# The courses are French; ISO 3166-1 alpha-3, sets the grid's carbon intensity.
DEFAULT_COUNTRY = "FRA"


class _Runner(Strict):
    description: str = ""
    energy_country: str = Field(
        DEFAULT_COUNTRY, pattern=r"^[A-Z]{3}$",
        description="ISO 3166-1 alpha-3 code for codecarbon's carbon intensity")


class LocalRunner(_Runner):
    kind: Literal["local"]


class RayRunner(_Runner):
    kind: Literal["ray"]
    address: str | None = Field(
        None, description="a cluster's address; none: $RAY_ADDRESS, else an embedded instance")
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs of the embedded instance (default: all cores)")
    max_retries: int = Field(
        2, ge=0, description="retries of a run group whose worker process died")


RunnerConfig = Annotated[LocalRunner | RayRunner, Field(discriminator="kind")]
