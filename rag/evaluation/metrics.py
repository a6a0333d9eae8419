"""Pure scoring functions for the evaluation: text matching, ranks, rates and percentiles.

Every text comparison goes through :func:`normalise`, so ``总规模 30亿元`` matches ``总规模30亿元``
and full-width ``３０`` matches ``30``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from difflib import SequenceMatcher

from rag.qa.answer_form import without_markers
from rag.text_script import to_simplified

PARTIAL_QUOTE_SHARE = 0.6
"""A passage holding this share of a quote in one piece counts (quotes can straddle chunks)."""

RATE_METRICS = (
    "hit@1",
    "hit@5",
    "mrr@10",
    "answer_accuracy",
    "answer_span_recall",
    "refusal_precision",
    "refusal_recall",
    "citation_precision",
    "citation_recall",
)
"""The summary metrics that are shares between 0 and 1."""
LATENCY_STEPS = ("retrieve_ms", "first_token_ms", "total_ms")
"""The timed steps; summaries hold ``<step>_p50`` and ``<step>_p95`` in milliseconds."""

_WHITESPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC (full-width to half-width), Simplified script, lower case, all whitespace removed."""
    return _WHITESPACE.sub("", to_simplified(unicodedata.normalize("NFKC", text))).lower()


def contains_quote(passage: str, quote: str, min_share: float = PARTIAL_QUOTE_SHARE) -> bool:
    """True when ``passage`` holds ``quote``, or one unbroken run of at least ``min_share`` of it."""
    body, wanted = normalise(passage), normalise(quote)
    if not wanted:
        return False
    return wanted in body or _longest_run(wanted, body) >= math.ceil(min_share * len(wanted))


def _longest_run(wanted: str, body: str) -> int:
    """Length of the longest piece of ``wanted`` that ``body`` holds unbroken."""
    if wanted in body:
        return len(wanted)
    return SequenceMatcher(None, wanted, body, autojunk=False).find_longest_match(0, len(wanted), 0, len(body)).size


def contains_any(text: str, alternatives: Sequence[str]) -> bool:
    """True when ``text`` holds at least one of ``alternatives`` (normalised)."""
    body = normalise(text)
    wanted = (normalise(alt) for alt in alternatives)
    return any(alt and alt in body for alt in wanted)


def all_parts_found(answer: str, parts: Sequence[Sequence[str]]) -> bool:
    """True when every required part has one accepted alternative in ``answer``.

    Citation markers are not answer text: the citation check puts one after every sentence,
    inside a gold span of several sentences, so they are removed first.
    """
    answer = without_markers(answer)
    return bool(parts) and all(contains_any(answer, part) for part in parts)


def answer_span_recall(answer: str, parts: Sequence[Sequence[str]]) -> float:
    """How much of each required part ``answer`` holds in one unbroken piece; mean over parts.

    Each part scores the longest run of its best alternative found in ``answer``, as a share of
    that alternative's length. A softer companion to :func:`all_parts_found` for answers that
    trim or rephrase a long span: ``近5.6万平方米`` answered as ``5.6万平方米`` scores 7/8.
    """
    body = normalise(without_markers(answer))
    shares = []
    for part in parts:
        wanted = [w for w in (normalise(alt) for alt in part) if w]
        shares.append(max((_longest_run(w, body) / len(w) for w in wanted), default=0.0))
    return sum(shares) / len(shares) if shares else 0.0


def first_relevant_rank(relevant: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant result, or None when none is relevant."""
    return next((rank for rank, ok in enumerate(relevant, start=1) if ok), None)


def hit_at(rank: int | None, k: int) -> float:
    """1.0 when the first relevant result is within the top ``k``, else 0.0."""
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None, k: int) -> float:
    """1/rank when the first relevant result is within the top ``k``, else 0.0 (MRR@k)."""
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def ratio(part: float, whole: float) -> float | None:
    """``part / whole``, or None when ``whole`` is zero (the metric does not apply)."""
    return part / whole if whole else None


def mean(values: Sequence[float]) -> float | None:
    """The arithmetic mean, or None for no values."""
    return ratio(sum(values), len(values))


def refusal_precision_recall(should_refuse: Sequence[bool], refused: Sequence[bool]) -> tuple[float | None, float | None]:
    """Precision (refusals that were right) and recall (unanswerable questions refused).

    Each is None when undefined: no refusals at all, or no unanswerable questions.
    """
    right = sum(1 for s, r in zip(should_refuse, refused, strict=True) if s and r)
    return ratio(right, sum(refused)), ratio(right, sum(should_refuse))


def mcnemar_p(worse: int, better: int) -> float:
    """One-sided exact McNemar p-value: the chance that at least ``worse`` of ``worse + better``
    changed questions went the wrong way if each change were a fair coin toss (a binomial tail).
    """
    changed = worse + better
    return sum(math.comb(changed, k) for k in range(worse, changed + 1)) / 2**changed


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation, as numpy's default; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
