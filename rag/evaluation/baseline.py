"""Comparing an evaluation with a stored baseline report: the gate, its margin, categories, flips.

The accepted figures are the baseline's own summary when both runs scored the same questions
with the same scorer. Otherwise (``--limit``, questions added or dropped, an older scorer) both
sides are summarised again over the questions they share, from the per-question rows every
``report.json`` holds, so a 30-question run is never judged against 105-question figures.

The gate judges the :data:`GATED_METRICS` by the questions that flipped, not by how far a figure
moved: on 19 unanswerable questions one flip moves refusal recall by 0.053, and greedy decoding
still flips a question now and then between CPUs. The four are tested together with a weighted
Holm correction (answer accuracy weighs most), so looking at four metrics does not quadruple the
false alarms; the other metrics are
shown, not gated. Latency is gated only on request. Each report states the margin: how many more
broken questions would have failed the run (:func:`margins`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.evaluation.calibration import relative_latency
from rag.evaluation.metrics import COUNT_METRICS, LATENCY_STEPS, RATE_METRICS, holm_levels, holm_rejected, mcnemar_p
from rag.evaluation.run_settings import SettingsDiff
from rag.evaluation.scoring import (
    OUTCOMES,
    RETRIEVAL_K,
    SCORER_VERSION,
    QuestionRow,
    answer_part_recall,
    is_correct,
    summarise,
    summarise_by_category,
)

GATED_METRICS = ("answer_accuracy", "refused_answerable", "hit@1", "citation_precision")
"""The metrics that can fail a run; every other metric is shown, not gated."""
GATE_WEIGHTS = {"answer_accuracy": 0.7, "refused_answerable": 0.1, "hit@1": 0.1, "citation_precision": 0.1}
"""How the family-wise alpha is shared in the weighted Holm test. Answer accuracy, what staff
see, gets most of it, so 5 broken answers with none fixed fail a run on their own (p = 1/32 <
0.05 x 0.7); each other metric needs 8 (p = 1/256 < 0.05 x 0.1) while nothing else fails. A
refused answerable question that was answered right before is also a broken answer."""
LOWER_IS_BETTER = frozenset(COUNT_METRICS)
CATEGORY_METRICS = ("hit@1", "answer_accuracy", "refused_answerable", "refusal_recall", "citation_precision")
"""The metrics shown per category next to the baseline (shown, not gated)."""
EPSILON = 1e-9  # float noise: smaller moves are no change


@dataclass(frozen=True)
class FlipCount:
    """One gated metric's flips: questions broken and fixed, whether the figure got worse, and how many more could break."""

    broken: int
    fixed: int
    worse: bool
    room: int = 0  # questions that held steady and could still break

    @property
    def p_value(self) -> float:
        return mcnemar_p(self.broken, self.fixed)


