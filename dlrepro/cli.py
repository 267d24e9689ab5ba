"""Command line: ``dlrepro run | list | claims | report``.

Exit codes: 0 success; 1 a run failed (run) or a claim did not hold (claims); 2 bad input
(a suite file, a runner file, a missing data directory); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.table import Table

from dlrepro import claims, report, tables
from dlrepro.data import ENV_VAR, DataError, data_dir
from dlrepro.scheduling import console, run_local, runner_config
from dlrepro.store import RecordStore
from dlrepro.suite import PROFILES, Suite, SuiteError, resolve


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (SuiteError, DataError) as err:
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
    run.add_argument("--runner", default="local", help="a runner from runners/ (default: local)")
    run.add_argument("--data-dir", help=f"directory holding MNIST/raw (default: ${ENV_VAR}, else download)")
    add("list", _list, "list suites and their runs per profile, cached or not")
    add("claims", _claims, "evaluate every claim against the tables; exit 1 unless all are reproduced")
    add("report", _report, "write report.md with the claims, the figures, time and energy")
    return parser


def _run(args) -> int:
    suites = resolve(args.suites)
    specs = [spec for suite in suites for spec in suite.runs(args.profile)]
    config = runner_config(args.runner)
    chosen_data = data_dir(args.data_dir)
    if chosen_data is not None and not chosen_data.is_dir():
        raise DataError(f"data directory {chosen_data} (from --data-dir or ${ENV_VAR}) does not exist")
    store = RecordStore(args.results / args.profile)
    todo = [spec for spec in specs if not store.done(spec)]
    for suite in suites:
        mine = [s for s in specs if s.suite == suite.name]
        pending = sum(s in todo for s in mine)
        console.print(f"{suite.name}: {len(mine)} runs at profile {args.profile}, "
                      f"{len(mine) - pending} cached, {pending} to run")
    if not todo:
        console.print(f"Nothing to run: every run is cached in {store.root}/records.")
    failed, interrupted = [], False
    try:
        if todo:
            run_local(todo, store, config, data_dir=chosen_data,
                      on_record=lambda r: failed.append(r) if r["status"] == "failed" else None)
    except KeyboardInterrupt:
        interrupted = True
    finally:  # whatever happened, the tables hold every finished run
        runs, metrics = tables.merge(store, specs)
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
    results = [r for suite in suites for r in claims.evaluate(suite, tables.joined(runs, metrics, suite.name))]
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


def _print_claims(outcome) -> None:
    table = Table("suite", "claim", "status", "measured", "expected", title="claims")
    colour = {"reproduced": "green", "not reproduced": "red", "not run": "yellow"}
    for row in outcome.itertuples():
        table.add_row(row.suite, row.claim, f"[{colour[row.status]}]{row.status}[/]", str(row.measured), str(row.expected))
    console.print(table)
