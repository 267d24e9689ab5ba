"""Command line: ``dlrepro run | generalise | list | claims | report | check | baseline update``.

It parses arguments, calls ``dlrepro.pipeline`` and prints: results on stdout, progress and
diagnostics on stderr. Exit codes: 0 success; 1 a run failed (run), a claim did not hold (claims)
or the gate did not pass (check); 2 bad input, refused before any work with one line naming the
file and the key; 130 interrupted by Ctrl-C, 143 by SIGTERM.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rich.markup import escape

from dlrepro import pipeline
from dlrepro.console import OutputFormat, diagnostics, output, write_rows
from dlrepro.data import ENV_VAR
from dlrepro import devices
from dlrepro.devices import DeviceChoice
from dlrepro.errors import Refused
from dlrepro.formatting import counted, no_results
from dlrepro.layout import Results
from dlrepro.overrides import Verb, flags, parse_override
from dlrepro.project import baselines_dir, resolve
from dlrepro.schema import PROFILES
from dlrepro.verdicts import ClaimStatus, GateVerdict

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other refusal
        self.exit(2, f"dlrepro: error: {self.prog}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.command(args)
    except Refused as err:
        print(f"dlrepro: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (| head): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        return 128 + signal.SIGPIPE
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame) -> None:
    raise pipeline.Interrupted(signum)


DESCRIPTION = "Reproduce the courses' deep-learning experiments from the suites in suites/."
BAD_INPUT_EXIT = "2 bad input, refused before any work (one line naming the file and the key)"
INTERRUPTED_EXIT = "130 interrupted by Ctrl-C, 143 by SIGTERM (finished runs are kept)"
RAN_EXITS = ("0 every run ok", "1 a run failed", INTERRUPTED_EXIT)


def _epilog(writes: str, stdout: str, *exits: str) -> str:
    """What a command writes, prints and exits with, at the end of its --help."""
    lines = [f"writes: {writes}", f"stdout: {stdout}; stderr: progress, warnings and errors",
             "exit codes:"]
    codes = sorted((*exits, BAD_INPUT_EXIT), key=lambda code: int(code.split()[0]))
    lines += [f"  {code}" for code in codes]
    return "\n".join(textwrap.fill(line, 79, subsequent_indent="    ") for line in lines)


def _parser() -> argparse.ArgumentParser:
    plain = argparse.RawDescriptionHelpFormatter  # keeps the epilogs' lines
    parser = _Parser(prog="dlrepro", description=DESCRIPTION, formatter_class=plain, epilog=_epilog(
        "each command its own (dlrepro COMMAND --help)", "results",
        "0 success", "1 a run failed (run), a claim did not hold (claims) or the gate did not "
        "pass (check)", INTERRUPTED_EXIT, "141 stdout's reader stopped reading (| head)"))
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)
    profiles = {"quick": "smoke (CI, seconds), quick (default: a laptop CPU, minutes) or full "
                "(paper-faithful, GPUs)",
                None: "smoke, quick or full: that one only (default: every profile)"}

    def add(name: str, command, help: str, epilog: str, within=sub,
            profile: str | None = "quick") -> argparse.ArgumentParser:
        p = within.add_parser(name, help=help, description=help, epilog=epilog,
                              formatter_class=plain)
        p.set_defaults(command=command)
        p.add_argument("--results", type=Path, default=Path("results"),
                       help="results directory (default: results/)")
        p.add_argument("--profile", choices=PROFILES, default=profile, help=profiles[profile])
        return p

    def add_suites(p: argparse.ArgumentParser, default: str) -> None:
        p.add_argument("suites", nargs="*", metavar="SUITE",
                       help=f"a name from suites/ or a path to a TOML file (default: {default})")

    def add_format(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=[f.value for f in OutputFormat], default="table",
                       help="table (default: for a person), or csv or json for a script: the "
                       "table's columns, numbers as numbers")

    run = add("run", _run, "run suites, merge the tables, evaluate the claims", _epilog(
        "RESULTS/PROFILE/ (records, runs and metrics tables, claims.csv, fidelity.csv, "
        "artifacts, energy); with --set, RESULTS/PROFILE+KEY=VALUE/ (--only adds "
        "+only+KEY=VALUE); with --dry-run, nothing",
        "the claims and their count (with --dry-run: the plan)", *RAN_EXITS))
    add_suites(run, "all")
    run.add_argument("--dry-run", action="store_true", help="print the plan (runs to do per "
                     "suite, how many cached, the ETA, the device) and stop, writing nothing")
    general = add("generalise", _generalise, "run the suites that read a dataset on MNIST and on "
                  "another set (--set dataset=...), and compare each claim's verdicts", _epilog(
                      "RESULTS/PROFILE/ and RESULTS/PROFILE+dataset=SET/ as run does, and "
                      "generalisation.csv in the latter", "the comparison", *RAN_EXITS))
    general.add_argument("--dataset", default="fashion_mnist",
                         help="the other set (default: fashion_mnist)")
    for p in (run, general):
        p.add_argument("--runner", default="local",
                       help="a runner from runners/: local (default) or ray")
        p.add_argument("--address", help="Ray cluster address for --runner ray (default: the "
                       "runner file's, else $RAY_ADDRESS, else an embedded instance here)")
        p.add_argument("--data-dir", help="directory holding MNIST/raw and FashionMNIST/raw "
                       f"(default: ${ENV_VAR}, else download)")
        p.add_argument("--device", type=_device, default=DeviceChoice.AUTO,
                       metavar="{" + ",".join(DeviceChoice) + "}",
                       help="the local runner's: auto (default) puts the runs that read a data "
                       "set on a CUDA GPU when torch sees one, the others on the CPU; cpu or cuda "
                       "puts every run there (mps is not offered: some runs compute in float64)")
    listing = add("list", _list, "list suites and their runs per profile, cached or not, and the "
                  "results folder's runs with --set overrides", _epilog(
                      "nothing", "a row per suite and results folder", "0 listed"), profile=None)
    claims = add("claims", _claims, "evaluate the suites' claims against the tables, writing "
                 "nothing; exit 1 unless all are reproduced (or do not apply)", _epilog(
                     "nothing", "the claims, and their "
                     "count with --format table", "0 every claim reproduced or does not apply",
                     "1 one is not reproduced or not run"))
    add_suites(listing, "all")
    for p in (listing, claims):
        add_format(p)
    report = add("report", _report, "write report.md and report.html: the claims, published "
                 "numbers, figures, time and energy", _epilog(
                     "report.md, report.html, figures/, claims.csv and fidelity.csv in "
                     "RESULTS/PROFILE/", "where the report was written", "0 written"))
    for p in (claims, report):
        add_suites(p, "every suite of suites/ and every suite file run into the results folder")
    check = add("check", _check, "compare the result tables with committed baselines; exit 1 "
                "unless values were compared and none regressed or went missing", _epilog(
                    "check.csv in RESULTS/PROFILE/, every verdict", "the verdicts and the gate's "
                    "summary", "0 the gate passes", "1 it fails (a value regressed or went "
                    "missing, a suite has no baseline, nothing was compared)"))
    check.add_argument("--allow-new", action="store_true",
                       help="let a suite without a baseline pass (default: fail)")
    add_suites(check, "every suite and every baseline")
    baseline = sub.add_parser("baseline", help="refresh the committed baselines (baseline update)",
                              description="manage the committed baselines", formatter_class=plain,
                              epilog="dlrepro baseline update --help says what update does.")
    actions = baseline.add_subparsers(required=True, metavar="ACTION", parser_class=_Parser)
    update = add("update", _update_baselines, "refresh baselines from the result tables, on "
                 "purpose, showing what changes", _epilog(
                     "BASELINE/PROFILE/SUITE.csv and BASELINE/PROFILE/cost.csv", "each suite's "
                     "changes from its old baseline and the files written", "0 written"),
                 within=actions)
    add_suites(update, "every suite with results")
    update.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="seeds=[...]", help="read the folder run with these seeds, for a "
                        "baseline of part of the profile (no other --set: a baseline is of the "
                        "profile's settings)")
    update.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                        help="read the folder run with this selection (RESULTS/PROFILE+only+...): "
                        "a baseline of some configurations; the gate says what it lacks")
    for p in (run, claims, report):
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="set a parameter (or the seeds) on every run of the suites, on top of "
                       "the profile, VALUE as TOML (--set epochs=7, --set dataset=fashion_mnist); "
                       "a list sweeps it, one run per value (--set d=[3,5,7]); repeatable. Results "
                       "go to RESULTS/PROFILE+KEY=VALUE/, never into the profile's own tables")
        p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                       help="keep only the runs whose parameter KEY is VALUE, or any of a list "
                       "(--only model=cnn, --only model=[pca,cnn]); repeatable: a run must match "
                       "each KEY. Results go to RESULTS/PROFILE+only+KEY=VALUE/")
    for p in (check, update):
        p.add_argument("--baseline", type=Path, default=baselines_dir(),
                       help="baselines directory, one folder per profile (default: the project's "
                       "results/baselines)")
    return parser


def _device(text: str) -> DeviceChoice:
    try:
        return devices.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _say(markup: str) -> None:
    """A result, on stdout."""
    output.print(markup, soft_wrap=True, highlight=False)


def _note(markup: str) -> None:
    """Progress or a diagnostic, on stderr."""
    diagnostics.print(markup, soft_wrap=True, highlight=False)


def _say_text(text: str) -> None:
    """A result in plain text, shown as written whatever brackets it holds."""
    _say(escape(text))


def _note_text(text: str) -> None:
    """The pipeline's plain text (progress, warnings), on stderr as written."""
    _note(escape(text))


