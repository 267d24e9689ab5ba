"""The ``--set KEY=VALUE`` language of the command line, VALUE read as TOML: parsed, described as
a canonical folder name, and applied on top of a suite file's data."""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

from dlrepro import experiment as contract
from dlrepro.errors import SuiteError

Override = tuple[str, Any]


def parse_override(text: str) -> Override:
    """``KEY=VALUE`` with VALUE as TOML (``7``, ``1e-3``, ``[3, 5, 7]``, ``true``, ``"pca"``); a
    bare word is a string."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        raise SuiteError("--set", "", f"{text!r} is not KEY=VALUE with a parameter name as KEY "
                         "(e.g. --set epochs=7)")
    try:
        return key, tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value.strip()):
            return key, value.strip()
        raise SuiteError("--set", key, f"{value!r} is not a TOML value (a number, true/false, "
                         "a \"string\", a [list])") from None


def describe_overrides(overrides: list[Override]) -> str:
    """The overrides as written on a command line, in a canonical order:
    ``dataset=fashion_mnist,epochs=7``."""
    def toml(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ",".join(map(toml, value)) + "]"
        if isinstance(value, dict):
            return "{" + ",".join(f"{k}={toml(v)}" for k, v in value.items()) + "}"
        return str(value).lower() if isinstance(value, bool) else str(value)

    ordered = sorted(overrides, key=lambda o: o[0])
    return ",".join(f"{key}={toml(value)}" for key, value in ordered)


def apply_override(path: Path, data: dict, key: str, value: Any) -> None:
    """Apply ``--set key=value`` to a suite file's data, in place, for every profile.

    ``seeds`` replaces every profile's seeds. A grid axis takes the value (a list sweeps it); an
    axis of tied entries named by the key keeps the entries with those values. A parameter that
    tied entries set takes the value in each of them. Any other parameter is fixed everywhere, or
    swept by a new axis when a list is given for a parameter that is not itself a list. Whatever it
    sets is then validated like the file."""
    profiles = [p for p in data.get("profiles", {}).values() if isinstance(p, dict)]
    if key == "seeds":
        for profile in profiles:
            profile["seeds"] = value if isinstance(value, list) else [value]
        return
    grids = [grid for owner in [data, *profiles] for grid in _grids_of(owner)]
    values = value if isinstance(value, list) else [value]
    on_axis = False
    for grid in grids:
        for axis, entries in grid.items():
            tied = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
            if axis == key:
                on_axis = True
                grid[axis] = _kept_entries(tied, key, values) if tied else values
            elif any(key in e for e in tied):
                if isinstance(value, list):
                    raise SuiteError(path, f"--set {key}", f"set together with other parameters by "
                                     f"the tied grid axis {axis!r}, so a list cannot sweep it: "
                                     f"override that axis (--set {axis}=[{{...}}])")
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


def _grids_of(owner: dict) -> list[dict]:
    """The grids a file's top level or one of its profiles holds (one, or a list of them)."""
    if "grid" not in owner:
        return []
    grids = owner["grid"] if isinstance(owner["grid"], list) else [owner["grid"]]
    return [grid for grid in grids if isinstance(grid, dict)]


def _kept_entries(tied: list[dict], key: str, values: list) -> list[dict]:
    """A tied axis overridden by its own key: the entries with those values, then one for each value
    no entry has."""
    kept = [entry for entry in tied if entry.get(key) in values]
    return kept + [{key: v} for v in values if all(entry.get(key) != v for entry in tied)]


def _takes_a_list(experiment: object, key: str) -> bool:
    """Whether the experiment's parameter ``key`` is itself a list (so a list value sets it, not
    sweeps it)."""
    try:
        field = contract.get(str(experiment)).params.model_fields.get(key)
    except (KeyError, contract.ContractError):
        return False  # reported when the suite is built
    return field is not None and typing.get_origin(field.annotation) in (list, tuple)
