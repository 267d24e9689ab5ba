"""What the user sees while work goes on: a progress bar in a terminal, and outside one (CI, nohup,
``| tee``) a line per finished run with done/total and an ETA, so that a log is never silent."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


class RunProgress:
    """Progress over ``total`` runs: ``running`` names what has started, ``finished`` counts a record."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.monotonic()
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=console) if console.is_terminal else None

    def __enter__(self) -> RunProgress:
        if self.bar:
            self.bar.__enter__()
            self.task = self.bar.add_task("starting", total=self.total)
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
        if self.bar:
            self.bar.advance(self.task)
            return
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        took = record.get("wall_time_s")
        took = f" in {took:.1f} s" if isinstance(took, float) and took == took else ""
        console.print(f"[{self.done}/{self.total}] {escape(label)}: {record['status']}{took}; "
                      f"elapsed {_duration(elapsed)}, ETA {_duration(eta)}", soft_wrap=True, highlight=False)

    def note(self, text: str) -> None:
        (self.bar.console if self.bar else console).print(text, soft_wrap=True, highlight=False)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