def _run(args) -> int:
    request = pipeline.prepare(args.suites, args.profile, args.runner, results=args.results,
                               data=args.data_dir, address=args.address, overrides=_overrides(args),
                               only=_only(args), device=args.device, say=_note_text)
    if args.dry_run:
        for line in pipeline.dry_run(request, _note_text).lines():
            _say_text(line)
        return 0
    outcome = pipeline.run(request, _note_text)
    _print_claims(outcome.claims)
    for record in outcome.failed:
        _note("[red]failed:[/] " + escape(f"{record['suite']} {record['run_id']}: "
                                          f"{_failure(record['error'])}"))
    failed = f"; {len(outcome.failed)} failed (rerun to retry them)" if outcome.failed else ""
    _note_text(f"{outcome.done}/{len(request.specs)} runs ok; tables in {request.results.root}"
               + failed)
    if args.overrides or args.only:
        given = " ".join(flags(_overrides(args), _only(args)))
        _note_text("Overridden runs stay out of the profile's own tables and report; theirs: "
                   f"dlrepro report --profile {args.profile} {given}")
    if outcome.interrupted:
        _note_text("Interrupted: finished runs are kept; run again to resume.")
        return 128 + outcome.interrupted
    return 1 if outcome.failed else 0


def _failure(error: str) -> str:
    """A failed run's traceback in one line: the error, and the innermost line of an experiment's
    code that raised it (the whole traceback is in runs.csv's ``error``)."""
    lines = error.strip().splitlines()
    frames = re.findall(r'File "([^"]*dlrepro/experiments/[^"]+)", line (\d+)', error)
    if not frames:
        return lines[-1]
    path, line = frames[-1]
    return f"{lines[-1]} ({path[path.index('dlrepro/experiments/'):]}:{line})"


