"""Command line: ``dlrepro run | generalise | list | claims | report | check | baseline update``.

It parses arguments, calls ``dlrepro.pipeline`` and prints. Exit codes: 0 success; 1 a run failed
(run), a claim did not hold (claims) or the gate did not pass (check); 2 bad input, refused before
any work with one line naming the file and the key; 130 interrupted by Ctrl-C, 143 by SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import NoReturn

from dlrepro import pipeline
from dlrepro.console import console
from dlrepro.data import ENV_VAR, DataError
from dlrepro.experiment import ContractError
from dlrepro.layout import BaselineError, Results, ResultsError, baselines_dir
from dlrepro.planning import SchedulingError
from dlrepro.schema import PROFILES
from dlrepro.suite import SuiteError, parse_override, resolve
from dlrepro.verdicts import ClaimStatus, GateVerdict

BAD_INPUT = (SuiteError, DataError, ResultsError, BaselineError, SchedulingError, ContractError, pipeline.UsageError)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other refusal
        self.exit(2, f"dlrepro: error: {self.prog}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.command(args)
    except BAD_INPUT as err:
        print(f"dlrepro: error: {err}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame) -> None:
    raise pipeline.Interrupted(signum)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlrepro", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name: str, command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(command=command)
        p.add_argument("--results", type=Path, default=Path("results"), help="results directory (default: results/)")
        p.add_argument("--profile", choices=PROFILES, default="quick", help="smoke (CI, seconds), quick "
                       "(default: a laptop CPU, minutes) or full (paper-faithful, GPUs)")
        return p

    run = add("run", _run, "run suites, merge the tables, evaluate the claims")
    run.add_argument("suites", nargs="*", metavar="SUITE", help="a name from suites/ or a path to a TOML file (default: all)")
    general = add("generalise", _generalise, "run the suites that read a dataset on MNIST and on another set "
                  "(--set dataset=…), and compare each claim's verdicts")
    general.add_argument("--dataset", default="fashion_mnist", help="the other set (default: fashion_mnist)")
    for p in (run, general):
        p.add_argument("--runner", default="local", help="a runner from runners/: local (default) or ray")
        p.add_argument("--address", help="Ray cluster address for --runner ray (default: the runner file's, "
                       "else $RAY_ADDRESS, else an embedded instance on this machine)")
        p.add_argument("--data-dir", help=f"directory holding MNIST/raw and FashionMNIST/raw (default: ${ENV_VAR}, "
                       "else download)")
    add("list", _list, "list suites and their runs per profile, cached or not")
    claims = add("claims", _claims, "evaluate every claim against the tables; exit 1 unless all are reproduced (or do not apply)")
    report = add("report", _report, "write report.md and report.html: the claims, published numbers, figures, time "
                 "and energy")
    for p in (run, claims, report):
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a parameter, grid axis or the seeds of the suites on top of the profile, VALUE "
                       "as TOML (--set epochs=7, --set d=[3,5,7], --set dataset=fashion_mnist); repeatable. Results "
                       "go to RESULTS/PROFILE+KEY=VALUE/, never into the profile's own tables")
    check = add("check", _check, "compare the result tables with committed baselines; exit 1 unless values were "
                "compared and none regressed or went missing")
    check.add_argument("--allow-new", action="store_true", help="let a suite without a baseline pass (default: fail)")
    baseline = add("baseline", _update_baselines, "refresh baselines from the result tables, on purpose, "
                   "showing what changes")
    baseline.add_argument("action", choices=["update"])
    for p in (check, baseline):
        p.add_argument("suites", nargs="*", metavar="SUITE", help="a name from suites/ or a path to a TOML file "
                       "(default: check: every suite and every baseline; update: every suite with results)")
        p.add_argument("--baseline", type=Path, default=baselines_dir(),
                       help="baselines directory, one folder per profile (default: the project's results/baselines)")
    return parser


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


def _run(args) -> int:
    request = pipeline.prepare(args.suites, args.profile, args.runner, results=args.results, data=args.data_dir,
                               address=args.address, overrides=_overrides(args))
    outcome = pipeline.run(request, _say)
    _print_claims(outcome.claims)
    for record in outcome.failed:
        _say(f"[red]failed:[/] {record['suite']} {record['run_id']}: {record['error'].strip().splitlines()[-1]}")
    _say(f"{outcome.done}/{len(request.specs)} runs ok; tables in {request.results.root}"
         + (f"; {len(outcome.failed)} failed (rerun to retry them)" if outcome.failed else ""))
    if args.overrides:
        _say("Overridden runs stay out of the profile's own tables and report; theirs: dlrepro report --profile "
             f"{args.profile} " + " ".join(f"--set {text}" for text in args.overrides))
    if outcome.interrupted:
        _say("Interrupted: finished runs are kept; run again to resume.")
        return 128 + outcome.interrupted
    return 1 if outcome.failed else 0


def _generalise(args) -> int:
    from rich.markup import escape

    from dlrepro import generalisation

    found = pipeline.generalise(args.profile, args.runner, _say, dataset=args.dataset, results=args.results,
                                data=args.data_dir, address=args.address)
    interrupted = next((o.interrupted for o in found.outcomes if o.interrupted), None)
    if interrupted:
        _say("Interrupted: finished runs are kept; run again to resume.")
        return 128 + interrupted
    for line in generalisation.markdown(found.table, args.dataset):
        _say(escape(line))
    changed = int(found.table["changed"].sum())
    _say(f"{changed} transferable claim(s) changed verdict on {args.dataset}; table in {found.folder.generalisation}; "
         f"report: dlrepro report --profile {args.profile} --set dataset={args.dataset}")
    return 1 if any(o.failed for o in found.outcomes) else 0


def _overrides(args) -> list:
    return [parse_override(text) for text in args.overrides]


def _list(args) -> int:
    from rich.table import Table

    table = Table("suite", "experiment", *PROFILES, "claims", title=f"suites (cache: {args.results})")
    for suite in resolve([]):
        cells = []
        for profile in PROFILES:
            specs, results = suite.runs(profile), Results(args.results, profile)
            cells.append(f"{len(specs)} runs, {sum(results.done(s) for s in specs)} cached")
        table.add_row(suite.name, suite.model.experiment, *cells, str(len(suite.model.claims)))
    console.print(table)
    return 0


def _claims(args) -> int:
    outcome = pipeline.claims(args.results, args.profile, _overrides(args))
    _print_claims(outcome)
    fine = outcome["status"].isin([ClaimStatus.REPRODUCED, ClaimStatus.DOES_NOT_APPLY])
    return 0 if len(outcome) and fine.all() else 1


def _report(args) -> int:
    written = pipeline.report(args.results, args.profile, _say, _overrides(args))
    _say("Report written to " + " and ".join(map(str, written)))
    return 0


def _check(args) -> int:
    outcome = pipeline.check(args.suites, args.results, args.profile, args.baseline)
    _print_verdicts(outcome.verdicts)
    for note in outcome.notes:
        _say(note)
    _say(_compared(outcome.verdicts, outcome.compared, args.baseline / args.profile)
         + f"; every verdict in {outcome.path}")
    reasons = outcome.blocking(args.allow_new)
    for reason in reasons:
        _say(f"[red]gate fails:[/] {reason}")
    if reasons:
        _say("Fix the cause, or refresh a baseline on purpose with `dlrepro baseline update SUITE "
             f"--profile {args.profile}`.")
        return 1
    _say("[green]No regression.[/]")
    return 0


def _update_baselines(args) -> int:
    def show(suite: str, changes) -> None:
        if changes is None:
            _say(f"{suite}: new baseline")
        else:
            _say(f"{suite}: changes from the old baseline")
            _print_verdicts(changes)

    for path, values in pipeline.update_baselines(args.suites, args.results, args.profile, args.baseline, show):
        _say(f"wrote {path} ({values} values)")
    return 0


def _compared(verdicts, compared: int, baselines: Path) -> str:
    """How many values were compared with the baselines, and how many could not be."""
    counts = verdicts["verdict"].value_counts()
    line = f"{compared} value(s) compared with {baselines}"
    for verdict in (GateVerdict.MISSING, GateVerdict.NEW):
        if counts.get(verdict):
            line += f", {counts[verdict]} {verdict}"
    return line


VERDICT_COLOURS = {GateVerdict.REGRESSED: "red", GateVerdict.MISSING: "red",
                   GateVerdict.IMPROVED: "green", GateVerdict.NEW: "cyan",
                   GateVerdict.INCONCLUSIVE: "yellow"}


def _print_verdicts(verdicts, limit: int = 40) -> None:
    """One line per suite with its counts, then one line per change: whole in a CI log, never
    wrapped."""
    import pandas as pd
    from rich.markup import escape

    counted = verdicts.groupby("suite")["verdict"].value_counts().unstack(fill_value=0)
    for suite, counts in counted.iterrows():
        _say(f"{suite}: " + ", ".join(f"{n} {verdict}" for verdict, n in counts.items() if n))
    changed = [GateVerdict.REGRESSED, GateVerdict.IMPROVED, GateVerdict.INCONCLUSIVE]
    lines = []
    for row in verdicts[verdicts["verdict"].isin(changed)].itertuples():
        step = "" if pd.isna(row.step) else f" step {row.step}"
        welch = "" if pd.isna(row.p_value) else f", Welch p = {row.p_value:.2g}"
        lines.append((row.verdict, f"{row.suite} [{row.configuration}] {row.metric}{step}: "
                      f"{_num(row.mean_base)} → {_num(row.mean)} (Δ {_num(row.delta)}, "
                      f"allowed ± {_num(row.allowed)}{welch})"))
    # Values missing or new come by whole configurations (a changed parameter): one line each.
    absent = verdicts[verdicts["verdict"].isin([GateVerdict.MISSING, GateVerdict.NEW])]
    by_configuration = absent.groupby(["verdict", "suite", "configuration"], sort=False)
    for (verdict, suite, configuration), rows in by_configuration:
        steps = rows.groupby("metric", sort=False)["step"].agg(lambda s: s.notna().sum())
        names = ", ".join(f"{m} ({n} steps)" if n else m for m, n in steps.items())
        lines.append((verdict, f"{suite} [{configuration}]: {names}"))
    for verdict, text in lines[:limit]:
        _say(f"[{VERDICT_COLOURS[verdict]}]{verdict}[/] " + escape(text))
    if len(lines) > limit:
        _say(f"… and {len(lines) - limit} more")


def _num(value) -> str:
    import pandas as pd

    return "" if pd.isna(value) else f"{value:.6g}"


CLAIM_COLOURS = {ClaimStatus.REPRODUCED: "green", ClaimStatus.NOT_REPRODUCED: "red",
                 ClaimStatus.NOT_RUN: "yellow", ClaimStatus.DOES_NOT_APPLY: "dim"}


def _print_claims(outcome) -> None:
    """A table in a terminal; one line per claim elsewhere (a CI log, a file)."""
    from rich.markup import escape
    from rich.table import Table

    from dlrepro import claims
    results = claims.results(outcome)
    if not console.is_terminal:
        for result in results:
            got, expected = map(escape, claims.describe(result))
            _say(f"[{CLAIM_COLOURS[result.status]}]{result.status}[/] {result.suite}/"
                 f"{result.claim}: measured {got}; expected {expected}")
    else:
        table = Table("suite", "claim", "status", "measured", "expected", title="claims")
        for result in results:
            table.add_row(result.suite, result.claim,
                          f"[{CLAIM_COLOURS[result.status]}]{result.status}[/]",
                          *map(escape, claims.describe(result)))
        console.print(table)
    _say(f"claims: {claims.summary(outcome['status'])}")
