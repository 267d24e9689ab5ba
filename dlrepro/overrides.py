"""``--set KEY=VALUE`` (set a parameter on every run; a list sweeps it) and ``--only KEY=VALUE``
(keep the runs with that value, or any of a list), VALUE read as TOML: parsed, named, and
``--set`` applied to a suite file's data (``suite`` applies ``--only`` to the expanded runs)."""

from __future__ import annotations

import hashlib
import re
import tomllib
import typing
from enum import StrEnum
from pathlib import Path
from collections.abc import Iterable
from typing import Any

from dlrepro import experiment as contract
from dlrepro.errors import Refused

Override = tuple[str, Any]


class Verb(StrEnum):
    """The two options that override a suite, as the command line spells them."""

    SET = "--set"
    ONLY = "--only"


def named(verb: Verb, keys: Iterable[str]) -> str:
    """Keys as the options that gave them, for an error's key: ``--only d, --only model``."""
    return ", ".join(f"{verb} {key}" for key in keys)


def parse_override(text: str, flag: Verb = Verb.SET) -> Override:
    """``KEY=VALUE`` with VALUE as TOML (``7``, ``1e-3``, ``[3, 5, 7]``, ``true``, ``"pca"``); a
    bare word is a string, in a list too (``[pca, cnn]``). ``flag`` names the option in errors
    (``--set``, ``--only``)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        raise Refused(flag, "", f"{text!r} is not KEY=VALUE with a parameter name as KEY "
                      f"(e.g. {flag} epochs=7)")
    return key, _value(flag, key, value)


def _value(flag: Verb, key: str, value: str) -> Any:
    """One VALUE: TOML, else a bare word as a string, else a list of such values."""
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
    """The overrides as written on a command line, each verb in a canonical order:
    ``dataset=fashion_mnist,epochs=7``, then ``--only model=cnn`` when runs are selected."""
    sets = _described(overrides)
    if not only:
        return sets
    return " ".join(filter(None, [sets, Verb.ONLY, _described(only)]))


def _described(overrides: list[Override]) -> str:
    def toml(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ",".join(map(toml, value)) + "]"
        if isinstance(value, dict):
            return "{" + ",".join(f"{k}={toml(v)}" for k, v in value.items()) + "}"
        return str(value).lower() if isinstance(value, bool) else str(value)

    ordered = sorted(overrides, key=lambda o: o[0])
    return ",".join(f"{key}={toml(value)}" for key, value in ordered)


def folder_name(overrides: list[Override], only: list[Override] = ()) -> str:
    """The overrides as a portable folder name: readable when short, with a hash when not;
    ``--set epochs=7 --only model=cnn`` is ``epochs=7+only+model=cnn``."""
    name = "+".join(filter(None, [_described(overrides), only and f"only+{_described(only)}"]))
    name = re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name)
    if len(name) <= 80:
        return name
    digest = hashlib.sha256(describe_overrides(overrides, only).encode()).hexdigest()
    return f"{name[:64]}-{digest[:12]}"


def flags(overrides: list[Override], only: list[Override] = ()) -> list[str]:
    """The command-line options that give these overrides, one ``--set``/``--only`` each."""
    return ([f"{Verb.SET} {_described([o])}" for o in overrides]
            + [f"{Verb.ONLY} {_described([o])}" for o in only])


def sweeps(experiment: object, key: str, value: Any) -> bool:
    """Whether ``--set key=value`` sweeps the parameter: a list, for a parameter that is not
    itself a list."""
    return isinstance(value, list) and key != "seeds" and not _takes_a_list(experiment, key)


def apply_override(path: Path, data: dict, key: str, value: Any) -> None:
    """Apply ``--set key=value`` to a suite file's data, in place, for every profile: every run
    then has that value (a list: one run per value).

    ``seeds`` replaces every profile's seeds. A grid axis of that parameter takes the value; a
    tied axis whose entries set it (or named by it) has the value in each entry, and a list makes
    each entry once per value. Elsewhere the parameter is fixed, or swept by a new axis of every
    grid. Whatever it sets is then validated like the file (``path`` is kept for that)."""
    profiles = [p for p in data.get("profiles", {}).values() if isinstance(p, dict)]
    if key == "seeds":
        for profile in profiles:
            profile["seeds"] = value if isinstance(value, list) else [value]
        return
    swept = sweeps(data.get("experiment"), key, value)
    setting = value if swept else [value]
    grids = [grid for owner in [data, *profiles] for grid in _grids_of(owner)]
    for grid in grids:
        if not _set_on_axes(grid, key, setting) and swept:
            grid[key] = setting
    if not swept:
        for owner in [data, *profiles]:
            owner.setdefault("parameters", {})[key] = value


def _set_on_axes(grid: dict, key: str, setting: list) -> bool:
    """Give the axes of ``grid`` that set ``key`` each of its values; whether one does."""
    found = False
    for axis, entries in grid.items():
        if not isinstance(entries, list):
            continue  # reported when the file is validated
        tied = [entry for entry in entries if isinstance(entry, dict)]
        if axis == key and not tied:
            grid[axis], found = list(setting), True
        elif tied and (axis == key or any(key in entry for entry in tied)):
            grid[axis] = [{**_entry(axis, entry), key: v} for entry in entries for v in setting]
            found = True
    return found


def _entry(axis: str, value: Any) -> dict:
    """A value of a tied axis as the parameters it sets."""
    return value if isinstance(value, dict) else {axis: value}


def _grids_of(owner: dict) -> list[dict]:
    """The grids a file's top level or one of its profiles holds (one, or a list of them)."""
    if "grid" not in owner:
        return []
    grids = owner["grid"] if isinstance(owner["grid"], list) else [owner["grid"]]
    return [grid for grid in grids if isinstance(grid, dict)]


def _takes_a_list(experiment: object, key: str) -> bool:
    """Whether the experiment's parameter ``key`` is itself a list (so a list value sets it, not
    sweeps it)."""
    try:
        field = contract.get(str(experiment)).params.model_fields.get(key)
    except (KeyError, Refused):
        return False  # reported when the suite is built
    return field is not None and typing.get_origin(field.annotation) in (list, tuple)
