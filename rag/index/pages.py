"""Page numbers carried through text cleaning as one private-use character per page.

A reader puts :func:`page_marker` in front of each page's text; cleaning (article splitting,
reflow) moves text around but keeps the markers; :func:`take_pages` removes them and returns
where each page starts in the cleaned text.
"""

from __future__ import annotations

import re

_BASE = 0xF0000  # Supplementary Private Use Area-A: never in real text
PAGE_MARK = re.compile("[\U000f0000-\U000ffffd]")


def page_marker(page: int) -> str:
    """The marker for a 1-based ``page``."""
    return chr(_BASE + page)


def strip_pages(text: str) -> str:
    """``text`` without page markers."""
    return PAGE_MARK.sub("", text)


def last_page(text: str, page: int | None) -> int | None:
    """The page in effect after ``text``, given the page in effect before it."""
    marks = PAGE_MARK.findall(text)
    return ord(marks[-1]) - _BASE if marks else page


def take_pages(text: str, page: int | None) -> tuple[str, tuple[tuple[int, int], ...]]:
    """``text`` without markers, and ``(offset, page)`` for every page start in it.

    ``page`` is the page in effect where ``text`` begins (None for files without pages); it
    applies from offset 0 unless a marker stands there.
    """
    starts: dict[int, int] = {0: page} if page is not None else {}
    parts: list[str] = []
    length = 0
    cursor = 0
    for match in PAGE_MARK.finditer(text):
        parts.append(text[cursor : match.start()])
        length += match.start() - cursor
        cursor = match.end()
        starts[length] = ord(match.group()) - _BASE
    parts.append(text[cursor:])
    return "".join(parts), tuple(sorted(starts.items()))
