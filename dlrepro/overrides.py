"""``--set KEY=VALUE`` (set a parameter on every run; a list or a range sweeps it) and ``--only
KEY=VALUE`` (keep the runs with that value, or any of a list), VALUE read as TOML or as a range:
parsed, named, ``--set`` applied to a suite file's data and ``--only`` to a loaded suite's runs."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
import tomllib
import typing
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from dlrepro import experiment as contract
from dlrepro.errors import Refused
from dlrepro.schema import choices, explain

if TYPE_CHECKING:
    from dlrepro.suite import Suite

Override = tuple[str, Any]
SEEDS = "seeds"  # not a parameter: ``--set seeds=…`` replaces every profile's seeds
MOST_VALUES = 1000  # a range giving more is a slip (a missing step), not a sweep to run
RANGES = "range(START,STOP[,STEP]) of integers (STOP excluded) nor linspace(START,STOP,COUNT)"


class Spaced(list):
    """The values of a ``range(...)`` or ``linspace(...)``, named by that text, not its values."""

    text: str


class Verb(StrEnum):
    """The two options that override a suite, as the command line spells them."""

    SET = "--set"
    ONLY = "--only"


def named(verb: Verb, keys: Iterable[str]) -> str:
    """Keys as the options that gave them, for an error's key: ``--only d, --only model``."""
    return ", ".join(f"{verb} {key}" for key in keys)


