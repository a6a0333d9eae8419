"""Comparing an evaluation with a stored baseline report: the gate, categories, flipped questions.

The accepted figures are the baseline's own summary when both runs scored the same questions.
When they did not (``--limit``, questions added or dropped), both sides are summarised again
over the questions they share, from the per-question rows every ``report.json`` holds, so a
30-question run is never judged against 105-question figures.

The gate (:data:`GATES`) judges rate metrics by the questions that flipped, not by how far the
figure moved: on 19 unanswerable questions one flip moves refusal recall by 0.053, and greedy
decoding still flips a question now and then between CPUs. Latency is gated only on request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.evaluation.calibration import relative_latency
from rag.evaluation.metrics import LATENCY_STEPS, RATE_METRICS, mcnemar_p
from rag.evaluation.scoring import OUTCOMES, RETRIEVAL_K, QuestionRow, is_correct, summarise, summarise_by_category

CATEGORY_METRICS = ("hit@1", "answer_accuracy", "refusal_recall", "citation_precision")
"""The metrics shown per category next to the baseline (shown, not gated)."""
EPSILON = 1e-9  # float noise: smaller moves are no change


@dataclass(frozen=True)
class FlipTest:
    """The gate of a rate metric: it regressed when it got worse and its flips are unlikely to be chance.

    A flip is a question whose outcome for the metric (:data:`rag.evaluation.scoring.OUTCOMES`)
    went down (broken) or up (fixed). With nothing really changed each flip is a coin toss, so
    McNemar's exact test (one-sided) gives the chance of at least that many broken ones.
    """

    alpha: float = 0.05
    min_net_broken: int = 2  # whatever alpha says: one question never decides, however small its category

    def regressed(self, worse: bool, broken: int, fixed: int) -> bool:
        return worse and broken - fixed >= self.min_net_broken and mcnemar_p(broken, fixed) < self.alpha

    def describe(self) -> str:
        return (
            f"a rate metric regresses when it got worse, at least {self.min_net_broken} more questions broke than were "
            f"fixed, and the one-sided exact McNemar test on those flips gives p < {self.alpha}"
        )


@dataclass(frozen=True)
class Tolerance:
    """The gate of a p50 latency (with ``--gate-latency`` only): how much slower it may get."""

    absolute: float  # milliseconds
    relative: float

    def allowed(self, baseline: float) -> float:
        return max(self.absolute, self.relative * abs(baseline))

    def describe(self) -> str:
        return f"a p50 latency regresses when it grew by more than {self.relative:.0%} and more than {self.absolute:.0f} ms"


RATE_GATE = FlipTest()
# only on the baseline's own machine; +50%, and never less than 20 ms, so timer noise on fast steps does not fail a run
LATENCY_GATE = Tolerance(absolute=20.0, relative=0.5)
GATES: dict[str, FlipTest | Tolerance] = {
    **dict.fromkeys(RATE_METRICS, RATE_GATE),
    **{f"{step}_p50": LATENCY_GATE for step in LATENCY_STEPS},
}
"""The one place that says how each overall metric gates ``--baseline``.

Rates: a regression when the metric got worse, at least 2 more questions broke than were fixed,
and the one-sided exact McNemar test on the flips gives p < 0.05 (so 5 broken, none fixed, is the
smallest; improvements never fail). p50 latencies: only with ``--gate-latency``, on the baseline's
machine: a regression when more than 50% and more than 20 ms slower. Reports say which applied.
"""


def gate_rule(gate_latency: bool) -> str:
    """The rule that applied, in words, for the report."""
    latency = LATENCY_GATE.describe() + " (--gate-latency: same machine)" if gate_latency else "latency is reported, not gated"
    return f"{RATE_GATE.describe()}; {latency}."


# --- deltas --------------------------------------------------------------------------------

Pairs = Sequence[tuple[QuestionRow, QuestionRow]]  # (baseline, current) rows of the same question


def moved(metric: str, before: QuestionRow, after: QuestionRow) -> int:
    """+1 when the question's outcome for ``metric`` went up, -1 when it went down, else 0."""
    was, now = OUTCOMES[metric](before), OUTCOMES[metric](after)
    if was is None or now is None or abs(now - was) <= EPSILON:
        return 0
    return 1 if now > was else -1


@dataclass(frozen=True)
class Flips:
    """The questions whose outcome for one metric went down (broken) or up (fixed)."""

    broken: tuple[str, ...]
    fixed: tuple[str, ...]

    @classmethod
    def of(cls, metric: str, pairs: Pairs) -> Flips:
        moves = [(moved(metric, before, after), after.qid) for before, after in pairs]
        return cls(tuple(q for m, q in moves if m < 0), tuple(q for m, q in moves if m > 0))

    @property
    def p_value(self) -> float:
        return mcnemar_p(len(self.broken), len(self.fixed))


