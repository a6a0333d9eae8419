"""A whole document rebuilt from its stored chunks, with where each chunk sits in it.

Chunks overlap (``chunk_overlap`` characters repeat at the start of the next chunk), so
consecutive chunks are merged at the longest suffix/prefix match; chunks that do not overlap
(a paragraph break) are joined with a newline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.index.chunking import Chunk

MIN_OVERLAP_CHARS = 4  # shorter matches (a lone "。") are coincidences, not the chunker's overlap


@dataclass(frozen=True)
class DocumentText:
    """The text of a document and each chunk's ``(start, end)`` in it, by ``chunk_id``."""

    text: str
    spans: dict[str, tuple[int, int]]


def _overlap(text: str, following: str) -> int:
    """The length of the longest end of ``text`` that ``following`` starts with (0 below the minimum)."""
    for size in range(min(len(text), len(following)), MIN_OVERLAP_CHARS - 1, -1):
        if text.endswith(following[:size]):
            return size
    return 0


def reassemble(chunks: Sequence[Chunk]) -> DocumentText:
    """Merge ``chunks`` (in reading order) into one text, recording each chunk's span."""
    text = ""
    spans: dict[str, tuple[int, int]] = {}
    for chunk in chunks:
        shared = _overlap(text, chunk.text)
        if text and not shared:
            text += "\n"
        start = len(text) - shared
        text += chunk.text[shared:]
        spans[chunk.chunk_id] = (start, start + len(chunk.text))
    return DocumentText(text, spans)
