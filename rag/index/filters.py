"""Metadata filters applied inside retrieval: publication date range, source files, tags."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from rag.errors import InputError
from rag.index.chunking import Chunk


def iso_date(value: str, what: str = "date") -> str:
    """``value`` checked as an ISO date (``2025-09-01``); anything else is an :class:`InputError`."""
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise InputError(f"{what} '{value}' is not a date like 2025-09-01") from None


@dataclass(frozen=True)
class SearchFilter:
    """Which chunks a search may return; an empty filter lets every chunk through.

    Dates are inclusive ISO bounds and leave out chunks without a date; ``sources`` (ingested file
    paths, as ``rag info --docs`` lists them) and ``tags`` each match when a chunk has any of them.
    """

    date_from: str = ""
    date_to: str = ""
    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        date_from: str | None = None,
        date_to: str | None = None,
        sources: Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
    ) -> SearchFilter:
        """A checked filter from user input: blank values are left out, dates must be ISO and in order."""
        start = iso_date(date_from, "date_from") if date_from and date_from.strip() else ""
        end = iso_date(date_to, "date_to") if date_to and date_to.strip() else ""
        if start and end and start > end:
            raise InputError(f"date_from {start} is after date_to {end}")
        return cls(start, end, _clean(sources), _clean(tags))

    def __bool__(self) -> bool:
        return bool(self.date_from or self.date_to or self.sources or self.tags)

    def matches(self, chunk: Chunk) -> bool:
        """Whether ``chunk`` passes."""
        if (self.date_from or self.date_to) and not chunk.date:
            return False
        if self.date_from and chunk.date < self.date_from:
            return False
        if self.date_to and chunk.date > self.date_to:
            return False
        if self.sources and chunk.source not in self.sources:
            return False
        return not self.tags or any(tag in self.tags for tag in chunk.tags)

    def to_dict(self) -> dict[str, object]:
        """The non-empty parts, for reports and JSON."""
        parts = {"date_from": self.date_from, "date_to": self.date_to, "sources": list(self.sources), "tags": list(self.tags)}
        return {key: value for key, value in parts.items() if value}


def _clean(values: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values or () if v and v.strip()))