@dataclass(frozen=True)
class RateDelta:
    """A rate metric in the baseline and in this run, with its flips (None: no per-question rows)."""

    metric: str
    baseline: float
    current: float
    flips: Flips | None
    rule: FlipTest

    @property
    def worse(self) -> bool:
        return self.current < self.baseline - EPSILON

    @property
    def regressed(self) -> bool:
        return self.flips is not None and self.rule.regressed(self.worse, len(self.flips.broken), len(self.flips.fixed))

    def explain(self) -> str:
        """The change and its test in a few words."""
        text = f"{self.metric} {self.baseline:.3f} → {self.current:.3f}"
        if self.flips is None:
            return text + " (not tested: the baseline has no per-question rows)"
        return f"{text}: {len(self.flips.broken)} broken, {len(self.flips.fixed)} fixed, p = {self.flips.p_value:.2g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "kind": "rate",
            "baseline": self.baseline,
            "current": self.current,
            "change": self.current - self.baseline,
            "broken": list(self.flips.broken) if self.flips else None,
            "fixed": list(self.flips.fixed) if self.flips else None,
            "p_value": self.flips.p_value if self.flips else None,
            "regressed": self.regressed,
        }


@dataclass(frozen=True)
class LatencyDelta:
    """A p50 latency in the baseline and in this run; ratios are in calibration units, when both runs have one."""

    metric: str
    baseline: float
    current: float
    rule: Tolerance
    gated: bool
    baseline_ratio: float | None = None
    current_ratio: float | None = None

    @property
    def regressed(self) -> bool:
        return self.gated and self.current - self.baseline > self.rule.allowed(self.baseline) + EPSILON

    def explain(self) -> str:
        return f"{self.metric} {self.baseline:.0f} → {self.current:.0f} ms (allowed +{self.rule.allowed(self.baseline):.0f})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "kind": "latency",
            "baseline": self.baseline,
            "current": self.current,
            "change": self.current - self.baseline,
            "allowed": self.rule.allowed(self.baseline),
            "gated": self.gated,
            "baseline_ratio": self.baseline_ratio,
            "current_ratio": self.current_ratio,
            "regressed": self.regressed,
        }


Delta = RateDelta | LatencyDelta


Calibrations = tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]  # the baseline's, this run's


def latency_ratios(metric: str, baseline: float, current: float, calibrations: Calibrations) -> tuple[float | None, float | None]:
    """Both p50s of ``metric`` in calibration units; (None, None) unless both runs were calibrated."""
    step = metric.removesuffix("_p50")
    before, after = (relative_latency(value, step, c) for value, c in zip((baseline, current), calibrations))
    return (before, after) if before is not None and after is not None else (None, None)


def compare(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    pairs: Pairs | None,
    gate_latency: bool = False,
    calibrations: Calibrations = (None, None),
) -> list[Delta]:
    """The gated metrics that both overall summaries have (not None), judged by :data:`GATES`.

    ``pairs`` are the questions both runs scored, for the flips; None when the baseline has no rows.
    """
    deltas: list[Delta] = []
    for metric, rule in GATES.items():
        if baseline.get(metric) is None or current.get(metric) is None:
            continue
        before, after = float(baseline[metric]), float(current[metric])
        if isinstance(rule, FlipTest):
            deltas.append(RateDelta(metric, before, after, None if pairs is None else Flips.of(metric, pairs), rule))
        else:
            deltas.append(
                LatencyDelta(metric, before, after, rule, gate_latency, *latency_ratios(metric, before, after, calibrations))
            )
    return deltas


def load_report(path: Path) -> dict[str, Any]:
    """A stored ``report.json``; anything else is an :class:`InputError`."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the baseline report {path}: {exc}") from exc
    if not isinstance(report, dict) or not isinstance(report.get("overall"), dict):
        raise InputError(f"{path} is not a report.json written by `rag eval`")
    return report


# --- per-question changes ------------------------------------------------------------------


def _outcome_text(row: QuestionRow) -> str:
    """What a question's row says at a glance: where its gold passage ranked, and the answer."""
    rank = (f"gold rank {row.rank}" if row.rank is not None else f"gold not in the top {RETRIEVAL_K}") if row.has_gold else ""
    return " · ".join(text for text in (rank, row.answer or "") if text) or "–"


def question_changes(pairs: Pairs) -> list[dict[str, Any]]:
    """The questions whose outcome changed in some rate metric, with the metrics it broke and fixed; broken first."""
    changes = []
    for before, after in pairs:
        moves = {metric: moved(metric, before, after) for metric in OUTCOMES}
        if any(moves.values()):
            changes.append(
                {
                    "qid": after.qid,
                    "category": after.category,
                    "question": after.question,
                    "broken": [metric for metric, move in moves.items() if move < 0],
                    "fixed": [metric for metric, move in moves.items() if move > 0],
                    "baseline": _outcome_text(before),
                    "current": _outcome_text(after),
                }
            )
    return sorted(changes, key=lambda change: not change["broken"])  # stable: file order within each group


def pair_rows(before: Sequence[QuestionRow], after: Sequence[QuestionRow]) -> list[tuple[QuestionRow, QuestionRow]]:
    """The rows of the questions both runs scored, as (before, after), in ``after``'s order."""
    previous = {row.qid: row for row in before}
    return [(previous[row.qid], row) for row in after if row.qid in previous]


