"""Tables as Markdown-style rows, so a row stays one line and a chunk can repeat its header.

Readers render every table they find with :func:`table_markdown`; the chunker asks
:func:`header_for` which header a chunk starting inside a table needs.
"""

from __future__ import annotations

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


def header_for(text: str, offset: int) -> str:
    """The header and rule lines of the table that ``offset`` falls in after them, else ``""``."""
    for match in _TABLE.finditer(text):
        if match.start() > offset:
            break
        lines = match.group().split("\n")
        if len(lines) < 3 or not _RULE.match(lines[1]):
            continue
        body_start = match.start() + len(lines[0]) + len(lines[1]) + 2
        if body_start <= offset < match.end():
            return f"{lines[0]}\n{lines[1]}"
    return ""