def parse_override(text: str, flag: Verb = Verb.SET) -> Override:
    """``KEY=VALUE`` with VALUE as TOML (``7``, ``1e-3``, ``[3, 5, 7]``, ``true``, ``"pca"``); a
    bare word is a string, in a list too (``[pca, cnn]``)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        raise Refused(flag, "", f"{text!r} is not KEY=VALUE with a parameter name as KEY "
                      f"(e.g. {flag} epochs=7)")
    return key, _spaced(flag, key, value) or _value(flag, key, value)


def _spaced(flag: Verb, key: str, value: str) -> Spaced | None:
    """``range(START,STOP[,STEP])`` as Python's, or ``linspace(START,STOP,COUNT)``: COUNT numbers
    evenly spaced, STOP included; None for any other value."""
    form = re.fullmatch(r"\s*(range|linspace)\((.*)\)\s*", value)
    if not form:
        return None
    spaced = Spaced()
    spaced.text = re.sub(r"\s+", "", value)
    try:
        numbers = tomllib.loads(f"value = [{form[2]}]")["value"]
    except tomllib.TOMLDecodeError:
        numbers = []
    kinds = "".join(type(number).__name__[0] for number in numbers)  # int, float; bool is no number
    if form[1] == "range" and re.fullmatch("i{1,3}", kinds) and 0 not in numbers[2:]:
        size = len(range(*numbers))
    elif form[1] == "linspace" and re.fullmatch("[if]{2}i", kinds):
        size = numbers[2]
    else:
        raise Refused(flag, key, f"{spaced.text} is neither {RANGES}")
    if not 0 < size <= MOST_VALUES:
        raise Refused(flag, key, f"{spaced.text} gives {size:,} values; a range gives 1 to "
                      f"{MOST_VALUES:,}")
    if form[1] == "range":
        spaced.extend(range(*numbers))
    else:  # rounded: 0.30000000000000004 would name a configuration
        start, stop, count = numbers
        spaced.extend(float(f"{start + (stop - start) * i / max(count - 1, 1):.12g}")
                      for i in range(count))
    return spaced


def _value(flag: Verb, key: str, value: str) -> Any:
    try:
        return tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value.strip()):
            return value.strip()
        listed = re.fullmatch(r"\s*\[([^][]+)\]\s*", value)
        if listed:
            return [_value(flag, key, part) for part in listed[1].split(",")]
        raise Refused(flag, key, f"{value!r} is not a TOML value (a number, true/false, "
                      "a \"string\", a [list])") from None


def describe_overrides(overrides: list[Override], only: list[Override] = ()) -> str:
    """In a canonical order: ``dataset=fashion_mnist,epochs=7 --only model=cnn``."""
    selected = only and f"{Verb.ONLY} {_described(only)}"
    return " ".join(filter(None, [_described(overrides), selected]))


def _described(overrides: list[Override]) -> str:
    def toml(value: Any) -> str:
        if isinstance(value, Spaced):
            return value.text
        if isinstance(value, list):
            return "[" + ",".join(map(toml, value)) + "]"
        if isinstance(value, dict):
            return "{" + ",".join(f"{k}={toml(v)}" for k, v in value.items()) + "}"
        return str(value).lower() if isinstance(value, bool) else str(value)

    ordered = sorted(overrides, key=lambda o: o[0])
    return ",".join(f"{key}={toml(value)}" for key, value in ordered)


def folder_name(overrides: list[Override], only: list[Override] = ()) -> str:
    """A portable folder name: readable when short, with a hash when not; ``--set epochs=7 --only
    model=cnn`` is ``epochs=7+only+model=cnn``."""
    name = "+".join(filter(None, [_described(overrides), only and f"only+{_described(only)}"]))
    name = re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name)
    if len(name) <= 80:
        return name
    digest = hashlib.sha256(describe_overrides(overrides, only).encode()).hexdigest()
    return f"{name[:64]}-{digest[:12]}"


def flags(overrides: list[Override], only: list[Override] = ()) -> list[str]:
    return ([f"{Verb.SET} {shlex.quote(_described([o]))}" for o in overrides]
            + [f"{Verb.ONLY} {shlex.quote(_described([o]))}" for o in only])


def sweeps(experiment: object, key: str, value: Any) -> bool:
    """Whether ``--set key=value`` sweeps the parameter: a list, for a key that does not take a
    list itself (the seeds, a parameter that is a list)."""
    if not isinstance(value, list) or key == SEEDS:
        return False
    try:
        field = contract.get(str(experiment)).params.model_fields.get(key)
    except (KeyError, Refused):
        return True  # reported when the suite is built
    return field is None or typing.get_origin(field.annotation) not in (list, tuple)


def apply_override(data: dict, key: str, value: Any) -> None:
    """``--set key=value`` on a suite file's data (sound: it was loaded without overrides first),
    in place, for every profile. A grid axis of that parameter takes the value; a tied axis whose
    entries set it (or named by it) has it in each entry, a list making each entry once per value.
    Elsewhere the parameter is fixed, or swept by a new axis of every grid."""
    profiles = list(data["profiles"].values())
    if key == SEEDS:
        for profile in profiles:
            profile[SEEDS] = choices(value)
        return
    swept = sweeps(data["experiment"], key, value)
    setting = value if swept else [value]
    for owner in [data, *profiles]:
        for grid in choices(owner.get("grid", [])):
            if not _set_on_axes(grid, key, setting) and swept:
                grid[key] = setting
        if not swept:
            owner.setdefault("parameters", {})[key] = value


def _set_on_axes(grid: dict, key: str, setting: list) -> bool:
    """Give the axes of ``grid`` that set ``key`` each of its values; whether one does."""
    found = False
    for axis, entries in grid.items():
        tied = isinstance(entries[0], dict)  # an axis is all values or all tables: it was checked
        if axis == key and not tied:
            grid[axis], found = list(setting), True
        elif tied and (axis == key or any(key in entry for entry in entries)):
            grid[axis], found = [{**entry, key: v} for entry in entries for v in setting], True
    return found


def select(suite: Suite, only: list[Override]) -> Suite:
    """The suite with its ``--only`` values (a key given twice: any of both), each value checked
    like the file's."""
    kept: dict[str, list] = {}
    for key, value in only:
        suite.refuse_unknown(named(Verb.ONLY, [key]), key)
        for one in choices(value):
            try:
                TypeAdapter(suite.parameters[key].annotation).validate_python(one)
            except ValidationError as err:
                raise Refused(suite.path, named(Verb.ONLY, [key]), explain(err)[1]) from None
            kept.setdefault(key, []).append(one)
    return dataclasses.replace(suite, only=kept)


def check_selected(suites: list[Suite], profile: str) -> None:
    """Refuse a ``--only`` that keeps none of a suite's runs at ``profile``, naming the values its
    runs there have."""
    for suite in suites:
        if suite.only and not suite.runs(profile):
            params = [spec.params for spec in suite.specs[profile]]
            there = [f"{key}={'/'.join(dict.fromkeys(str(p[key]) for p in params if key in p))}"
                     for key in suite.only]  # each value once, from the runs that set it
            raise Refused(suite.path, named(Verb.ONLY, suite.only), "selects no "
                          f"run at profile {profile}; its runs there have {', '.join(there)}")
