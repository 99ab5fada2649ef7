"""Progress of long work (a rebuild, a demo seed, a benchmark run) for the person waiting for it.

On a terminal: a `rich` progress bar with the count, the rate and the time left. Otherwise (logs, CI,
pipes): one plain line every `interval` seconds and a last line when done, so output stays readable.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO


class ProgressReport:
    """Reports how far a job is: `start(total)`, `advance(n)` as work finishes, `finish()` (or use `with`)."""

    def __init__(
        self,
        description: str,
        *,
        unit: str = "items",
        stream: TextIO | None = None,
        interval: float = 10.0,
        terminal: bool | None = None,
    ) -> None:
        self.description = description
        self.unit = unit
        self._stream = stream or sys.stderr
        self._interval = interval
        self._terminal = self._stream.isatty() if terminal is None else terminal
        self._total: int | None = None
        self.done = 0
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int | None) -> None:
        """The work begins: `total` units (None when unknown)."""
        self._total = total
        self._started = self._last_line = time.monotonic()
        if self._terminal:
            self._bar = _rich_bar(self._stream, self.unit)
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=total)

    def advance(self, done: int) -> None:
        """`done` more units are finished."""
        self.done += done
        if self._bar is not None:
            self._bar.update(self._task, advance=done)
            return
        now = time.monotonic()
        if now - self._last_line >= self._interval:
            self._last_line = now
            self._line()

    def finish(self) -> None:
        """The work is over: stop the bar, or print the last line."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self._line(final=True)

    def __enter__(self) -> ProgressReport:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.finish()

    def rate(self) -> float:
        """Units per second so far."""
        elapsed = time.monotonic() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def _line(self, *, final: bool = False) -> None:
        rate = self.rate()
        elapsed = time.monotonic() - self._started
        if self._total:
            share = f"{self.done:,}/{self._total:,} {self.unit} ({100 * self.done / self._total:.0f}%)"
        else:
            share = f"{self.done:,} {self.unit}"
        if final:
            tail = f"done in {_duration(elapsed)}"
        elif self._total and rate > 0:
            tail = f"about {_duration(max(0.0, (self._total - self.done) / rate))} left"
        else:
            tail = f"{_duration(elapsed)} so far"
        print(f"{self.description}: {share}, {rate:,.0f} {self.unit}/s, {tail}", file=self._stream, flush=True)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _rich_bar(stream: TextIO, unit: str) -> Any:
    """A rich progress bar writing to `stream`, or None when rich is not installed."""
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text
    except ImportError:
        return None

    class RateColumn(ProgressColumn):
        """Units per second."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {unit}/s" if speed else f"– {unit}/s")

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
        console=Console(file=stream), transient=False,
    )