def _generalise(args) -> int:
    from dlrepro import generalisation

    found = pipeline.generalise(args.profile, args.runner, _note_text, dataset=args.dataset,
                                results=args.results, data=args.data_dir, address=args.address,
                                device=args.device)
    interrupted = next((o.interrupted for o in found.outcomes if o.interrupted), None)
    if interrupted:
        _note("Interrupted: finished runs are kept; run again to resume.")
        return 128 + interrupted
    for line in generalisation.markdown(found.table, args.dataset):
        _say_text(line)
    changed = int(found.table["changed"].sum())
    _say_text(f"{changed} transferable claim(s) changed verdict on {args.dataset}; table in "
              f"{found.folder.generalisation}; report: dlrepro report --profile {args.profile} "
              f"--set dataset={args.dataset}")
    return 1 if any(o.failed for o in found.outcomes) else 0


def _overrides(args) -> list:
    return [parse_override(text) for text in args.overrides]


def _only(args) -> list:
    return [parse_override(text, Verb.ONLY) for text in args.only]


LIST_COLUMNS = ("suite", "experiment", "profile", "overrides", "runs", "cached", "claims")


def _list(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    profiles = [args.profile] if args.profile else PROFILES
    rows = _listing(args.suites, args.results, profiles)
    if args.format != OutputFormat.TABLE:
        write_rows(LIST_COLUMNS, rows, args.format)
    elif output.is_terminal:
        table = Table(*LIST_COLUMNS, title=f"suites (cache: {escape(str(args.results))})")
        for row in rows:
            table.add_row(*(escape(str(row[column])) for column in LIST_COLUMNS))
        output.print(table)
    else:  # whole lines, never squeezed to a pipe's 80 columns
        for row in rows:
            where = "+".join(filter(None, (row["profile"], row["overrides"])))
            _say_text(f"{row['suite']} ({row['experiment']}) at {where}: "
                      f"{counted(row['runs'], 'run')}, {row['cached']} cached, "
                      f"{counted(row['claims'], 'claim')}")
    return 0


def _listing(names: list[str], results: Path, profiles: Sequence[str]) -> list[dict]:
    """A row per suite and profile: its runs, how many are cached; then a row per suite run in an
    override folder of those profiles (``PROFILE+KEY=VALUE``), with the runs recorded there. No
    names: the suites of suites/ and those of one's own run in the folder."""
    from dlrepro.project import with_own

    rows, named = [], resolve(names)
    for profile in profiles:
        folder = Results(results, profile)
        for suite in named if names else with_own(named, folder):
            specs = suite.runs(profile)
            rows.append(_list_row(suite, profile, "", len(specs), sum(map(folder.done, specs))))
        for overridden in sorted(Path(results).glob(f"{glob.escape(profile)}+*/records")):
            folder = Results.at(overridden.parent)
            for suite in named if names else with_own(named, folder):
                statuses = _recorded_statuses(folder.records(suite.name))
                if statuses:
                    rows.append(_list_row(suite, profile, folder.overrides, len(statuses),
                                          statuses.count("ok")))
    return rows


def _list_row(suite, profile: str, overrides: str, runs: int, cached: int) -> dict:
    claims = [c for c in suite.model.claims if c.at(profile)]
    return {"suite": suite.name, "experiment": suite.model.experiment, "profile": profile,
            "overrides": overrides, "runs": runs, "cached": cached, "claims": len(claims)}


def _recorded_statuses(records: Path) -> list[str]:
    """The status of every readable record in a suite's records folder."""
    statuses = []
    for path in records.glob("*.json"):
        try:
            statuses.append(json.loads(path.read_text())["status"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable record is run again, as if never run
    return statuses


def _claims(args) -> int:
    from dlrepro import claims

    found = pipeline.claims(args.suites, args.results, args.profile, _note_text, _overrides(args),
                            _only(args))
    table = found.table
    if args.format == OutputFormat.TABLE:
        _print_claims(found)
    else:  # the numbers of claims.csv, lists as JSON text in a CSV; every claim, a row each
        shown = claims.csv_cells(table) if args.format == OutputFormat.CSV else table
        write_rows(claims.COLUMNS, shown.to_dict("records"), args.format)
    fine = table["status"].isin([ClaimStatus.REPRODUCED, ClaimStatus.DOES_NOT_APPLY])
    return 0 if len(table) and fine.all() else 1


def _report(args) -> int:
    written = pipeline.report(args.suites, args.results, args.profile, _note_text,
                              _overrides(args), _only(args))
    _say_text("Report written to " + " and ".join(map(str, written)))
    return 0


def _check(args) -> int:
    outcome = pipeline.check(args.suites, args.results, args.profile, args.baseline, _note_text)
    _print_verdicts(outcome.verdicts)
    for note in outcome.notes:
        _note_text(note)
    _say_text(_compared(outcome.verdicts, outcome.compared, args.baseline / args.profile)
              + f"; every verdict in {outcome.path}")
    reasons = outcome.blocking(args.allow_new)
    for reason in reasons:
        _say(f"[red]gate fails:[/] {reason}")
    if reasons:
        own = "" if args.baseline == baselines_dir() else f" --baseline {args.baseline}"
        _say("Fix the cause, or refresh a baseline on purpose with `dlrepro baseline update SUITE "
             f"--profile {args.profile}{own}`.")
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

    written = pipeline.update_baselines(args.suites, args.results, args.profile, args.baseline,
                                        show, _overrides(args), _only(args))
    for path, values in written:
        _say_text(f"wrote {path} ({values} values)")
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


def _with_steps(metric: str, steps: int) -> str:
    """A metric and how many steps of it, when it has steps."""
    return f"{metric} ({steps} steps)" if steps else metric


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
        names = ", ".join(_with_steps(metric, n) for metric, n in steps.items())
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


def _print_claims(found: pipeline.Claims) -> None:
    """A table in a terminal; one line per claim elsewhere (a CI log, a file). The suites with no
    results at all take one line between them."""
    from rich.markup import escape
    from rich.table import Table

    from dlrepro import claims

    results = claims.results(found.table[~found.table["suite"].isin(found.unrun)])
    if not output.is_terminal:
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
        output.print(table)
    if found.unrun:
        _say_text(no_results(found.unrun))
    _say(f"claims: {claims.summary(found.table['status'])}")
