"""What the user sees: results on stdout (``say``), so that a pipe gets them and nothing else;
progress, warnings and errors on stderr (``note``)."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task,
                           TextColumn, TimeElapsedColumn)
from rich.table import Column, Table
from rich.text import Text, TextType

if TYPE_CHECKING:
    from dlrepro.schema import Resources
    from dlrepro.suite import RunSpec


class _PipedConsole(Console):
    """A reader that leaves early (``| head``, ``2>&1 | head``) ends the command as one of
    csv/json does (``cli.main``: exit 141)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError  # rich itself would exit 1, which means a failed run or claim here


output = _PipedConsole()
diagnostics = _PipedConsole(stderr=True)
Part = TextType | tuple[str, str]  # text shown as written, or (text, style)


def say(*parts: Part) -> None:
    output.print(Text.assemble(*parts), soft_wrap=True, highlight=False)


def note(*parts: Part) -> None:
    diagnostics.print(Text.assemble(*parts), soft_wrap=True, highlight=False)


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def write_rows(columns: Sequence[str], rows: list[dict], form: OutputFormat, title: str = "",
               line: Callable[[dict], Part] | None = None) -> None:
    """``rows`` on stdout: for a person a table in a terminal, else ``line(row)`` a row (never
    squeezed to a pipe's 80 columns); for a script CSV or JSON, a missing number empty or null."""
    if form == OutputFormat.TABLE:  # a StrEnum: the plain string from argparse compares equal
        if not output.is_terminal:
            for row in rows:
                say(line(row))
            return
        table = Table(*columns, title=escape(title))
        for row in rows:
            cells = (row[column] for column in columns)
            table.add_row(*map(_as_text, cells))
        output.print(table)
        return
    plain = [{column: _plain(row[column]) for column in columns} for row in rows]
    if form == OutputFormat.JSON:
        print(json.dumps(plain, indent=1, ensure_ascii=False))
        return
    writer = csv.DictWriter(sys.stdout, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(plain)


def _as_text(cell: object) -> Text:
    return cell if isinstance(cell, Text) else Text(str(cell))


def _plain(value: object) -> object:
    """A Python value json and csv write as they should: numpy scalars unboxed, NaN as None."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value


class RunProgress:
    """Progress over runs with an ETA (docs/eta.md): a bar that counts it down in a terminal,
    else a line a finished run, so that a log is never silent."""

    def __init__(self, specs: list[RunSpec], expected: dict[str, float | None]):
        self.left, self.expected = {spec.run_id: spec for spec in specs}, expected
        self.total, self.done = len(specs), 0
        self.spent = 0.0
        # by suite, of its finished runs that had an expected time: that time, and what they took
        self.foreseen: dict[str, float] = {}
        self.taken: dict[str, float] = {}
        self.at_once: dict[Resources, int] | None = None  # on Ray: runs each shape has at once
        self.started, self.bar = time.monotonic(), None
        if diagnostics.is_terminal:  # a long run label gives way, not the numbers
            label = Column(ratio=2, no_wrap=True, overflow="ellipsis")
            self.bar = Progress(TextColumn("{task.description}", table_column=label),
                                BarColumn(bar_width=None, table_column=Column(ratio=1)),
                                MofNCompleteColumn(), TimeElapsedColumn(), _Countdown(),
                                console=diagnostics, expand=True)
            self.task = self.bar.add_task("starting", total=self.total, deadline=None)

    def __enter__(self) -> RunProgress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.update(self.task, description="done")
            self.bar.stop()

    def running(self, label: str) -> None:
        if self.bar:
            self.bar.update(self.task, description=escape(label))

    def finished(self, label: str, record: dict) -> None:
        self.done += 1
        spec = self.left.pop(record["run_id"], None)
        foreseen, took = self.expected.get(record["run_id"]), record.get("wall_time_s")
        took = took if isinstance(took, float) and took == took else None
        self.spent += took or 0.0
        if spec and foreseen is not None and took is not None:
            self.foreseen[spec.suite] = self.foreseen.get(spec.suite, 0.0) + foreseen
            self.taken[spec.suite] = self.taken.get(spec.suite, 0.0) + took
        elapsed = time.monotonic() - self.started
        eta = self.eta(elapsed)
        if self.bar:
            self.bar.update(self.task, advance=1, deadline=time.monotonic() + eta)
        else:
            took_text = f" in {took:.1f} s" if took is not None else ""
            note(f"[{self.done}/{self.total}] {label}: {record['status']}{took_text}; elapsed "
                 f"{duration(elapsed)}, ETA {duration(eta)}")

    def eta(self, elapsed: float) -> float:
        """Seconds left: a run counts at what was expected of it times its suite's pace so far
        (a suite's first runs may be its slowest: the handout CNN's seeds), or, for a suite not
        begun, the pace of the suites done whole; else at the mean finished run (its mean share
        of ``elapsed`` if none took a time)."""
        from dlrepro.planning import eta

        def pace(suites) -> float:
            foreseen = sum(self.foreseen[suite] for suite in suites)
            return sum(self.taken[suite] for suite in suites) / foreseen if foreseen else 1.0

        left = list(self.left.values())
        pending = {spec.suite for spec in left}
        done = pace([suite for suite in self.foreseen if suite not in pending])
        paces = {**dict.fromkeys(pending, done), **{name: pace([name]) for name in self.foreseen}}
        unknown = (self.spent or elapsed) / self.done if self.done else None
        return eta(left, self.expected, self.at_once, pace=paces, unknown=unknown) or 0.0


class _Countdown(ProgressColumn):
    """The ETA at the last finished run, counting down ("-" before the first and once run out)."""

    def render(self, task: Task) -> Text:
        left = (task.fields["deadline"] or 0.0) - time.monotonic()
        return Text(f"ETA {duration(left) if left > 0 or task.finished else '-'}",
                    style="progress.remaining")


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
