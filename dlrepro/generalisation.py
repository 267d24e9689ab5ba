"""Does the lesson hold on other data? Each claim's verdict on MNIST beside its verdict on the same
suites run with ``--set dataset=…``; a verdict that differs is ``changed``
(docs/generalisation.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro import claims, tables
from dlrepro.devices import DeviceChoice
from dlrepro.layout import Results
from dlrepro.pipeline import Outcome, Say, prepare, run
from dlrepro.planning import datasets_read
from dlrepro.project import resolve
from dlrepro.formatting import ClaimStatus, describe, table_cell

KEY = ["suite", "claim"]
SIDES = {"mnist": "_mnist", "other": "_other"}  # each side's columns end so
MEASURED = ["status", "along", "at", "values", "samples", "right_values"]  # per side
EXPECTED = [name for name in claims.COLUMNS if name not in MEASURED]  # the claim's, once
COLUMNS = [*EXPECTED, "mnist", "other", "changed",
           *(f"{name}{suffix}" for suffix in SIDES.values() for name in MEASURED[1:])]
ICONS = {ClaimStatus.REPRODUCED: "✅", ClaimStatus.NOT_REPRODUCED: "❌",
         ClaimStatus.NOT_RUN: "⚪"}


def compare(mnist: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """One row per claim of ``other``'s suites: its status and measurement on both sets; a claim
    MNIST has no result of is not run there."""
    not_run = claims.table([claims.ClaimResult(suite=suite, claim=claim, text="", kind="",
                                               status=ClaimStatus.NOT_RUN)
                            for suite, claim in zip(other["suite"], other["claim"])])
    mnist = pd.concat([mnist, not_run], ignore_index=True).drop_duplicates(KEY)
    both = other.merge(mnist[KEY + MEASURED], on=KEY, how="left",
                       suffixes=(SIDES["other"], SIDES["mnist"]))
    both = both.rename(columns={f"status{suffix}": side for side, suffix in SIDES.items()})
    both["changed"] = (both["other"] != ClaimStatus.DOES_NOT_APPLY) & (
        both["mnist"] != both["other"])
    return both[COLUMNS]


def side(row: dict, name: str) -> claims.ClaimResult:
    """One set's result of a row of the comparison."""
    suffix = SIDES[name]
    return claims.ClaimResult.model_validate({
        **{column: row[column] for column in EXPECTED}, "status": row[name],
        **{column: row[f"{column}{suffix}"] for column in MEASURED[1:]}})


def markdown(table: pd.DataFrame, dataset: str) -> list[str]:
    """The transferable claims as a Markdown table, the changed ones first; then those that do
    not apply."""
    applying = table["other"] != ClaimStatus.DOES_NOT_APPLY
    transferable = table[applying].sort_values("changed", ascending=False, kind="stable")
    lines = [f"| suite | claim | MNIST | {dataset} | changed |", "|---|---|---|---|---|"]
    for row in transferable.to_dict("records"):
        cells = [f"{ICONS.get(row[name], '')} {table_cell(describe(side(row, name))[0])}"
                 for name in SIDES]
        lines.append(f"| {row['suite']} | {row['claim']} | {' | '.join(cells)} | "
                     f"{'**yes**' if row['changed'] else ''} |")
    anchored = table[~applying]
    if len(anchored):
        lines += ["", f"Do not apply on {dataset} (published MNIST numbers): "
                  + ", ".join(f"{r.suite}/{r.claim}" for r in anchored.itertuples()) + "."]
    return lines


def generalise(profile: str, runner: str, say: Say, *, dataset: str = "fashion_mnist",
               results: Path = Path("results"), data: str | Path | None = None,
               address: str | None = None,
               device: DeviceChoice = DeviceChoice.AUTO
               ) -> tuple[pd.DataFrame, Results, list[Outcome]]:
    """The suites that read MNIST, run on MNIST (the profile's own runs, cached) and again with
    ``--set dataset=DATASET``, every input checked for both before anything runs: each claim's
    verdicts side by side (``COLUMNS``), also in ``generalisation.csv`` of the other set's folder,
    that folder, and the runs' outcomes."""
    names = [s.name for s in resolve([]) if datasets_read(s.runs(profile)) == {"mnist"}]
    requests = [prepare(names, profile, runner, results=results, data=data, address=address,
                        overrides=overrides, device=device, say=say)
                for overrides in ([], [("dataset", dataset)])]
    outcomes = []
    for request in requests:
        on = dataset if request.results.overrides else "MNIST"
        say(f"{on}: {', '.join(names)} at profile {profile}")
        outcomes.append(run(request, say))
        if outcomes[-1].interrupted:
            break
    mine = [o.claims.table[o.claims.table["suite"].isin(names)] for o in outcomes]
    table, folder = pd.DataFrame(columns=COLUMNS), requests[1].results
    if len(mine) == 2:
        table = compare(*mine)
        with folder.lock(say):
            tables.write_csv(folder.generalisation, claims.csv_cells(table))
    return table, folder, outcomes
