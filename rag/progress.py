"""Progress of long commands, fed by the library's ``progress(stage, done, total)`` callback.

On a terminal: rich bars. Without one (output sent to a log file, CI, a service), one plain
line every ``PLAIN_EVERY_S`` seconds (``RAG_PROGRESS_EVERY_S``) per stage with done/total, rate and time left, and a last
line when the stage ends, so a long job can be told from a hung one.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

ProgressCallback = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: "load", "ocr" (pages), "embed", "write" (ingest), "questions" (eval)."""

STAGE_LABELS = {
    "load": "读取文件 loading",
    "ocr": "识别文字 OCR pages",
    "embed": "向量化 embedding",
    "write": "写入索引 writing",
    "questions": "评测 questions",
}
PLAIN_EVERY_S = 10.0


def progress_bar(console: Console) -> Progress:
    """A bar with a label, done/total, elapsed and remaining time."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console)


class RichProgress:
    """Adapter from the library's ``progress(stage, done, total)`` callback to one bar per stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(STAGE_LABELS.get(stage, stage), total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


class PlainProgress:
    """Progress as plain log lines: at most one per stage every ``every_s`` seconds, plus its end."""

    def __init__(self, stream: IO[str], every_s: float = PLAIN_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.every_s = every_s
        self.clock = clock
        self._started: dict[str, float] = {}
        self._printed: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        started = self._started.setdefault(stage, now)
        finished = total > 0 and done >= total
        if not finished and now - self._printed.get(stage, started) < self.every_s:
            return
        self._printed[stage] = now
        self.stream.write(self.line(stage, done, total, now - started) + "\n")
        self.stream.flush()

    @staticmethod
    def line(stage: str, done: int, total: int, elapsed: float) -> str:
        """``embed 320/3286 (9.8/s, 30 s elapsed, about 5 min left)``."""
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{STAGE_LABELS.get(stage, stage)}: {done}/{total} ({rate:.1f}/s, {_duration(elapsed)} elapsed"
        if done >= total > 0:
            return text + ", done)"
        left = (total - done) / rate if rate > 0 else None
        return text + (f", about {_duration(left)} left)" if left is not None else ")")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@contextlib.contextmanager
def progress_reporter(console: Console) -> Iterator[ProgressCallback]:
    """Bars on a terminal, plain periodic lines otherwise."""
    if console.is_terminal:
        with progress_bar(console) as bar:
            yield RichProgress(bar)
    else:
        yield PlainProgress(console.file, every_s=float(os.environ.get("RAG_PROGRESS_EVERY_S") or PLAIN_EVERY_S))