@dataclass(frozen=True)
class FlipTest:
    """The gate of the :data:`GATED_METRICS`: which of them regressed, tested together.

    A flip is a question whose outcome for the metric (:data:`rag.evaluation.scoring.OUTCOMES`)
    went down (broken) or up (fixed). With nothing really changed each flip is a coin toss, so
    McNemar's exact test (one-sided) gives each metric the chance of at least that many broken
    ones. A weighted Holm step-down over those p-values (:data:`GATE_WEIGHTS`) keeps the chance
    of any false alarm across the metrics at ``alpha``. A metric regresses when Holm rejects it, it got worse, and at least
    ``min_net_broken`` more questions broke than were fixed.
    """

    alpha: float = 0.05  # family-wise, across the gated metrics compared
    min_net_broken: int = 2  # whatever alpha says: one question never decides, however small its category

    def regressions(self, counts: Mapping[str, FlipCount]) -> set[str]:
        """The metrics of ``counts`` that regressed."""
        rejected = holm_rejected({metric: count.p_value for metric, count in counts.items()}, self.alpha, GATE_WEIGHTS)
        return {m for m in rejected if counts[m].worse and counts[m].broken - counts[m].fixed >= self.min_net_broken}

    def levels(self, counts: Mapping[str, FlipCount]) -> dict[str, float]:
        """The level Holm tests each metric's p-value at."""
        return holm_levels({metric: count.p_value for metric, count in counts.items()}, self.alpha, GATE_WEIGHTS)

    def margin(self, counts: Mapping[str, FlipCount], metric: str) -> int | None:
        """The fewest more broken questions of ``metric`` (the fixed ones unchanged) that fail the run.

        0 when it fails already; None when even all of its :attr:`FlipCount.room` would not.
        The added questions count as making the metric worse.
        """
        if self.regressions(counts):
            return 0
        count = counts[metric]
        for more in range(1, count.room + 1):
            if self.regressions({**counts, metric: FlipCount(count.broken + more, count.fixed, True)}):
                return more
        return None

    def describe(self) -> str:
        return (
            f"gated: {', '.join(GATED_METRICS)}. One of them regresses when it got worse, at least "
            f"{self.min_net_broken} more questions broke than were fixed, and a weighted Holm step-down over the one-sided "
            f"exact McNemar p-values of their flips rejects it at family-wise alpha {self.alpha} (weights "
            f"{', '.join(f'{m} {w:g}' for m, w in GATE_WEIGHTS.items())}: a metric is tested at alpha x its weight / the "
            f"weights not yet rejected); the other metrics are shown, not gated"
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
    **dict.fromkeys(GATED_METRICS, RATE_GATE),
    **{f"{step}_p50": LATENCY_GATE for step in LATENCY_STEPS},
}
"""The one place that says what can fail ``--baseline``.

:data:`GATED_METRICS`: a regression when the metric got worse, at least 2 more questions broke
than were fixed, and the weighted Holm step-down at family-wise alpha 0.05 (:data:`GATE_WEIGHTS`)
rejects the one-sided exact McNemar p of its flips (with nothing fixed, 5 broken answers fail a
run, p = 1/32 < 0.035; 8 for another gated metric alone; improvements never fail). p50 latencies:
only with ``--gate-latency``, on the baseline's machine: a regression when more than 50% and
more than 20 ms slower. Reports say which applied.
"""
SHOWN_METRICS = RATE_METRICS + COUNT_METRICS
"""Every metric compared with the baseline; those not in :data:`GATES` are shown, not gated."""


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


def could_break(metric: str, before: QuestionRow, after: QuestionRow) -> bool:
    """Whether the question held steady on ``metric`` with an outcome that can still go down."""
    was, now = OUTCOMES[metric](before), OUTCOMES[metric](after)
    return was is not None and now is not None and abs(now - was) <= EPSILON and now > EPSILON


@dataclass(frozen=True)
class Flips:
    """The questions whose outcome for one metric went down (broken) or up (fixed); ``room``: how many more could break."""

    broken: tuple[str, ...]
    fixed: tuple[str, ...]
    room: int = 0

    @classmethod
    def of(cls, metric: str, pairs: Pairs) -> Flips:
        moves = [(moved(metric, before, after), after.qid) for before, after in pairs]
        room = sum(could_break(metric, before, after) for before, after in pairs)
        return cls(tuple(q for m, q in moves if m < 0), tuple(q for m, q in moves if m > 0), room)

    @property
    def p_value(self) -> float:
        return mcnemar_p(len(self.broken), len(self.fixed))


def figure(metric: str, value: float) -> str:
    """A summary figure in a few characters: counts whole, rates to 3 decimals."""
    return f"{value:.0f}" if metric in COUNT_METRICS else f"{value:.3f}"


