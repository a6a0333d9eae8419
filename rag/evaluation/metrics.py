"""Pure scoring functions for the evaluation: text matching, ranks, rates, tests and percentiles.

Every text comparison goes through :func:`normalise`, so ``总规模 30亿元`` matches ``总规模30亿元``
and full-width ``３０`` matches ``30``. Numbers match as whole tokens (:func:`contains_token`):
``3年`` is not found in ``2023年``, so an answer cannot score by listing many figures.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
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
    "list_part_recall",
    "list_precision",
    "refusal_precision",
    "refusal_recall",
    "citation_precision",
    "citation_recall",
)
"""The summary metrics that are shares between 0 and 1."""
COUNT_METRICS = ("refused_answerable",)
"""The summary metrics that count questions; fewer is better."""
LATENCY_STEPS = ("retrieve_ms", "first_token_ms", "total_ms")
"""The timed steps; summaries hold ``<step>_p50`` and ``<step>_p95`` in milliseconds."""

_WHITESPACE = re.compile(r"\s+")
_DIGITS = frozenset("0123456789")
_ITEM_SEPARATORS = re.compile(r"[、，,；;和及与]|(?<![\d.])\d{1,2}[.、)）](?!\d)")  # and inline "2. " numbering
_BULLET = re.compile(r"^\s*[-*•·]\s*")
_ITEM_EDGES = " \t。．.!！?？:：\"'“”‘’《》「」"


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


def _digit_before(body: str, start: int) -> bool:
    """``body[:start]`` ends in a digit, or in a digit and a decimal point."""
    before = body[max(start - 2, 0) : start]
    return before[-1:] in _DIGITS or (before[-1:] == "." and before[:1] in _DIGITS)


def _digit_after(body: str, end: int) -> bool:
    """``body[end:]`` starts with a digit, or with a decimal point and a digit."""
    after = body[end : end + 2]
    return after[:1] in _DIGITS or (after[:1] == "." and after[1:] in _DIGITS)


def contains_token(body: str, wanted: str) -> bool:
    """True when normalised ``body`` holds normalised ``wanted``, numbers as whole tokens.

    A ``wanted`` that starts (ends) with a digit must not be preceded (followed) there by a digit,
    or by a decimal point and a digit: ``3年`` is not in ``2023年``, ``5`` not in ``5.6``, while
    ``200亿`` is in ``200亿元``.
    """
    start = body.find(wanted) if wanted else -1
    while start >= 0:
        end = start + len(wanted)
        if not (wanted[0] in _DIGITS and _digit_before(body, start)) and not (wanted[-1] in _DIGITS and _digit_after(body, end)):
            return True
        start = body.find(wanted, start + 1)
    return False


def contains_any(text: str, alternatives: Sequence[str]) -> bool:
    """True when ``text`` holds at least one of ``alternatives`` (normalised; numbers as whole tokens)."""
    body = normalise(text)
    return any(contains_token(body, normalise(alt)) for alt in alternatives)


def names_any(answer: str, items: Sequence[str]) -> bool:
    """True when ``answer`` (citation markers removed) holds one of ``items`` (see :func:`contains_any`)."""
    return contains_any(without_markers(answer), items)


def parts_found(answer: str, parts: Sequence[Sequence[str]]) -> int:
    """How many required parts have one accepted alternative in ``answer``.

    Citation markers are not answer text: the citation check puts one after every sentence,
    inside a gold span of several sentences, so they are removed first.
    """
    answer = without_markers(answer)
    return sum(contains_any(answer, part) for part in parts)


def all_parts_found(answer: str, parts: Sequence[Sequence[str]]) -> bool:
    """True when every required part has one accepted alternative in ``answer`` (see :func:`parts_found`)."""
    return bool(parts) and parts_found(answer, parts) == len(parts)


def part_recall(answer: str, parts: Sequence[Sequence[str]]) -> float | None:
    """The share of required parts ``answer`` holds; None for no parts."""
    return ratio(parts_found(answer, parts), len(parts))


def list_items(answer: str, keep: Sequence[str] = ()) -> list[str]:
    """The items ``answer`` lists, normalised: its lines (bullets and citation markers removed), each
    split on ``、，,；;``, ``和及与`` and numbering (``1.`` ``2、``), pieces trimmed of punctuation and
    empty ones dropped. A string of ``keep`` (an accepted answer such as ``科创与产业投资基金``) is
    never cut.

    A sentence is cut too (``移动端和PC端处理器`` gives two items): precision over items is a
    coarse check on padded lists, shown, not gated.
    """
    guarded = sorted({k for k in map(normalise, keep) if _ITEM_SEPARATORS.search(k)}, key=len, reverse=True)
    items = []
    for line in without_markers(answer).splitlines():
        text = normalise(_BULLET.sub("", line))
        for i, kept in enumerate(guarded):
            text = text.replace(kept, f"\x00{i}\x00")
        for piece in _ITEM_SEPARATORS.split(text):
            for i, kept in enumerate(guarded):
                piece = piece.replace(f"\x00{i}\x00", kept)
            item = piece.strip(_ITEM_EDGES)
            if item:
                items.append(item)
    return items


def list_precision(answer: str, parts: Sequence[Sequence[str]]) -> float | None:
    """The share of the items ``answer`` lists (:func:`list_items`) that hold an accepted alternative of
    some required part; None when it lists nothing. Extra wrong items lower it, extra words too."""
    items = list_items(answer, keep=[alt for part in parts for alt in part])
    return ratio(sum(any(contains_any(item, part) for part in parts) for item in items), len(items))


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


def holm_levels(p_values: Mapping[str, float], alpha: float, weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """The level the (weighted) Holm step-down tests each p-value at.

    Hypotheses are taken in order of ``p / weight``; each is tested at ``alpha * weight / (sum of
    the weights not yet taken)``. Equal weights give Holm's ``alpha / (m - i)`` for the i-th
    smallest p (from 0); unequal ones spend more of ``alpha`` on the metrics that matter most,
    and the family-wise error stays at ``alpha`` either way (Holm 1979).
    """
    weight = {name: (weights or {}).get(name, 1.0) for name in p_values}
    ordered = sorted(p_values, key=lambda name: p_values[name] / weight[name])  # ties keep their order
    left = sum(weight.values())
    levels = {}
    for name in ordered:
        levels[name] = alpha * weight[name] / left
        left -= weight[name]
    return levels


def holm_rejected(p_values: Mapping[str, float], alpha: float, weights: Mapping[str, float] | None = None) -> set[str]:
    """The hypotheses the (weighted) Holm step-down rejects at family-wise ``alpha``: in order of
    :func:`holm_levels`, until one is not below its level."""
    rejected: set[str] = set()
    for name, level in holm_levels(p_values, alpha, weights).items():
        if p_values[name] >= level:
            break
        rejected.add(name)
    return rejected


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation, as numpy's default; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
