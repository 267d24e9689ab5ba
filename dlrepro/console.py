"""What the user sees: results on stdout (``output``), so that a pipe gets them and nothing else;
progress, warnings and errors on stderr (``diagnostics``). While work goes on, a progress bar in a
terminal, and outside one (CI, nohup, ``| tee``) a line per finished run with done/total and an
ETA, so that a log is never silent. Scripts get tables as CSV or JSON (``write_rows``)."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task,
                           TextColumn, TimeElapsedColumn)
from rich.table import Column
from rich.text import Text


class _ResultsConsole(Console):
    """stdout: a reader that leaves early (``| head``) ends the command as one of csv/json does."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError  # rich itself would exit 1, which means a failed run or claim here


output = _ResultsConsole()
diagnostics = Console(stderr=True)


class OutputFormat(StrEnum):
    """How a command prints its table: for a person (rich in a terminal, a line a row in a pipe),
    or for a script."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def write_rows(columns: Sequence[str], rows: list[dict], form: OutputFormat) -> None:
    """``rows`` as CSV (a header, then a line each) or a JSON list of objects on stdout: the given
    columns, numbers as numbers, a missing number (NaN) empty in CSV and null in JSON."""
    plain = [{column: _plain(row[column]) for column in columns} for row in rows]
    if form == OutputFormat.JSON:  # a StrEnum: the plain string from argparse compares equal
        json.dump(plain, sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    writer = csv.DictWriter(sys.stdout, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(plain)


def _plain(value: object) -> object:
    """A Python value json and csv write as they should: numpy scalars unboxed, NaN as None."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value


class RunProgress:
    """Progress over runs: ``running`` names what has started, ``finished`` counts a record.

    ``expected`` holds each run's likely wall time (an earlier run of it, or its suite's mean run on
    a reference machine), or None. The ETA is the expected time of the runs left, scaled by this
    machine's pace (the finished runs' times over what was expected of them; the mean finished run
    where nothing was expected), then by how elapsed time compares with the runs' own times so far
    (two workers: about half): a long run left for last, or a first run much slower than the rest,
    no longer makes it ten times too long or too short. In a terminal the bar counts it down."""

    def __init__(self, expected: dict[str, float | None]):
        self.total, self.done, self.started = len(expected), 0, time.monotonic()
        self.left, self.spent, self.first_start = dict(expected), 0.0, None
        # the finished runs that had an expected time: expected, taken
        self.foreseen = self.taken = 0.0
        # a long run label gives way, not the numbers
        label = Column(ratio=2, no_wrap=True, overflow="ellipsis")
        self.bar = None
        if diagnostics.is_terminal:
            self.bar = Progress(TextColumn("{task.description}", table_column=label),
                                BarColumn(bar_width=None, table_column=Column(ratio=1)),
                                MofNCompleteColumn(), TimeElapsedColumn(), _Countdown(),
                                console=diagnostics, expand=True)

    def __enter__(self) -> RunProgress:
        if self.bar:
            self.bar.__enter__()
            self.task = self.bar.add_task("starting", total=self.total, deadline=None)
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.update(self.task, description="done")
            self.bar.__exit__(*exc)

    def running(self, label: str) -> None:
        if self.bar:
            self.bar.update(self.task, description=escape(label))

    def finished(self, label: str, record: dict) -> None:
        self.done += 1
        foreseen = self.left.pop(record["run_id"], None)
        took = record.get("wall_time_s")
        took = took if isinstance(took, float) and took == took else None
        self.spent += took or 0.0
        if foreseen is not None and took is not None:
            self.foreseen, self.taken = self.foreseen + foreseen, self.taken + took
        started = _timestamp(record.get("started_at"))
        self.first_start = min(filter(None, (self.first_start, started)), default=None)
        elapsed = time.monotonic() - self.started
        # since the first run started, not Ray's or torch's start-up
        eta = self.eta(time.time() - self.first_start if self.first_start else elapsed)
        if self.bar:
            self.bar.update(self.task, advance=1, deadline=time.monotonic() + eta)
            return
        took_text = f" in {took:.1f} s" if took is not None else ""
        diagnostics.print(f"[{self.done}/{self.total}] {escape(label)}: {record['status']}"
                          f"{took_text}; elapsed {duration(elapsed)}, ETA {duration(eta)}",
                          soft_wrap=True, highlight=False)

    def eta(self, elapsed: float) -> float:
        """Seconds left, from the expected times of the runs left (see the class); ``elapsed``
        since the first run started."""
        if not self.spent:
            return elapsed / self.done * len(self.left) if self.done else 0.0
        mean = self.spent / self.done
        pace = self.taken / self.foreseen if self.foreseen else 1.0
        known = [t for t in self.left.values() if t is not None]
        left = mean * (len(self.left) - len(known)) + pace * sum(known)
        return left * elapsed / self.spent

    def note(self, text: str) -> None:
        (self.bar.console if self.bar else diagnostics).print(text, soft_wrap=True, highlight=False)


class _Countdown(ProgressColumn):
    """The bar's ETA: RunProgress's estimate at the last finished run, counting down until the next
    ("-" before the first, and once it has run out: not known until the next run finishes)."""

    def render(self, task: Task) -> Text:
        left = (task.fields.get("deadline") or 0.0) - time.monotonic()
        left = duration(left) if left > 0 or task.finished else "-"
        return Text(f"ETA {left}", style="progress.remaining")


def _timestamp(iso: object) -> float | None:
    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return None


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
