"""Assembling a multi-part answer: one passage list for all parts, and each part's markers renumbered.

Each part is answered from its own passages, numbered ``[1]``, ``[2]``… as the model reads them.
The client sees one list, the union of the parts' passages in part order (a passage two parts
found is listed once and names both), so a part's ``[2]`` becomes that passage's number in the
union. Raw tokens are renumbered as they stream: a marker cut between two tokens is held back
until it closes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from rag.qa.citations import Citation
from rag.qa.retriever import SearchHit

_MARKER = re.compile(r"([\[【])(\s*\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\s*\??)([\]】])")
_OPEN_MARKER = re.compile(r"[\[【][^\]】]{0,8}$")


_LOOSE_END = re.compile(r"[，,、；;：:。]?\s*((?:[\[【]\d{1,2}\??[\]】])*)\s*[，,、；;：:]?\s*$")


def tidy_ending(text: str) -> str:
    """A part's last sentence closed as the others: ``…亿元，[4]`` and ``…亿元。[1]`` become
    ``…亿元[4]。`` and ``…亿元[1]。``, so that the parts read as one answer."""
    return _LOOSE_END.sub(lambda m: f"{m.group(1)}。", text.rstrip(), count=1) if text.strip() else text


def not_found(label: str) -> str:
    """The clause that stands for a part the passages do not support."""
    return f"资料中没有找到{label.rstrip('？?。')}的相关信息。"


def union_passages(part_hits: Sequence[Sequence[SearchHit]], questions: Sequence[str]) -> tuple[list[SearchHit], list[list[int]]]:
    """The passages of all parts, each once and naming the sub-questions it serves, and per part
    the 1-based number of each of its passages in that list."""
    union: list[SearchHit] = []
    where: dict[str, int] = {}
    numbers: list[list[int]] = []
    for hits, question in zip(part_hits, questions, strict=True):
        mine = []
        for hit in hits:
            key = hit.chunk.chunk_id
            if key not in where:
                where[key] = len(union)
                union.append(replace(hit, parts=()))
            index = where[key]
            union[index] = replace(union[index], parts=(*union[index].parts, question))
            mine.append(index + 1)
        numbers.append(mine)
    return union, numbers


def renumber(text: str, numbers: Sequence[int]) -> str:
    """``text`` with each marker's passage numbers (1-based into ``numbers``) replaced by ``numbers``' values."""

    def swap(match: re.Match[str]) -> str:
        body = re.sub(r"\d{1,2}", lambda m: _mapped(int(m.group()), numbers), match.group(2))
        return f"{match.group(1)}{body}{match.group(3)}"

    return _MARKER.sub(swap, text)


def _mapped(n: int, numbers: Sequence[int]) -> str:
    return str(numbers[n - 1]) if 1 <= n <= len(numbers) else str(n)


def renumber_citations(citations: Sequence[Citation], numbers: Sequence[int]) -> list[Citation]:
    """The citations of one part, pointing at the union's numbers."""
    return [replace(c, n=numbers[c.n - 1]) for c in citations if 1 <= c.n <= len(numbers)]


class TokenRenumberer:
    """Renumbers markers in a stream of raw tokens, holding back a marker until it closes."""

    def __init__(self, numbers: Sequence[int]) -> None:
        self._numbers = numbers
        self._held = ""

    def feed(self, piece: str) -> str:
        """What can be sent now that ``piece`` arrived."""
        text = self._held + piece
        open_marker = _OPEN_MARKER.search(text)
        cut = open_marker.start() if open_marker else len(text)
        self._held = text[cut:]
        return renumber(text[:cut], self._numbers)

    def flush(self) -> str:
        """The rest, at the end of an attempt."""
        text, self._held = self._held, ""
        return renumber(text, self._numbers)