# --- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineComparison:
    """This run against a stored report, over the questions both scored."""

    path: str
    compared: int  # questions both runs scored
    deltas: list[Delta]
    gate_latency: bool = False
    per_category: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return any(d.regressed for d in self.deltas)

    @property
    def decision(self) -> str:
        """The gate's decision and its reason, in one line."""
        latency = "latency gated by --gate-latency" if self.gate_latency else "latency not gated"
        regressed = [d.explain() for d in self.deltas if d.regressed]
        if regressed:
            return f"REGRESSION: {'; '.join(regressed)} ({latency})"
        worse = [d.explain() for d in self.deltas if isinstance(d, RateDelta) and d.worse]
        reason = f"no regression beyond chance; worse: {'; '.join(worse)}" if worse else "no rate metric got worse"
        return f"PASS: {reason} ({latency})"

    def to_dict(self) -> dict[str, Any]:
        """The ``baseline`` section of ``report.json``."""
        return {
            "path": self.path,
            "compared": self.compared,
            "decision": self.decision,
            "regressed": self.regressed,
            "rule": gate_rule(self.gate_latency),
            "latency_gated": self.gate_latency,
            "notes": self.notes,
            "deltas": [d.to_dict() for d in self.deltas],
            "per_category": self.per_category,
            "changes": self.changes,
        }


def stored_rows(report: Mapping[str, Any]) -> list[QuestionRow] | None:
    """The per-question rows of a stored report, or None when it has none that read back.

    Answers are scored again with the current scorer, so both runs of a comparison are judged alike.
    """
    known = {f.name for f in fields(QuestionRow)}
    try:
        rows = [QuestionRow(**{k: v for k, v in row.items() if k in known}) for row in report["questions"]]
    except (KeyError, TypeError, AttributeError):
        return None
    return [rescored(row) for row in rows]


def rescored(row: QuestionRow) -> QuestionRow:
    """``row`` with ``correct`` recomputed from its answer (unchanged for retrieval-only rows)."""
    if row.answer is None or row.refused is None:
        return row
    return replace(row, correct=is_correct(row.answerable, row.refused, row.answer, row.expected))


def category_changes(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per category in this run: its size and :data:`CATEGORY_METRICS` in both runs."""
    return {
        name: {
            "questions": now["questions"],
            **{m: {"baseline": before.get(name, {}).get(m), "current": now.get(m)} for m in CATEGORY_METRICS},
        }
        for name, now in after.items()
    }


def check_comparable(stored: Mapping[str, Any], qids: Sequence[str], path: Path) -> None:
    """Refuse, before anything runs, a baseline whose questions are all different from this run's."""
    rows = stored_rows(stored)
    if rows is not None and not {row.qid for row in rows} & set(qids):
        raise InputError(f"the baseline {path} shares no question (qid) with this run: nothing to compare")


def compare_with_baseline(
    stored: Mapping[str, Any],
    rows: Sequence[QuestionRow],
    path: Path,
    questions_sha256: str,
    calibration: Mapping[str, Any] | None = None,
    gate_latency: bool = False,
) -> BaselineComparison:
    """Compare this run's ``rows`` with ``stored``, a baseline ``report.json`` (see the module doc).

    ``questions_sha256`` is this run's question file hash; a different one is noted, not refused.
    ``calibration`` is this run's, shown against the baseline's; ``gate_latency`` gates the p50s.
    """
    notes = []
    calibrations = (stored.get("calibration"), calibration)
    if stored.get("config", {}).get("questions", {}).get("sha256") != questions_sha256:
        notes.append("the baseline was made from a different question file")
    base_rows = stored_rows(stored)
    if base_rows is None:
        notes.append("the baseline holds no per-question rows: rate metrics are shown, not tested")
        deltas = compare(stored["overall"], summarise(rows), None, gate_latency, calibrations)
        return BaselineComparison(str(path), len(rows), deltas, gate_latency, notes=notes)
    pairs = pair_rows(base_rows, rows)
    before, shared = [old for old, _ in pairs], [new for _, new in pairs]
    rescored_count = sum(row.correct != kept.get("correct") for row, kept in zip(base_rows, stored["questions"], strict=True))
    if rescored_count:
        notes.append(f"{rescored_count} baseline answers scored differently by the current scorer: its figures are recomputed")
    if len(shared) == len(rows) == len(base_rows) and not rescored_count:  # the accepted figures as stored
        base_overall, base_categories = stored["overall"], stored.get("per_category", {})
    else:
        if len(shared) != len(rows) or len(shared) != len(base_rows):
            notes.append(
                f"compared on the {len(shared)} questions both runs scored (this run {len(rows)}, baseline {len(base_rows)})"
            )
        base_overall, base_categories = summarise(before), summarise_by_category(before)
    return BaselineComparison(
        path=str(path),
        compared=len(shared),
        deltas=compare(base_overall, summarise(shared), pairs, gate_latency, calibrations),
        gate_latency=gate_latency,
        per_category=category_changes(base_categories, summarise_by_category(shared)),
        changes=question_changes(pairs),
        notes=notes,
    )
