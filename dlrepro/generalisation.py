"""Does the lesson hold on other data? Each claim's verdict on MNIST beside its verdict on the same
suites run with ``--set dataset=…`` (Fashion-MNIST).

The claims anchored to a published MNIST number say "does not apply" on the other set; the
orderings and trends (the autoencoder beats PCA, errors fall with d, accuracy falls with ε,
samples improve with epochs) are the question, and a verdict that differs is marked ``changed``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlrepro.files import atomic_write
from dlrepro.formatting import table_cell

COLUMNS = ["suite", "claim", "text", "mnist", "mnist_measured", "other", "other_measured", "changed"]


def compare(mnist: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """One row per claim of ``other``'s suites: its status and measurement on both sets."""
    both = other.merge(mnist, on=["suite", "claim"], how="left", suffixes=("_other", "_mnist"))
    table = pd.DataFrame({
        "suite": both["suite"], "claim": both["claim"], "text": both["text_other"],
        "mnist": both["status_mnist"].fillna("not run"), "mnist_measured": both["measured_mnist"].fillna(""),
        "other": both["status_other"], "other_measured": both["measured_other"]})
    table["changed"] = (table["other"] != "does not apply") & (table["mnist"] != table["other"])
    return table[COLUMNS]


def write(path: Path, table: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def markdown(table: pd.DataFrame, dataset: str) -> list[str]:
    """The transferable claims as a Markdown table, the changed ones first; then those that do not apply."""
    icon = {"reproduced": "✅", "not reproduced": "❌", "not run": "⚪"}
    transferable = table[table["other"] != "does not apply"].sort_values("changed", ascending=False, kind="stable")
    lines = [f"| suite | claim | MNIST | {dataset} | changed |", "|---|---|---|---|---|"]
    for r in transferable.itertuples():
        lines.append(f"| {r.suite} | {r.claim} | {icon.get(r.mnist, '')} {table_cell(r.mnist_measured)} | "
                     f"{icon.get(r.other, '')} {table_cell(r.other_measured)} | {'**yes**' if r.changed else ''} |")
    anchored = table[table["other"] == "does not apply"]
    if len(anchored):
        lines += ["", f"Do not apply on {dataset} (published MNIST numbers): "
                  + ", ".join(f"{r.suite}/{r.claim}" for r in anchored.itertuples()) + "."]
    return lines

