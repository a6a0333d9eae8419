"""Tables as Markdown-style rows, so a row stays one line and a chunk can repeat its header.

Readers render every table they find with :func:`table_markdown`; the chunker asks
:class:`TableHeaders` which header a chunk starting inside a table needs.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

_ROW = r"\|[^\n]*\|"
_TABLE = re.compile(rf"^{_ROW}(?:\n{_ROW})*$", re.M)
_RULE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+$")


def _cell(value: object) -> str:
    """One cell on one line: inner line breaks become spaces, pipes are escaped."""
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def table_markdown(rows: Sequence[Sequence[object]]) -> str:
    """``| a | b |`` lines with a ``| --- |`` rule under the first (header) row; empty rows are dropped."""
    cleaned = [[_cell(value) for value in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in cleaned]
    lines.insert(1, "| " + " | ".join(["---"] * width) + " |")
    return "\n".join(lines)


def is_table_row(line: str) -> bool:
    """A line that :func:`table_markdown` wrote."""
    line = line.strip()
    return len(line) >= 2 and line.startswith("|") and line.endswith("|")


class TableHeaders:
    """Which header a chunk starting at an offset of ``text`` needs: the header and rule lines of
    the table whose rows it starts in, else ``""``. The tables are found in one pass over the text
    (a pass per chunk made chunking quadratic: 9 s for a line of 2 MB, minutes for 10 MB)."""

    def __init__(self, text: str) -> None:
        self._bodies: list[tuple[int, int, str]] = []  # (start, end of the rows under the header, header)
        for match in _TABLE.finditer(text):
            lines = match.group().split("\n")
            if len(lines) >= 3 and _RULE.match(lines[1]):
                start = match.start() + len(lines[0]) + len(lines[1]) + 2
                self._bodies.append((start, match.end(), f"{lines[0]}\n{lines[1]}"))
        self._starts = [start for start, _, _ in self._bodies]

    def at(self, offset: int) -> str:
        """The header for a chunk starting at ``offset``."""
        row = bisect.bisect_right(self._starts, offset) - 1
        if row >= 0 and offset < self._bodies[row][1]:
            return self._bodies[row][2]
        return ""