@dataclass(frozen=True)
class RateDelta:
    """A rate (or count) metric in the baseline and in this run, with its flips (None: no per-question outcomes).

    ``level`` is the level Holm tested a gated metric's p-value at; ``regressed`` is the gate's verdict.
    """

    metric: str
    baseline: float
    current: float
    flips: Flips | None
    gated: bool = False
    level: float | None = None
    regressed: bool = False

    @property
    def worse(self) -> bool:
        if self.metric in LOWER_IS_BETTER:
            return self.current > self.baseline + EPSILON
        return self.current < self.baseline - EPSILON

    @property
    def count(self) -> FlipCount | None:
        """The flips as the gate counts them (None without per-question outcomes)."""
        if self.flips is None:
            return None
        return FlipCount(len(self.flips.broken), len(self.flips.fixed), self.worse, self.flips.room)

    def explain(self) -> str:
        """The change and its test in a few words."""
        text = f"{self.metric} {figure(self.metric, self.baseline)} → {figure(self.metric, self.current)}"
        if self.flips is None:
            return text + " (not tested: no per-question flips)"
        text += f": {len(self.flips.broken)} broken, {len(self.flips.fixed)} fixed, p = {self.flips.p_value:.2g}"
        if self.level is not None:
            return text + f" (Holm level {self.level:.3g})"
        return text if self.gated else text + " (not gated)"

    def to_dict(self) -> dict[str, Any]:
        count = self.metric in COUNT_METRICS
        number = round if count else float
        return {
            "metric": self.metric,
            "kind": "count" if count else "rate",
            "baseline": number(self.baseline),
            "current": number(self.current),
            "change": number(self.current - self.baseline),
            "broken": list(self.flips.broken) if self.flips else None,
            "fixed": list(self.flips.fixed) if self.flips else None,
            "p_value": self.flips.p_value if self.flips else None,
            "gated": self.gated,
            "holm_level": self.level,
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


def flip_counts(deltas: Sequence[Delta]) -> dict[str, FlipCount]:
    """The flips of the gated metrics that have them: what the gate tests."""
    return {d.metric: d.count for d in deltas if isinstance(d, RateDelta) and d.gated and d.count is not None}


def judged(rates: Sequence[RateDelta], rule: FlipTest = RATE_GATE) -> list[RateDelta]:
    """``rates`` with the gate's verdict: Holm levels and regressions over the gated metrics together."""
    counts = flip_counts(rates)
    levels, regressions = rule.levels(counts), rule.regressions(counts)
    return [replace(d, level=levels.get(d.metric), regressed=d.metric in regressions) for d in rates]


def compare(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    pairs: Pairs | None,
    gate_latency: bool = False,
    calibrations: Calibrations = (None, None),
) -> list[Delta]:
    """Every metric that both overall summaries have (not None), gated metrics first, judged by :data:`GATES`.

    ``pairs`` are the questions both runs scored, for the flips; None when the baseline has no rows.
    """
    metrics = dict.fromkeys([*GATED_METRICS, *SHOWN_METRICS, *GATES])
    measured = [m for m in metrics if baseline.get(m) is not None and current.get(m) is not None]
    rates = [
        RateDelta(m, float(baseline[m]), float(current[m]), _flips(m, pairs), gated=m in GATES)
        for m in measured
        if not m.endswith("_p50")
    ]
    latencies = [
        _latency(m, float(baseline[m]), float(current[m]), gate_latency, calibrations) for m in measured if m.endswith("_p50")
    ]
    return [*judged(rates), *latencies]


def _flips(metric: str, pairs: Pairs | None) -> Flips | None:
    return None if pairs is None or metric not in OUTCOMES else Flips.of(metric, pairs)


def _latency(metric: str, before: float, after: float, gated: bool, calibrations: Calibrations) -> LatencyDelta:
    return LatencyDelta(metric, before, after, LATENCY_GATE, gated, *latency_ratios(metric, before, after, calibrations))


MARGIN_NOUNS = {
    "answer_accuracy": ("broken answer", "broken answers"),
    "refused_answerable": ("refused answerable question", "refused answerable questions"),
    "hit@1": ("question losing its gold passage at rank 1", "questions losing their gold passage at rank 1"),
    "citation_precision": ("question with fewer gold citations", "questions with fewer gold citations"),
}


def margins(deltas: Sequence[Delta], rule: FlipTest = RATE_GATE) -> dict[str, int | None]:
    """For each gated metric with flips, the fewest more broken questions that would fail this run (see :meth:`FlipTest.margin`)."""
    counts = flip_counts(deltas)
    return {metric: rule.margin(counts, metric) for metric in counts}


def margin_text(metric: str, more: int | None) -> str:
    """One line of the margin of a passing run: ``answer_accuracy: 2 more broken answers would fail this run``."""
    if more is None:
        return f"{metric}: no number of further broken questions could fail this run (too few left)"
    one, many = MARGIN_NOUNS.get(metric, ("broken question", "broken questions"))
    return f"{metric}: {more} more {one if more == 1 else many} would fail this run"


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


def answer_state(row: QuestionRow) -> str | None:
    """What became of a question's answer: correct, wrong or refused; an unanswerable one refused or answered."""
    if row.answer is None:
        return None
    if row.refused:
        return "refused"
    if not row.answerable:
        return "answered"
    return "correct" if row.correct else "wrong"


def flip_kind(before: QuestionRow, after: QuestionRow, broken: Sequence[str], fixed: Sequence[str]) -> str:
    """How a question flipped: ``correct → refused``; ``unanswerable: refused → answered``; or the metrics moved."""
    was, now = answer_state(before), answer_state(after)
    if was and now and was != now:
        return f"{'' if after.answerable else 'unanswerable: '}{was} → {now}"
    moves = "; ".join(f"{label}: {', '.join(metrics)}" for label, metrics in (("broken", broken), ("fixed", fixed)) if metrics)
    return f"{'answer unchanged' if was and now else 'no answers compared'} ({moves})"


def question_changes(pairs: Pairs) -> list[dict[str, Any]]:
    """The questions whose outcome changed in some metric, with the metrics it broke and fixed and its kind; broken first."""
    changes = []
    for before, after in pairs:
        moves = {metric: moved(metric, before, after) for metric in OUTCOMES}
        if any(moves.values()):
            broken = [metric for metric, move in moves.items() if move < 0]
            fixed = [metric for metric, move in moves.items() if move > 0]
            changes.append(
                {
                    "qid": after.qid,
                    "category": after.category,
                    "question": after.question,
                    "broken": broken,
                    "fixed": fixed,
                    "kind": flip_kind(before, after, broken, fixed),
                    "baseline": _outcome_text(before),
                    "current": _outcome_text(after),
                }
            )
    return sorted(changes, key=lambda change: not change["broken"])  # stable: file order within each group


def flip_kinds(changes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many questions flipped each way, most frequent first: ``{"correct → refused": 3, ...}``."""
    return dict(Counter(change["kind"] for change in changes).most_common())


def pair_rows(
    before: Sequence[QuestionRow], after: Sequence[QuestionRow], leave_out: Collection[str] = ()
) -> list[tuple[QuestionRow, QuestionRow]]:
    """The rows of the questions both runs scored, but those in ``leave_out``, as (before, after), in ``after``'s order."""
    previous = {row.qid: row for row in before if row.qid not in leave_out}
    return [(previous[row.qid], row) for row in after if row.qid in previous]


def unstable_questions(pairs: Pairs) -> list[str]:
    """The questions whose outcome for a gated metric differs between two runs (of the same code: noise)."""
    return [after.qid for before, after in pairs if any(moved(metric, before, after) for metric in GATED_METRICS)]


def marked_unstable(report: Mapping[str, Any], path: Path) -> list[str]:
    """The qids a baseline marks ``unstable`` (``scripts/mark_unstable.py``); an :class:`InputError` if malformed."""
    unstable = report.get("unstable", [])
    if not isinstance(unstable, list) or not all(isinstance(qid, str) for qid in unstable):
        raise InputError(f"{path}: 'unstable' must be a list of question ids")
    return unstable


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
    settings: SettingsDiff | None = None
    unstable: list[str] = field(default_factory=list)  # questions left out: the baseline marks them unstable

    @property
    def margins(self) -> dict[str, int | None]:
        return margins(self.deltas)

    @property
    def margin_lines(self) -> list[str]:
        """The margin in words: one line per gated metric, or one saying the run fails already."""
        if self.regressed:
            return ["none: this run fails already"]
        return [margin_text(metric, more) for metric, more in self.margins.items()]

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
            "unstable": self.unstable,
            "decision": self.decision,
            "regressed": self.regressed,
            "rule": gate_rule(self.gate_latency),
            "latency_gated": self.gate_latency,
            "notes": self.notes,
            "settings": self.settings.to_dict() if self.settings else None,
            "margins": self.margins,
            "margin_text": self.margin_lines,
            "flip_kinds": flip_kinds(self.changes),
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


def report_rows(path: Path) -> list[QuestionRow]:
    """The per-question rows of the report at ``path``; an :class:`InputError` when it has none."""
    rows = stored_rows(load_report(path))
    if not rows:
        raise InputError(f"{path} holds no per-question rows")
    return rows


def rescored(row: QuestionRow) -> QuestionRow:
    """``row`` with ``correct`` and ``part_recall`` recomputed from its answer (unchanged for retrieval-only rows)."""
    if row.answer is None or row.refused is None:
        return row
    return replace(
        row,
        correct=is_correct(row.answerable, row.refused, row.answer, row.expected, row.excluded),
        part_recall=answer_part_recall(row.refused, row.answer, row.expected),
    )


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


def baseline_figures(
    stored: Mapping[str, Any],
    base_rows: Sequence[QuestionRow],
    before: Sequence[QuestionRow],
    current: int,
    left_out: int = 0,
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The baseline's overall and per-category figures to compare with, and notes on where they come from.

    The accepted figures as stored when the same questions were scored alike by this scorer;
    otherwise recomputed from the rows of the ``before`` questions (those both runs scored, but
    the ``left_out`` unstable ones).
    """
    notes = []
    rescored_count = sum(row.correct != kept.get("correct") for row, kept in zip(base_rows, stored["questions"], strict=True))
    if rescored_count:
        notes.append(f"{rescored_count} baseline answers scored differently by the current scorer: its figures are recomputed")
    same_scorer = stored.get("config", {}).get("scorer") == SCORER_VERSION
    if not same_scorer:
        notes.append("the baseline was scored by an earlier scorer: its figures are recomputed from its rows")
    if len(before) != current or len(before) != len(base_rows):
        unstable = f", less the {left_out} marked unstable" if left_out else ""
        notes.append(
            f"compared on the {len(before)} questions both runs scored{unstable} (this run {current}, baseline {len(base_rows)})"
        )
    elif same_scorer and not rescored_count:
        return stored["overall"], stored.get("per_category", {}), notes
    return summarise(before), summarise_by_category(before), notes


def compare_with_baseline(
    stored: Mapping[str, Any],
    rows: Sequence[QuestionRow],
    path: Path,
    questions_sha256: str,
    calibration: Mapping[str, Any] | None = None,
    gate_latency: bool = False,
    settings: SettingsDiff | None = None,
) -> BaselineComparison:
    """Compare this run's ``rows`` with ``stored``, a baseline ``report.json`` (see the module doc).

    ``questions_sha256`` is this run's question file hash; a different one is noted here (the
    settings check refuses it before the run). ``calibration`` is this run's, shown against the
    baseline's; ``gate_latency`` gates the p50s; ``settings`` is the settings check, reported.
    Questions the baseline marks ``unstable`` (their outcome differed between two runs of the same
    code) are left out of the figures and the flips, and listed.
    """
    notes = list(settings.notes) if settings else []
    calibrations = (stored.get("calibration"), calibration)
    if stored.get("config", {}).get("questions", {}).get("sha256") != questions_sha256:
        notes.append("the baseline was made from a different question file")
    base_rows = stored_rows(stored)
    if base_rows is None:
        notes.append("the baseline holds no per-question rows: rate metrics are shown, not tested")
        deltas = compare(stored["overall"], summarise(rows), None, gate_latency, calibrations)
        return BaselineComparison(str(path), len(rows), deltas, gate_latency, notes=notes, settings=settings)
    unstable = set(marked_unstable(stored, path)) & {row.qid for row in base_rows}
    left_out = [row.qid for row in rows if row.qid in unstable]
    pairs = pair_rows(base_rows, rows, leave_out=unstable)
    before, shared = [old for old, _ in pairs], [new for _, new in pairs]
    base_overall, base_categories, figure_notes = baseline_figures(stored, base_rows, before, len(rows), len(left_out))
    return BaselineComparison(
        path=str(path),
        compared=len(shared),
        deltas=compare(base_overall, summarise(shared), pairs, gate_latency, calibrations),
        gate_latency=gate_latency,
        per_category=category_changes(base_categories, summarise_by_category(shared)),
        changes=question_changes(pairs),
        notes=notes + figure_notes,
        settings=settings,
        unstable=left_out,
    )
