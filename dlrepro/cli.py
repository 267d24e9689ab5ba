"""Command line: ``dlrepro run | generalise | list | claims | report | check | baseline update``.
Results go to stdout, progress and diagnostics to stderr (``dlrepro.console``)."""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import NoReturn

from rich.text import Text

from dlrepro import devices, formatting, pipeline
from dlrepro.console import OutputFormat, note, say, write_rows
from dlrepro.devices import DeviceChoice
from dlrepro.errors import Refused
from dlrepro.files import ENV_VAR
from dlrepro.overrides import MOST_VALUES, Verb, flags, parse_override
from dlrepro.project import baselines_dir, listing
from dlrepro.schema import PROFILES
from dlrepro.formatting import ClaimStatus, GateVerdict, counted, failure, no_results


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other refusal
        self.exit(2, f"dlrepro: error: {self.prog}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        args = _parser().parse_args(argv)  # a bad --set or --only is refused here
        return args.command(args)
    except Refused as err:
        print(f"dlrepro: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (| head): stop quietly, as other tools do
        for stream in (sys.stdout, sys.stderr):  # no error at exit's flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        return 128 + signal.SIGPIPE
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame) -> None:
    raise pipeline.Interrupted(signum)


INTERRUPTED = "Interrupted: finished runs are kept; run again to resume."


def _run(args) -> int:
    request = pipeline.prepare(args.suites, args.profile, args.runner, results=args.results,
                               data=args.data_dir, address=args.address, overrides=args.overrides,
                               only=args.only, device=args.device, say=note)
    if args.dry_run:
        for line in pipeline.dry_run(request, note):
            say(line)
        return 0
    outcome = pipeline.run(request, note)
    _print_claims(outcome.claims, OutputFormat.TABLE)
    for record in outcome.failed:
        note(("failed:", "red"), f" {record['suite']} {record['run_id']}: "
             f"{failure(record['error'])}")
    failed = f"; {len(outcome.failed)} failed (rerun to retry them)" if outcome.failed else ""
    failed += f"; {outcome.left_out} not run (data set absent)" if outcome.left_out else ""
    note(f"{outcome.done}/{len(request.specs)} runs ok; tables in {request.results.root}{failed}")
    if args.overrides or args.only:
        note("Overridden runs stay out of the profile's own tables and report; theirs: dlrepro "
             f"report --profile {args.profile} {' '.join(flags(args.overrides, args.only))}")
    if outcome.interrupted:
        note(INTERRUPTED)
        return 128 + outcome.interrupted
    return 1 if outcome.failed else 0


def _generalise(args) -> int:
    from dlrepro import generalisation

    table, folder, outcomes = generalisation.generalise(
        args.profile, args.runner, note, dataset=args.dataset, results=args.results,
        data=args.data_dir, address=args.address, device=args.device)
    interrupted = next((o.interrupted for o in outcomes if o.interrupted), None)
    if interrupted:
        note(INTERRUPTED)
        return 128 + interrupted
    for line in generalisation.markdown(table, args.dataset):
        say(line)
    say(f"{int(table['changed'].sum())} transferable claim(s) changed verdict on "
        f"{args.dataset}; table in {folder.generalisation}; report: dlrepro report --profile "
        f"{args.profile} --set dataset={args.dataset}")
    return 1 if any(o.failed for o in outcomes) else 0


LIST_COLUMNS = ("suite", "experiment", "profile", "overrides", "runs", "cached", "claims")


def _list(args) -> int:
    def line(row: dict) -> str:
        where = "+".join(filter(None, (row["profile"], row["overrides"])))
        return (f"{row['suite']} ({row['experiment']}) at {where}: {counted(row['runs'], 'run')}, "
                f"{row['cached']} cached, {counted(row['claims'], 'claim')}")

    rows = listing(args.suites, args.results, [args.profile] if args.profile else PROFILES)
    write_rows(LIST_COLUMNS, rows, args.format, f"suites (cache: {args.results})", line)
    return 0


def _claims(args) -> int:
    found = pipeline.claims(args.suites, args.results, args.profile, note, args.overrides,
                            args.only)
    _print_claims(found, args.format)
    fine = found.table["status"].isin([ClaimStatus.REPRODUCED, ClaimStatus.DOES_NOT_APPLY])
    return 0 if len(found.table) and fine.all() else 1


def _report(args) -> int:
    written = pipeline.report(args.suites, args.results, args.profile, note, args.overrides,
                              args.only)
    say("Report written to " + " and ".join(map(str, written)))
    return 0


def _check(args) -> int:
    from dlrepro import regression

    header, verdicts, notes, reasons, fixes, path = regression.check(
        args.suites, args.results, args.profile, args.baseline, args.allow_new, note)
    say(header)
    _print_verdicts(verdicts)
    for line in notes:
        note(line)
    counts = verdicts["verdict"].value_counts()
    uncompared = "".join(f", {counts[verdict]} {verdict}" for verdict in
                         (GateVerdict.MISSING, GateVerdict.NEW) if counts.get(verdict))
    say(f"{regression.compared(verdicts)} value(s) compared with "
        f"{args.baseline / args.profile}{uncompared}; every verdict in {path}")
    for reason in reasons:
        say(("gate fails:", "red"), f" {reason}")
    for fix in fixes:
        say(fix)
    if reasons:
        return 1
    say(("No regression.", "green"))
    return 0


def _update(args) -> int:
    def show(suite: str, changes) -> None:
        say(f"{suite}: {'new baseline' if changes is None else 'changes from the old baseline'}")
        if changes is not None:
            _print_verdicts(changes)

    from dlrepro import regression

    written = regression.update_baselines(args.suites, args.results, args.profile,
                                          args.baseline, show, args.overrides, args.only)
    for path, values in written:
        say(f"wrote {path} ({values} values)")
    return 0


VERDICT_COLOURS = {GateVerdict.REGRESSED: "red", GateVerdict.MISSING: "red",
                   GateVerdict.IMPROVED: "green", GateVerdict.NEW: "cyan",
                   GateVerdict.INCONCLUSIVE: "yellow"}


def _print_verdicts(verdicts, limit: int = 40) -> None:
    """A line per suite with its counts, then a line per change, whole in a CI log."""
    from dlrepro import regression

    counts, changes = regression.described(verdicts)
    for line in counts:
        say(line)
    for verdict, text in changes[:limit]:
        say((verdict, VERDICT_COLOURS[verdict]), f" {text}")
    if len(changes) > limit:
        say(f"… and {len(changes) - limit} more")


CLAIM_COLOURS = {ClaimStatus.REPRODUCED: "green", ClaimStatus.NOT_REPRODUCED: "red",
                 ClaimStatus.NOT_RUN: "yellow", ClaimStatus.DOES_NOT_APPLY: "dim"}
SHOWN_CLAIM_COLUMNS = ("suite", "claim", "status", "measured", "expected")


def _print_claims(found: pipeline.Claims, form: OutputFormat) -> None:
    """For a person, the claims of the suites with results, the suites with none on one line and
    the count; for a script, every claim with claims.csv's columns (lists as JSON text in CSV)."""
    from dlrepro import claims

    if form != OutputFormat.TABLE:
        shown = claims.csv_cells(found.table) if form == OutputFormat.CSV else found.table
        write_rows(claims.COLUMNS, shown.to_dict("records"), form)
        return
    rows = [dict(zip(SHOWN_CLAIM_COLUMNS, (result.suite, result.claim,
                                           Text(result.status, CLAIM_COLOURS[result.status]),
                                           *formatting.describe(result))))
            for result in claims.results(found.table[~found.table["suite"].isin(found.unrun)])]
    write_rows(SHOWN_CLAIM_COLUMNS, rows, form, "claims", lambda row: Text.assemble(
        row["status"], f" {row['suite']}/{row['claim']}: measured {row['measured']}; expected "
        f"{row['expected']}"))
    if found.unrun:
        say(no_results(found.unrun))
    say(f"claims: {formatting.summary(found.table['status'])}")


# Every flag, declared once; each command names those it takes.
FLAGS = {
    "--results": dict(type=Path, default=Path("results"),
                      help="results directory (default: results/)"),
    "--profile": dict(choices=PROFILES, default="quick", help="smoke (CI, seconds), quick "
                      "(default: a laptop CPU, minutes) or full (paper-faithful, GPUs)"),
    "--format": dict(choices=[form.value for form in OutputFormat], default=OutputFormat.TABLE,
                     help="table (default: for a person), or csv or json for a script: the "
                     "table's columns, numbers as numbers"),
    "--dry-run": dict(action="store_true", help="print the plan (runs to do per suite, how many "
                      "cached, the ETA, the device) and stop, writing nothing"),
    "--dataset": dict(default="fashion_mnist", help="the other set (default: fashion_mnist)"),
    "--runner": dict(default="local", help="a runner from runners/: local (default) or ray"),
    "--address": dict(help="Ray cluster address for --runner ray (default: the runner file's, "
                      "else $RAY_ADDRESS, else an embedded instance here)"),
    "--data-dir": dict(help="directory holding MNIST/raw and FashionMNIST/raw (default: "
                       f"${ENV_VAR}, else download)"),
    "--device": dict(type=devices.parse, default=DeviceChoice.AUTO,
                     metavar="{" + ",".join(DeviceChoice) + "}",
                     help="the local runner's: auto (default) puts the runs that read a data set "
                     "on a CUDA GPU when torch sees one, the others on the CPU; cpu or cuda puts "
                     "every run there (mps is not offered: some runs compute in float64)"),
    "--set": dict(dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                  type=parse_override,
                  help="set a parameter (or the seeds) on every run of the suites, on top of the "
                  "profile, VALUE as TOML (--set epochs=7, --set dataset=fashion_mnist); a list "
                  "sweeps it, one run per value (--set d=[3,5,7]), and so does a range: "
                  "range(START,STOP[,STEP]) of integers, STOP excluded (--set "
                  "'degree=range(1,21)'), or linspace(START,STOP,COUNT), COUNT numbers evenly "
                  f"spaced, STOP included (--set 'lr=linspace(0.1,0.5,5)'), 1 to {MOST_VALUES:,} "
                  "values; repeatable. Results go to RESULTS/PROFILE+KEY=VALUE/, never into the "
                  "profile's own tables"),
    "--only": dict(action="append", default=[], metavar="KEY=VALUE",
                   type=functools.partial(parse_override, flag=Verb.ONLY),
                   help="keep only the runs whose parameter KEY is VALUE, or any of a list "
                   "(--only model=cnn, --only model=[pca,cnn]); repeatable: a run must match each "
                   "KEY. Results go to RESULTS/PROFILE+only+KEY=VALUE/"),
    "--allow-new": dict(action="store_true",
                        help="let a suite without a baseline pass (default: fail)"),
    "--baseline": dict(type=Path, default=baselines_dir(), help="baselines directory, one folder "
                       "per profile (default: the project's results/baselines)"),
}
RUNNING = "--runner --address --data-dir --device"
EVERY_SUITE = "every suite of suites/ and every suite file run into the results folder"
RUN_EXITS = "exit codes: 0 every run ok, 1 a run failed, 2 bad input, 130 Ctrl-C, 143 SIGTERM"
WRITTEN_EXITS = "exit codes: 0 written, 2 bad input"
# name: its function, what it does, the flags it takes, what no SUITE means (None: it takes
# none), and the end of its --help, a paragraph a line: what it writes, prints on stdout and
# exits with
COMMANDS = {
    "run": (_run, "run suites, merge the tables, evaluate the claims",
            f"--results --profile --dry-run {RUNNING} --set --only", "all",
            "writes: RESULTS/PROFILE/ (records, runs and metrics tables, claims.csv, fidelity.csv, "
            "artifacts, energy); with --set, RESULTS/PROFILE+KEY=VALUE/ (--only adds "
            "+only+KEY=VALUE); with --dry-run, nothing\n"
            f"stdout: the claims and their count (with --dry-run: the plan)\n{RUN_EXITS}"),
    "generalise": (_generalise, "run the suites that read a dataset on MNIST and on another set "
                   "(--set dataset=...), and compare each claim's verdicts",
                   f"--results --profile --dataset {RUNNING}", None,
                   "writes: RESULTS/PROFILE/ and RESULTS/PROFILE+dataset=SET/ as run does, and "
                   f"generalisation.csv in the latter\nstdout: the comparison\n{RUN_EXITS}"),
    "list": (_list, "list suites and their runs per profile, cached or not, and the results "
             "folder's runs with --set overrides", "--results --format", "all",
             "writes: nothing\nstdout: a row per suite and results folder\n"
             "exit codes: 0 listed, 2 bad input"),
    "claims": (_claims, "evaluate the suites' claims against the tables, writing nothing; exit 1 "
               "unless all are reproduced (or do not apply)",
               "--results --profile --format --set --only", EVERY_SUITE,
               "writes: nothing\nstdout: the claims, and their count with --format table\n"
               "exit codes: 0 every claim reproduced or does not apply, 1 one is not reproduced or "
               "not run, 2 bad input"),
    "report": (_report, "write report.md and report.html: the claims, published numbers, "
               "figures, time and energy", "--results --profile --set --only", EVERY_SUITE,
               "writes: report.md, report.html, figures/, claims.csv and fidelity.csv in "
               f"RESULTS/PROFILE/\nstdout: where the report was written\n{WRITTEN_EXITS}"),
    "check": (_check, "compare the result tables with committed baselines; exit 1 unless values "
              "were compared and none regressed or went missing",
              "--results --profile --allow-new --baseline", "every suite and every baseline",
              "writes: check.csv in RESULTS/PROFILE/, every verdict\n"
              "stdout: the verdicts and the gate's summary\n"
              "exit codes: 0 the gate passes, 1 it fails (a value regressed or went missing, a "
              "suite has no baseline, nothing was compared), 2 bad input"),
    "update": (_update, "refresh baselines from the result tables, on purpose, showing what "
               "changes", "--results --profile --set --only --baseline",
               "every suite with results",
               "reads: RESULTS/PROFILE/; with --set seeds=[...] (no other --set: a baseline is of "
               "the profile's settings) or --only, the folder run so, for a baseline of part of "
               "the profile (the gate says what it lacks)\n"
               "writes: BASELINE/PROFILE/SUITE.csv and BASELINE/PROFILE/cost.csv\n"
               "stdout: each suite's changes from its old baseline and the files written\n"
               f"{WRITTEN_EXITS}"),
}
MAIN_EPILOG = """\
writes: each command its own (dlrepro COMMAND --help)
stdout: results; stderr: progress, warnings and errors
exit codes:
  0 success
  1 a run failed (run), a claim did not hold (claims) or the gate did not pass
    (check)
  2 bad input, refused before any work (one line naming the file and the key)
  130 interrupted by Ctrl-C, 143 by SIGTERM (finished runs are kept)
  141 stdout's reader stopped reading (| head)"""


def _paragraphs(text: str) -> str:
    """Each line of ``text`` filled to 80 columns, its continuation indented."""
    return "\n".join(textwrap.fill(line, 80, subsequent_indent="    ", break_long_words=False,
                                    break_on_hyphens=False) for line in text.splitlines())


def _parser() -> argparse.ArgumentParser:
    plain = argparse.RawDescriptionHelpFormatter  # keeps the epilogs' lines
    parser = _Parser(prog="dlrepro", formatter_class=plain, epilog=MAIN_EPILOG,
                     description="Reproduce the courses' deep-learning experiments from the "
                     "suites in suites/.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)
    for name, (run, summary, names, suites, epilog) in COMMANDS.items():
        within = sub
        if name == "update":  # the one action of `dlrepro baseline`, listed last
            baseline = sub.add_parser(
                "baseline", help="refresh the committed baselines (baseline update)",
                description="manage the committed baselines", formatter_class=plain,
                epilog="dlrepro baseline update --help says what update does.")
            within = baseline.add_subparsers(required=True, metavar="ACTION", parser_class=_Parser)
        command = within.add_parser(name, help=summary, description=summary,
                                    epilog=_paragraphs(epilog), formatter_class=plain)
        command.set_defaults(command=run)
        if suites:
            command.add_argument("suites", nargs="*", metavar="SUITE", help="a name from suites/ "
                                 f"or a path to a TOML file (default: {suites})")
        for flag in names.split():
            command.add_argument(flag, **FLAGS[flag])
        if name == "list":  # a filter here, where the others take one profile
            command.add_argument("--profile", choices=PROFILES, help="smoke, quick or full: that "
                                 "one only (default: every profile)")
    return parser
