"""The report of one profile: ``report.md`` and a self-contained ``report.html``, rendered from one
page model (``page``) by the templates in ``templates/``, so that they cannot disagree. A suite's
figures are redrawn only when what they are drawn from changed."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import platform
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from dlrepro import claims as claim_results
from dlrepro import fidelity, tables
from dlrepro.files import atomic_write
from dlrepro.experiments import plotting
from dlrepro.layout import Results
from dlrepro.devices import cpu_model
from dlrepro.schema import Approx
from dlrepro.suite import Suite
from dlrepro.formatting import ClaimStatus, describe, no_results, number, summary, table_cell

# In each suite's figures folder: what the figures were drawn from, and their files.
FIGURE_INDEX = "figures.json"
# What a claim can say (the rest of ClaimStatus is about published numbers), in the report's order.
CLAIM_STATUSES = (ClaimStatus.REPRODUCED, ClaimStatus.NOT_REPRODUCED, ClaimStatus.NOT_RUN,
                  ClaimStatus.DOES_NOT_APPLY)


def build(results: Results, suites: list[Suite], claims: pd.DataFrame, published: pd.DataFrame,
          runs: pd.DataFrame, metrics: pd.DataFrame,
          full: pd.DataFrame | None = None) -> list[Path]:
    """Draw (or reuse) every suite's figures, then write ``report.md`` and ``report.html`` beside
    the tables; ``full``: the published numbers as measured at full, shown beside these."""
    model = page(results, suites, claims, published, runs, metrics, full)
    pages = {results.report: "report.md.j2", results.report_html: "report.html.j2"}
    for path, template in pages.items():
        text = _templates().get_template(template).render(**model, root=results.root)
        atomic_write(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    return list(pages)


def page(results: Results, suites: list[Suite], claims: pd.DataFrame, published: pd.DataFrame,
         runs: pd.DataFrame, metrics: pd.DataFrame, full: pd.DataFrame | None = None) -> dict:
    """Everything the report shows, as plain values: what both templates render. A suite with no
    results at all is one line, in the claims and in the published numbers, and has no section."""
    counts = claims["status"].value_counts()
    unrun = [suite.name for suite in suites if not (runs["suite"] == suite.name).any()]
    listed = claims[~claims["suite"].isin(unrun)]
    unpublished = [name for name in unrun if (published["suite"] == name).any()]
    return {
        "profile": results.profile,
        "overrides": results.overrides,
        "generated": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "host": platform.node(),
        "cpu": cpu_model(),
        "counts": {status: int(counts.get(status, 0)) for status in CLAIM_STATUSES},
        # "does not apply" only where some claim says it (runs on other data)
        "statuses": [status for status in CLAIM_STATUSES
                     if counts.get(status) or status is not ClaimStatus.DOES_NOT_APPLY],
        "summary": summary(claims["status"]),
        "total": len(claims),
        "claims": [{**result.model_dump(include={"suite", "claim", "text", "status"}),
                    **dict(zip(("measured", "expected"), describe(result)))}
                   for result in claim_results.results(listed)],
        "not_run": no_results(unrun) if unrun else "",
        "not_run_claims": len(claims) - len(listed),
        "published": fidelity.display(published[~published["suite"].isin(unrun)], full),
        "full": full is not None,
        "published_not_run": no_results(unpublished) if unpublished else "",
        "cost": _cost(runs),
        "energy_methods": "; ".join(sorted(set(runs["energy_method"].dropna()))),
        "provenance": _provenance(runs),
        "suites": [_suite(suite, claims, runs, metrics, results) for suite in suites
                   if suite.name not in unrun],
    }


def _suite(suite: Suite, claims: pd.DataFrame, runs: pd.DataFrame, metrics: pd.DataFrame,
           results: Results) -> dict:
    m, mine = suite.model, tables.ran(runs[runs["suite"] == suite.name])
    verdicts = claims.loc[claims["suite"] == suite.name, "status"]
    labels = {spec.run_id: spec.label for spec in suite.runs(results.profile)}
    drawn = figures(suite, tables.joined(runs, metrics, suite.name), results)
    return {"name": suite.name, "title": m.title, "experiment": m.experiment,
            "seed": m.source.seed, "slide": m.source.slide, "note": m.source.note,
            "runs": len(mine), "claims": len(verdicts),
            "reproduced_count": int((verdicts == ClaimStatus.REPRODUCED).sum()),
            "figures": [path.relative_to(results.root).as_posix() for path in drawn],
            "failed": [{"label": labels.get(r.run_id, f"{suite.name} run {r.run_id} seed {r.seed}"),
                        "error": str(r.error).strip()}
                       for r in mine[mine["status"] == "failed"].itertuples()]}


def figures(suite: Suite, table: pd.DataFrame, results: Results) -> list[Path]:
    """The suite's figures and ``plotting.sweeps``, redrawn only if what they are drawn from
    changed: its table, published numbers, swept keys or drawing code (``figures_hash``)."""
    if table.empty:  # every run failed or was left out: nothing to draw
        return []
    out_dir = results.figures(suite.name)
    index = out_dir / FIGURE_INDEX
    published = [c for c in suite.model.claims if isinstance(c, Approx) and c.published]
    fingerprint = hashlib.sha256(
        suite.experiment.figures_hash.encode()
        + json.dumps([[c.model_dump(mode="json") for c in published], suite.swept]).encode()
        + pd.util.hash_pandas_object(table, index=False).values.tobytes()
        + ",".join(table.columns).encode()).hexdigest()
    with suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
        drawn = json.loads(index.read_text())
        paths = [out_dir / name for name in drawn["files"]]
        if drawn["fingerprint"] == fingerprint and all(p.is_file() for p in paths):
            return paths
    table.attrs["swept"] = suite.swept  # a figure draws every value of those that ran
    paths = suite.experiment.figures(table, out_dir, results.artifacts(suite.name), published)
    paths += plotting.sweeps(table, suite.metrics, suite.parameters, out_dir)
    atomic_write(index, lambda tmp: tmp.write_text(json.dumps(
        {"fingerprint": fingerprint, "files": [p.relative_to(out_dir).as_posix() for p in paths]})))
    return paths


def _cost(runs: pd.DataFrame) -> list[dict]:
    cost = tables.ran(runs).groupby("suite").agg(
        runs=("run_id", "size"), failed=("status", lambda s: int((s == "failed").sum())),
        wall_time_s=("wall_time_s", "sum"), energy_kwh=("energy_kwh", "sum"),
        co2_kg=("co2_kg", "sum"), device=("device", "first"))
    return [{"suite": suite, "runs": int(r.runs), "failed": int(r.failed),
             "run_time": f"{r.wall_time_s:.1f}", "energy_wh": number(1000 * float(r.energy_kwh), 3),
             "co2_g": number(1000 * float(r.co2_kg), 3), "device": r.device}
            for suite, r in cost.iterrows()]


PROVENANCE = {"hostname": "machines", "device": "devices", "dlrepro_version": "dlrepro",
              "torch_version": "PyTorch", "python_version": "Python", "git_commit": "commits"}


def _provenance(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """What produced the runs: each distinct value of the machine and version columns, and when."""
    found = [(name, "; ".join(sorted(map(str, runs[column].dropna().unique()))))
             for column, name in PROVENANCE.items() if column in runs]
    if not runs.empty:
        first = pd.to_datetime(runs["started_at"]).min()
        last = pd.to_datetime(runs["finished_at"]).max()
        found.append(("runs", f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"))
    return [(name, value) for name, value in found if value]


@functools.cache
def _templates():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("dlrepro", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["cell"] = table_cell
    env.globals["Status"] = ClaimStatus
    # a PNG as a data: URI, so that the page carries its figures
    env.filters["data_uri"] = lambda path: "data:image/png;base64," + base64.b64encode(
        Path(path).read_bytes()).decode("ascii")
    return env
