"""Rich progress bars for the command line, fed by the library's ``progress(stage, done, total)``."""

from __future__ import annotations

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

STAGE_LABELS = {
    "load": "读取文件 loading",
    "embed": "向量化 embedding",
    "write": "写入索引 writing",
    "questions": "评测 questions",
}


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
