"""Comparing an evaluation with a stored baseline report: gated metrics, categories, questions.

The accepted figures are the baseline's own summary when both runs scored the same questions.
When they did not (``--limit``, questions added or dropped), both sides are summarised again
over the questions they share, from the per-question rows every ``report.json`` holds, so a
30-question run is never judged against 105-question figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.evaluation.metrics import LATENCY_STEPS, RATE_METRICS
from rag.evaluation.scoring import RETRIEVAL_K, QuestionRow, summarise, summarise_by_category

CATEGORY_METRICS = ("hit@1", "answer_accuracy", "refusal_recall", "citation_precision")
"""The metrics shown per category next to the baseline (shown, not gated)."""


@dataclass(frozen=True)
class Tolerance:
    """How far a metric may move the wrong way before it counts as a regression."""

    higher_is_better: bool
    absolute: float
    relative: float = 0.0

    def allowed(self, baseline: float) -> float:
        return max(self.absolute, self.relative * abs(baseline))


RATE_TOLERANCE = Tolerance(higher_is_better=True, absolute=0.05)
# +50%, and never less than 20 ms, so timer noise on fast steps does not fail a run
LATENCY_TOLERANCE = Tolerance(higher_is_better=False, absolute=20.0, relative=0.5)
TOLERANCES: dict[str, Tolerance] = {
    **dict.fromkeys(RATE_METRICS, RATE_TOLERANCE),
    **{f"{step}_p50": LATENCY_TOLERANCE for step in LATENCY_STEPS},
}
"""The one place that says which overall metrics gate ``--baseline`` and by how much."""


@dataclass(frozen=True)
class Delta:
    """One gated metric in the baseline and in this run."""

    metric: str
    baseline: float
    current: float
    tolerance: Tolerance

    @property
    def change(self) -> float:
        return self.current - self.baseline

    @property
    def regressed(self) -> bool:
        worse = -self.change if self.tolerance.higher_is_better else self.change
        return worse > self.tolerance.allowed(self.baseline) + 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "current": self.current,
            "change": self.change,
            "allowed": self.tolerance.allowed(self.baseline),
            "regressed": self.regressed,
        }


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[Delta]:
    """Deltas of the gated metrics that both overall summaries have (not None)."""
    return [
        Delta(metric, float(baseline[metric]), float(current[metric]), tolerance)
        for metric, tolerance in TOLERANCES.items()
        if baseline.get(metric) is not None and current.get(metric) is not None
    ]


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

OutcomeCheck = Callable[[QuestionRow], "bool | None"]
CHECKS: dict[str, OutcomeCheck] = {
    "answer": lambda row: row.correct,
    "hit@1": lambda row: row.rank == 1 if row.has_gold else None,
}
"""What a question can gain or lose between two runs; None where the check does not apply."""


def _outcome_text(row: QuestionRow, check: str) -> str:
    if check == "answer":
        return row.answer or ""
    return f"gold rank {row.rank}" if row.rank is not None else f"gold not in the top {RETRIEVAL_K}"


def question_changes(before: Sequence[QuestionRow], after: Sequence[QuestionRow]) -> list[dict[str, Any]]:
    """The questions that passed a check in one run and failed it in the other; broken ones first."""
    previous = {row.qid: row for row in before}
    changes = []
    for row in after:
        old = previous.get(row.qid)
        if old is None:
            continue
        for check, outcome in CHECKS.items():
            was, now = outcome(old), outcome(row)
            if was is not None and now is not None and was != now:
                changes.append(
                    {
                        "qid": row.qid,
                        "category": row.category,
                        "question": row.question,
                        "check": check,
                        "fixed": now,
                        "baseline": _outcome_text(old, check),
                        "current": _outcome_text(row, check),
                    }
                )
    return sorted(changes, key=lambda change: change["fixed"])  # stable: file order within each group


# --- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineComparison:
    """This run against a stored report, over the questions both scored."""

    path: str
    compared: int  # questions both runs scored
    deltas: list[Delta]
    per_category: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return any(d.regressed for d in self.deltas)

    def to_dict(self) -> dict[str, Any]:
        """The ``baseline`` section of ``report.json``."""
        return {
            "path": self.path,
            "compared": self.compared,
            "notes": self.notes,
            "deltas": [d.to_dict() for d in self.deltas],
            "per_category": self.per_category,
            "changes": self.changes,
        }


def stored_rows(report: Mapping[str, Any]) -> list[QuestionRow] | None:
    """The per-question rows of a stored report, or None when it has none that read back."""
    known = {f.name for f in fields(QuestionRow)}
    try:
        return [QuestionRow(**{k: v for k, v in row.items() if k in known}) for row in report["questions"]]
    except (KeyError, TypeError, AttributeError):
        return None


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
    stored: Mapping[str, Any], rows: Sequence[QuestionRow], path: Path, questions_sha256: str
) -> BaselineComparison:
    """Compare this run's ``rows`` with ``stored``, a baseline ``report.json`` (see the module doc).

    ``questions_sha256`` is this run's question file hash; a different one is noted, not refused.
    """
    notes = []
    if stored.get("config", {}).get("questions", {}).get("sha256") != questions_sha256:
        notes.append("the baseline was made from a different question file")
    base_rows = stored_rows(stored)
    if base_rows is None:
        notes.append("the baseline holds no per-question rows: compared with its overall figures only")
        return BaselineComparison(str(path), len(rows), compare(stored["overall"], summarise(rows)), notes=notes)
    by_qid = {row.qid: row for row in base_rows}
    shared = [row for row in rows if row.qid in by_qid]
    before = [by_qid[row.qid] for row in shared]
    if len(shared) == len(rows) == len(base_rows):  # the same questions: the accepted figures as stored
        base_overall, base_categories = stored["overall"], stored.get("per_category", {})
    else:
        notes.append(
            f"compared on the {len(shared)} questions both runs scored (this run {len(rows)}, baseline {len(base_rows)})"
        )
        base_overall, base_categories = summarise(before), summarise_by_category(before)
    return BaselineComparison(
        path=str(path),
        compared=len(shared),
        deltas=compare(base_overall, summarise(shared)),
        per_category=category_changes(base_categories, summarise_by_category(shared)),
        changes=question_changes(before, shared),
        notes=notes,
    )
