"""Command line: ``dlrepro run | list | claims | report | check | baseline update``.

Exit codes: 0 success; 1 a run failed (run), a claim did not hold (claims) or a result regressed
or went missing (check); 2 bad input (a suite file, a runner file, a missing data directory, a
broken baseline); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from rich.markup import escape
from rich.table import Table

from dlrepro import claims, regression, report, scheduling, tables
from dlrepro.data import ENV_VAR, DataError, data_dir
from dlrepro.scheduling import console, runner_config
from dlrepro.store import RecordStore, atomic_write
from dlrepro.suite import PROFILES, Suite, SuiteError, resolve, suites_dir


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (SuiteError, DataError, regression.BaselineError, scheduling.SchedulingError) as err:
        print(f"dlrepro: error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlrepro", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def add(name: str, command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(command=command)
        p.add_argument("--results", type=Path, default=Path("results"), help="results directory (default: results/)")
        p.add_argument("--profile", choices=PROFILES, default="quick", help="smoke (CI, seconds), quick "
                       "(default: a laptop CPU, minutes) or full (paper-faithful, GPUs)")
        return p

    run = add("run", _run, "run suites, merge the tables, evaluate the claims")
    run.add_argument("suites", nargs="*", metavar="SUITE", help="a name from suites/ or a path to a TOML file (default: all)")
    run.add_argument("--runner", default="local", help="a runner from runners/: local (default) or ray")
    run.add_argument("--address", help="Ray cluster address for --runner ray (default: the runner file's, "
                     "else $RAY_ADDRESS, else an embedded instance on this machine)")
    run.add_argument("--data-dir", help=f"directory holding MNIST/raw (default: ${ENV_VAR}, else download)")
    add("list", _list, "list suites and their runs per profile, cached or not")
    add("claims", _claims, "evaluate every claim against the tables; exit 1 unless all are reproduced")
    add("report", _report, "write report.md with the claims, the figures, time and energy")
    check = add("check", _check, "compare the result tables with committed baselines; exit 1 if a result "
                "regressed or is missing")
    baseline = add("baseline", _update_baselines, "refresh baselines from the result tables, on purpose, "
                   "showing what changes")
    baseline.add_argument("action", choices=["update"])
    for p in (check, baseline):
        p.add_argument("suites", nargs="*", metavar="SUITE", help="a name from suites/ or a path to a TOML file "
                       "(default: check: every suite and every baseline; update: every suite with results)")
        p.add_argument("--baseline", type=Path, default=suites_dir().parent / "results" / "baselines",
                       help="baselines directory, one folder per profile (default: the project's results/baselines)")
    return parser


def _run(args) -> int:
    suites = resolve(args.suites)
    specs = [spec for suite in suites for spec in suite.runs(args.profile)]
    config = runner_config(args.runner)
    chosen_data = data_dir(args.data_dir)
    if chosen_data is not None and not chosen_data.is_dir():
        raise DataError(f"data directory {chosen_data} (from --data-dir or ${ENV_VAR}) does not exist")
    store = RecordStore(args.results / args.profile)
    todo = scheduling.plan(specs, store)
    for suite in suites:
        mine = [s for s in specs if s.suite == suite.name]
        pending = sum(s in todo for s in mine)
        console.print(f"{suite.name}: {len(mine)} runs at profile {args.profile}, "
                      f"{len(mine) - pending} cached, {pending} to run")
    requested = {s.run_id for s in specs}
    for spec in todo:
        if spec.run_id not in requested:
            console.print(f"{escape(spec.label)}: to run first, another suite reads its files")
    # Tables hold the producers' suites too, whole: a producer run made here is a result like any other.
    names = {suite.name for suite in suites}
    producers = {p.name: p for suite in suites for p in suite.producer_suites.values() if p.name not in names}
    merged = specs + [spec for suite in producers.values() for spec in suite.runs(args.profile)]
    if not todo:
        console.print(f"Nothing to run: every run is cached in {store.root}/records.")
    failed, interrupted = [], False
    try:
        if todo:
            scheduling.run(todo, store, config, data_dir=chosen_data, address=args.address,
                           on_record=lambda r: failed.append(r) if r["status"] == "failed" else None)
    except KeyboardInterrupt:
        interrupted = True
    finally:  # whatever happened, the tables hold every finished run
        runs, metrics = tables.merge(store, merged)
        outcome = _evaluate(suites, runs, metrics, store.root)
    _print_claims(outcome)
    for record in failed:
        console.print(f"[red]failed:[/] {record['suite']} {record['run_id']}: {record['error'].strip().splitlines()[-1]}")
    done = sum(store.done(s) for s in specs)
    console.print(f"{done}/{len(specs)} runs ok; tables in {store.root}"
                  + (f"; {len(failed)} failed (rerun to retry them)" if failed else ""))
    if interrupted:
        console.print("Interrupted: finished runs are kept; run again to resume.")
        return 130
    return 1 if failed else 0


def _evaluate(suites: list[Suite], runs, metrics, profile_dir: Path):
    results = [r for suite in suites
               for r in claims.evaluate(suite, tables.joined(runs, metrics, suite.name), profile_dir.name)]
    return claims.write(profile_dir / "claims.csv", results)


def _list(args) -> int:
    table = Table("suite", "experiment", *PROFILES, "claims", title=f"suites (cache: {args.results})")
    for suite in resolve([]):
        cells = []
        for profile in PROFILES:
            specs = suite.runs(profile)
            store = RecordStore(args.results / profile)
            cells.append(f"{len(specs)} runs, {sum(store.done(s) for s in specs)} cached")
        table.add_row(suite.name, suite.model.experiment, *cells, str(len(suite.model.claims)))
    console.print(table)
    return 0


def _claims(args) -> int:
    suites = resolve([])
    outcome = _evaluate(suites, *tables.load(args.results / args.profile), args.results / args.profile)
    _print_claims(outcome)
    return 0 if (outcome["status"] == "reproduced").all() else 1


def _report(args) -> int:
    suites = resolve([])
    profile_dir = args.results / args.profile
    runs, metrics = tables.load(profile_dir)
    if runs.empty:
        raise DataError(f"no results in {profile_dir}: run `dlrepro run --profile {args.profile}` first")
    path = report.build(profile_dir, suites, _evaluate(suites, runs, metrics, profile_dir))
    console.print(f"Report written to {path}")
    return 0


def _check(args) -> int:
    baselines = regression.Baselines(args.baseline, args.profile)
    suites = resolve(args.suites)
    if not args.suites:  # a baseline whose suite file is gone is a missing suite, not a silent pass
        known = {s.name for s in suites}
        gone = [name for name in baselines.suites() if name not in known]
        for name in gone:
            console.print(f"[red]missing:[/] baseline {baselines.dir / name}.csv has no suite file {name}.toml")
        if gone:
            return 1
    verdicts, notes = regression.check(suites, baselines, args.results / args.profile)
    path = args.results / args.profile / "check.csv"
    atomic_write(path, lambda tmp: verdicts.to_csv(tmp, index=False))
    _print_verdicts(verdicts, f"check against {baselines.dir}")
    for note in notes:
        console.print(note, soft_wrap=True)
    blocking = verdicts[verdicts["verdict"].isin(regression.BLOCKING)]
    console.print(f"{len(verdicts)} values compared; every verdict in {path}")
    if len(blocking):
        console.print(f"[red]{len(blocking)} regressed or missing[/]: fix the cause, or refresh the baseline on "
                      f"purpose with `dlrepro baseline update SUITE --profile {args.profile}`")
        return 1
    console.print("[green]No regression.[/]")
    return 0


def _update_baselines(args) -> int:
    baselines = regression.Baselines(args.baseline, args.profile)
    runs, metrics = tables.load(args.results / args.profile)
    suites = resolve(args.suites) if args.suites else [s for s in resolve([]) if (runs["suite"] == s.name).any()]
    if not suites:
        raise DataError(f"no results in {args.results / args.profile}: run `dlrepro run --profile {args.profile}` first")
    for suite in suites:
        summary = regression.summarise(runs, metrics, suite, args.profile)
        if summary.empty:
            raise DataError(f"no successful runs of {suite.name} in {args.results / args.profile}: nothing to baseline")
        old = baselines.read(suite.name)
        if old is None:
            console.print(f"{suite.name}: new baseline")
        else:
            _print_verdicts(regression.compare(old, summary, suite.metrics), f"{suite.name}: changes from the old baseline")
        path = baselines.write(suite.name, summary, regression.cost(runs, suite.name))
        console.print(f"wrote {path} ({len(summary)} values)")
    return 0


def _print_verdicts(verdicts, title: str, limit: int = 40) -> None:
    counts = verdicts.groupby(["suite", "verdict"]).size().unstack(fill_value=0)
    summary = Table("suite", *counts.columns, title=title)
    for suite, row in counts.iterrows():
        summary.add_row(suite, *map(str, row))
    console.print(summary)
    colour = {"regressed": "red", "missing": "red", "improved": "green", "new": "cyan", "inconclusive": "yellow"}
    lines = []  # one line per change, never wrapped, so that a CI log shows each whole
    for row in verdicts[verdicts["verdict"].isin(["regressed", "improved", "inconclusive"])].itertuples():
        step = "" if pd.isna(row.step) else f" step {row.step}"
        welch = "" if pd.isna(row.p_value) else f", Welch p = {row.p_value:.2g}"
        lines.append((row.verdict, f"{row.suite} [{row.configuration}] {row.metric}{step}: {_num(row.mean_base)} → "
                      f"{_num(row.mean)} (Δ {_num(row.delta)}, allowed ± {_num(row.allowed)}{welch})"))
    # Values missing or new come by whole configurations (a changed parameter): one line each.
    absent = verdicts[verdicts["verdict"].isin(["missing", "new"])]
    for (verdict, suite, configuration), rows in absent.groupby(["verdict", "suite", "configuration"], sort=False):
        steps = rows.groupby("metric", sort=False)["step"].agg(lambda s: s.notna().sum())
        names = ", ".join(f"{m} ({n} steps)" if n else m for m, n in steps.items())
        lines.append((verdict, f"{suite} [{configuration}]: {names}"))
    for verdict, text in lines[:limit]:
        console.print(f"[{colour[verdict]}]{verdict}[/] " + escape(text), highlight=False, soft_wrap=True)
    if len(lines) > limit:
        console.print(f"… and {len(lines) - limit} more")


def _num(value) -> str:
    return "" if pd.isna(value) else f"{value:.6g}"


def _print_claims(outcome) -> None:
    table = Table("suite", "claim", "status", "measured", "expected", title="claims")
    colour = {"reproduced": "green", "not reproduced": "red", "not run": "yellow"}
    for row in outcome.itertuples():
        table.add_row(row.suite, row.claim, f"[{colour[row.status]}]{row.status}[/]", str(row.measured), str(row.expected))
    console.print(table)
