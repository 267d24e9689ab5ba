"""The declarative files' schema (docs/suite-files.md): suites, their claims and metrics, runners;
a validation error in a file's words. Pure pydantic, strict: a number is a number (no "100" for
100, no true for 1), every float is finite, unknown keys are refused; no torch, pandas or Ray, so
that a bad file is refused at once. What a key *means* for an experiment is ``suite``'s to check.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      ValidationError, field_validator, model_validator)

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
    """The values a ``where`` entry (or ``--only``, ``--set seeds``) accepts: its list, or one."""
    return value if isinstance(value, list) else [value]


def _axis(values: Any) -> Any:
    """Values of one parameter, or tables of parameters that move together (a tie)."""
    if not isinstance(values, list) or not values:
        raise ValueError("an axis is a non-empty list of values, or of tables of tied parameters")
    tables = [isinstance(v, dict) for v in values]
    if any(tables) != all(tables):
        raise ValueError("an axis mixes values and tables: give only values, or only tables of "
                         "tied parameters")
    if not all(tables):
        return [_param_value(v) for v in values]
    if not all(values):
        raise ValueError("an empty table in a tied axis")
    return [{k: _param_value(v) for k, v in table.items()} for table in values]


def _grids(grid: Any) -> Any:
    """A grid is a table of axes; a list of grids is their union. Neither may be empty."""
    grids = choices(grid)
    if not grids:
        raise ValueError("an empty list of grids: give at least one grid")
    if not all(isinstance(one, dict) for one in grids):
        raise ValueError("a grid is a table of axes")
    if not all(grids):
        raise ValueError("empty grid: give at least one axis with at least one value")
    return grid


def _once(values: list, what: str) -> list:
    twice = next((v for v in values if values.count(v) > 1), None)
    if twice is not None:
        raise ValueError(what.format(twice))
    return values


Scalar = Annotated[bool | int | float | str, BeforeValidator(_scalar)]
Choice = Annotated[Any, BeforeValidator(_choice)]  # a value, or a list of which a run has any
ParamValue = Annotated[Any, BeforeValidator(_param_value)]
Grid = dict[str, Annotated[list[Any], BeforeValidator(_axis)]]
Grids = Annotated[Grid | list[Grid], BeforeValidator(_grids)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Seeds = Annotated[list[Annotated[int, Field(ge=0, le=MAX_SEED)]], Field(min_length=1),
                  AfterValidator(lambda s: _once(s, "seed {} is listed twice: each seed is one "
                                                    "run"))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Source(Strict):
    seed: str  # the seed document, e.g. '002' for 002_*.txt in shared/seeds
    slide: str  # the slide or section title, as printed
    note: str = ""


class Resources(Strict):
    cpus: int = Field(1, ge=1)  # also the torch thread count of the run
    gpus: float = Field(0, ge=0)  # fractions allowed (Ray packs runs on one GPU)


class Metric(Strict):
    """A metric an experiment logs: the regression check's tolerances (absolute, relative); a
    ``timing`` metric is hardware-bound and never in a baseline."""

    better: Literal["higher", "lower", "two-sided"]
    description: str = ""
    tolerance: float | None = Field(None, ge=0)
    rel_tolerance: float | None = Field(None, ge=0)
    timing: bool = False


class Need(Strict):
    """Runs of another suite of the same folder whose files each run reads: ``where`` picks one
    configuration, ``same`` the parameters the producer shares with each reader (its dataset)."""

    suite: Name
    where: dict[str, Scalar] = {}
    same: list[Name] = []


class ProfileSpec(Strict):
    seeds: Seeds
    parameters: dict[str, ParamValue] = {}
    grid: Grids | None = None  # replaces the suite's grid
    resources: Resources | None = None


# ---- claims: the slide's words as checks (evaluated by dlrepro.claims) ----

class ClaimBase(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    text: str  # the slide's words
    source: str = ""  # where the words are, when not the suite's own source
    metric: str
    where: dict[str, Choice] = {}  # the runs the claim is about
    step: int | Literal["last"] | None = None  # None: the run's final value
    reduce: Literal["mean", "median", "min", "max", "worst"] = "mean"  # over the selected runs
    profiles: list[Profile] | None = None  # whose settings the claim is about; None: all
    applies: dict[str, Scalar] = {}  # e.g. dataset = 'mnist': on other runs it does not apply

    @model_validator(mode="after")
    def _worst_needs_a_value(self) -> ClaimBase:
        if self.reduce == "worst" and getattr(self, "kind", None) != "approx":
            raise ValueError("reduce = 'worst' (the run farthest from the value) is for approx "
                             "claims; use min or max to take the least favourable run of a "
                             "threshold")
        return self

    def at(self, profile: str) -> bool:
        return self.profiles is None or profile in self.profiles

    def selections(self) -> dict[str, dict[str, Any]]:
        """Each selection of runs the claim compares, by the key that names it in the file."""
        return {"where": {**self.where, **self.applies}}

    def axes(self) -> dict[str, list[str]]:
        """Parameters the claim reads values along, by key: each must vary across its runs."""
        over = getattr(self, "over", None)
        return {"over": [over]} if over not in (None, "step") else {}


class Threshold(ClaimBase):
    kind: Literal["threshold"]
    op: Op
    value: float


class Published(Strict):
    """Marks an ``approx`` claim's ``value`` as a number printed in the course material (or the
    paper it cites): the claim becomes a row of the fidelity table."""

    source: str = Field(min_length=1)  # where it is printed: the seed and slide, the paper
    why: str = Field(min_length=1)  # why this tolerance: rounding, seed spread, a shorter budget


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


class Monotone(ClaimBase):
    kind: Literal["monotone"]
    over: str
    direction: Literal["increasing", "decreasing"]
    strict: bool = True
    tolerance: float | None = Field(None, ge=0)  # a step back of at most this is a tie: noise


class Compare(ClaimBase):
    kind: Literal["compare"]
    left: dict[str, Scalar]
    right: dict[str, Scalar]
    op: Op
    factor: float = Field(1.0, gt=0)  # left op factor × right: 'at most a tenth of' is <= 0.1
    by: list[str] = []

    def selections(self) -> dict[str, dict[str, Any]]:
        both = super().selections()["where"]
        return {"left": {**both, **self.left}, "right": {**both, **self.right}}

    def axes(self) -> dict[str, list[str]]:
        return {"by": list(self.by)} if self.by else {}


Claim = Annotated[Threshold | Approx | Monotone | Compare, Field(discriminator="kind")]


class SuiteModel(Strict):
    name: Name
    title: str
    source: Source
    experiment: str
    parameters: dict[str, ParamValue] = {}
    grid: Grids
    resources: Resources = Resources()
    needs: dict[str, Need] = {}  # they run first, at the same profile
    profiles: dict[Profile, ProfileSpec]
    claims: list[Claim] = []

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
        _once([c.id for c in claims], "claim id {!r} is used twice: ids must be unique")
        return claims


# ---- a validation error in the words of a suite file ----

# pydantic puts a union's member type or a validator's name in the location; it is not a key.
UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "function-after", "function-before",
              "tagged-union"}
MESSAGES = {"extra_forbidden": "unknown key", "missing": "required, and given nowhere",
            "union_tag_not_found": "required, and given nowhere"}


def key_path(error: dict) -> list[str]:
    """The keys of the file that lead to a pydantic error."""
    loc = list(error["loc"])
    if len(loc) >= 3 and loc[0] == "claims" and isinstance(loc[1], int):
        del loc[2]  # the claim's kind, which pydantic's tagged union puts in the location
    keys = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in UNION_TAGS))]
    if error["type"].startswith("union_tag_"):  # the kind itself is missing or unknown
        keys.append(error["ctx"]["discriminator"].strip("'"))
    return keys


def explain(err: ValidationError) -> tuple[list[str], str]:
    """The key path and message of the error that says what is wrong: an unknown key (not what its
    absence makes required), else the deepest error (of a union, the branch that got furthest)."""
    error = max(err.errors(), key=lambda e: (e["type"] == "extra_forbidden", len(key_path(e))))
    return key_path(error), MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))


# ---- runners: where runs execute (runners/<name>.toml) ----

DEFAULT_COUNTRY = "FRA"  # the courses are French; sets the grid's carbon intensity


class _Runner(Strict):
    description: str = ""
    energy_country: str = Field(DEFAULT_COUNTRY, pattern=r"^[A-Z]{3}$")  # ISO 3166-1 alpha-3


class LocalRunner(_Runner):
    kind: Literal["local"]


class RayRunner(_Runner):
    kind: Literal["ray"]
    address: str | None = None  # a cluster's; none: $RAY_ADDRESS, else an embedded instance
    num_cpus: int | None = Field(None, ge=1)  # the embedded instance's (default: all cores)
    max_retries: int = Field(2, ge=0)  # retries of a run group whose worker process died


RunnerConfig = Annotated[LocalRunner | RayRunner, Field(discriminator="kind")]
