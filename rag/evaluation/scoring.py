"""Scoring a question set against an index and the LLM: questions, per-question rows, summaries.

Two question formats load into one :class:`EvalQuestion`:

* the regression set (``eval/questions.jsonl``): ``answers`` is a list of required parts, each
  a list of accepted alternatives (``[]`` when unanswerable); ``evidence`` quotes the source
  text; follow-ups carry ``history``; an optional ``excluded`` lists items that a correct answer
  does not name (the members of a neighbouring list: "which provinces did both" is not answered
  by the list of one);
* external sets (CMRC 2018): ``answers`` is one flat list of alternatives and ``gold_pids``
  names the corpus rows (``pid``, indexed as ``doc_id``) that hold the answer.

Retrieval is scored with its own top-:data:`RETRIEVAL_K` search for every question, whether or
not the LLM runs; answers, refusals and citations are scored from :meth:`QAPipeline.ask`.
The ``rag eval`` command around it is in :mod:`rag.evaluation.command`; baselines in
:mod:`rag.evaluation.baseline`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.evaluation.metrics import (
    LATENCY_STEPS,
    RATE_METRICS,
    all_parts_found,
    answer_span_recall,
    contains_any,
    contains_quote,
    first_relevant_rank,
    hit_at,
    list_precision,
    mean,
    names_any,
    part_recall,
    percentile,
    ratio,
    reciprocal_rank,
    refusal_precision_recall,
)
from rag.index.chunking import Chunk
from rag.index.filters import SearchFilter
from rag.models.generators import Message
from rag.progress import ProgressCallback
from rag.qa.pipeline import DEFAULT_TOP_K, Answer, QAPipeline
from rag.qa.retriever import Retriever, SearchMode

RETRIEVAL_K = 10
PASSAGES_KEPT = 3  # retrieved passages stored per question for the failure listing
CLIP_CHARS = 200
SCORER_VERSION = 3
"""Recorded in ``config.scorer``; a baseline scored by another version has its figures recomputed.

2: numbers match as whole tokens, citation precision counts unverified citations, refused_answerable.
3: an answer naming an ``excluded`` item is wrong; list_precision.
"""


# --- questions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalQuestion:
    """One question in the internal form shared by both file formats."""

    qid: str
    question: str
    category: str
    parts: tuple[tuple[str, ...], ...]  # required parts, each a tuple of accepted alternatives
    evidence: tuple[str, ...] = ()
    gold_doc_ids: frozenset[str] = frozenset()
    history: tuple[Message, ...] = ()
    excluded: tuple[str, ...] = ()  # items a correct answer does not name

    @property
    def answerable(self) -> bool:
        return bool(self.parts)

    @property
    def has_gold(self) -> bool:
        """Whether retrieval can be scored: there are gold quotes or gold documents."""
        return bool(self.evidence or self.gold_doc_ids)

    @property
    def retrieval_query(self) -> str:
        """What the retrieval check searches: a follow-up gets its last user turn in front."""
        last_user = next((m["content"] for m in reversed(self.history) if m["role"] == "user"), "")
        return f"{last_user} {self.question}" if last_user else self.question

    def is_gold(self, chunk: Chunk) -> bool:
        """The chunk belongs to a gold document or holds (most of) a gold evidence quote."""
        return chunk.doc_id in self.gold_doc_ids or any(contains_quote(chunk.embed_text, q) for q in self.evidence)

    def supported_by(self, chunk: Chunk) -> bool:
        """The chunk holds gold evidence or an accepted answer: a citation of it is right."""
        return self.is_gold(chunk) or any(contains_any(chunk.embed_text, part) for part in self.parts)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"'{what}' must be a list of non-empty strings")
    return tuple(value)


def parse_question(row: Mapping[str, Any]) -> EvalQuestion:
    """One JSON row of either format as an :class:`EvalQuestion`."""
    answers = row["answers"]
    if not isinstance(answers, list):
        raise ValueError("'answers' must be a list")
    parts: tuple[tuple[str, ...], ...]
    if all(isinstance(a, str) for a in answers):  # external: one part, flat alternatives
        parts = (_strings(answers, "answers"),) if answers else ()
    else:
        parts = tuple(_strings(part, "answers[i]") for part in answers)
    question = str(row["question"]).strip()
    if not question:
        raise ValueError("empty question")
    history = tuple(Message(role=str(m["role"]), content=str(m["content"])) for m in row.get("history") or [])
    return EvalQuestion(
        qid=str(row["qid"]),
        question=question,
        category=str(row.get("category") or ("answerable" if parts else "unanswerable")),
        parts=parts,
        evidence=_strings(row.get("evidence") or [], "evidence"),
        gold_doc_ids=frozenset(_strings(row.get("gold_pids") or [], "gold_pids")),
        history=history,
        excluded=_strings(row.get("excluded") or [], "excluded"),
    )


def load_questions(path: Path, limit: int | None = None) -> list[EvalQuestion]:
    """The first ``limit`` questions of a JSONL set; a malformed row is an :class:`InputError`."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the question set {path}: {exc}") from exc
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for line_no, line in enumerate(lines, start=1):
        if limit is not None and len(questions) >= limit:
            break
        if not line.strip():
            continue
        try:
            question = parse_question(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}, line {line_no}: {exc}") from exc
        if question.qid in seen:
            raise InputError(f"{path}, line {line_no}: qid '{question.qid}' is used twice")
        seen.add(question.qid)
        questions.append(question)
    if not questions:
        raise InputError(f"{path} holds no questions")
    return questions


# --- running -------------------------------------------------------------------------------


@dataclass
class QuestionRow:
    """The outcome for one question: plain values only, as stored in ``report.json``."""

    qid: str
    category: str
    question: str
    expected: list[list[str]]
    answerable: bool
    has_gold: bool
    rank: int | None  # first gold chunk in the top RETRIEVAL_K; None when missed or no gold
    retrieved: list[dict[str, Any]]
    retrieve_ms: float
    standalone_question: str | None = None
    answer: str | None = None  # None: the LLM did not run (--retrieval-only)
    draft: str | None = None  # the model's own text, before the citation check
    retry: str | None = None  # why a second attempt was made ("refusal", "form"), "" for none
    withheld: str | None = None  # the draft of the attempt that was not shown, when retried
    refused: bool | None = None
    correct: bool | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)  # verified citations only
    unsupported_citations: int = 0  # citations the check could not verify (they count against citation precision)
    part_recall: float | None = None  # share of the required parts the answer holds; None when unanswerable
    excluded: list[str] = field(default_factory=list)  # items a correct answer does not name
    first_token_ms: float | None = None
    total_ms: float | None = None


@dataclass(frozen=True)
class SearchOptions:
    """How every question of a run is asked: search mode, passages shown to the model, filter.

    They travel with each question (:meth:`QAPipeline.ask`, :meth:`Retriever.search`), so the
    one pipeline that :class:`rag.components.Components` assembles serves every mode.
    """

    mode: SearchMode = "hybrid"
    top_k: int = DEFAULT_TOP_K
    where: SearchFilter = field(default_factory=SearchFilter)


def _passage(chunk: Chunk, gold: bool) -> dict[str, Any]:
    text = chunk.text if len(chunk.text) <= CLIP_CHARS else chunk.text[:CLIP_CHARS] + "…"
    return {"doc_id": chunk.doc_id, "chunk_id": chunk.chunk_id, "title": chunk.title, "text": text, "gold": gold}


def score_retrieval(question: EvalQuestion, retriever: Retriever, options: SearchOptions) -> QuestionRow:
    """The row for ``question`` with its top-:data:`RETRIEVAL_K` retrieval (in ``options.mode``) scored."""
    started = time.perf_counter()
    hits = retriever.search(question.retrieval_query, k=RETRIEVAL_K, mode=options.mode, where=options.where)
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    gold = [question.is_gold(hit.chunk) for hit in hits]
    return QuestionRow(
        qid=question.qid,
        category=question.category,
        question=question.question,
        expected=[list(part) for part in question.parts],
        answerable=question.answerable,
        has_gold=question.has_gold,
        rank=first_relevant_rank(gold) if question.has_gold else None,
        retrieved=[_passage(hit.chunk, ok) for hit, ok in zip(hits[:PASSAGES_KEPT], gold, strict=False)],
        retrieve_ms=elapsed,
        excluded=list(question.excluded),
    )


def is_correct(
    answerable: bool, refused: bool, answer: str, parts: Sequence[Sequence[str]], excluded: Sequence[str] = ()
) -> bool:
    """A refusal for an unanswerable question; for an answerable one, an answer holding every part
    and naming no ``excluded`` item."""
    if not answerable:
        return refused
    return not refused and all_parts_found(answer, parts) and not names_any(answer, excluded)


def answer_part_recall(refused: bool, answer: str, parts: Sequence[Sequence[str]]) -> float | None:
    """The share of required parts the answer holds (0 when refused); None for an unanswerable question."""
    return 0.0 if refused and parts else part_recall(answer, parts)


def score_answer(question: EvalQuestion, answer: Answer, row: QuestionRow) -> QuestionRow:
    """``row`` completed with the scored answer, refusal, citations and timings."""
    verified = [c for c in answer.citations if c.verified]
    cited = [(c, answer.passages[c.n - 1].chunk) for c in verified]
    correct = is_correct(question.answerable, answer.refused, answer.answer, question.parts, question.excluded)
    return replace(
        row,
        standalone_question=answer.standalone_question,
        answer=answer.answer,
        draft=answer.draft,
        retry=answer.retry,
        withheld=answer.withheld,
        refused=answer.refused,
        correct=correct,
        part_recall=answer_part_recall(answer.refused, answer.answer, question.parts),
        citations=[{"n": c.n, **_passage(chunk, question.supported_by(chunk))} for c, chunk in cited],
        unsupported_citations=len(answer.citations) - len(verified),
        first_token_ms=answer.timings.get("first_token_ms"),
        total_ms=answer.timings.get("total_ms"),
    )


class RowJournal:
    """Rows of an unfinished run, appended as each question completes, so an interrupted run resumes.

    The first line holds the run's key (question file, models, index, settings); a journal with
    another key belongs to a different run and is started afresh.
    """

    def __init__(self, path: Path, key: Mapping[str, Any]) -> None:
        self.path = path
        self.key = json.loads(json.dumps(key))  # the key as it reads back from JSON

    def load(self) -> dict[str, QuestionRow]:
        """The rows already scored by this run, by qid (empty when there are none)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
            if not lines or json.loads(lines[0]) != {"key": self.key}:
                return {}
        except (OSError, ValueError):
            return {}
        rows: dict[str, QuestionRow] = {}
        for line in lines[1:]:
            try:
                row = QuestionRow(**json.loads(line))
            except (ValueError, TypeError):
                break  # a line cut off by a crash: it and anything after it are scored again
            rows[row.qid] = row
        return rows

    def start(self, kept: Sequence[QuestionRow]) -> None:
        """Rewrite the journal with this run's key and the rows kept from before."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"key": self.key}, ensure_ascii=False)] + [
            json.dumps(asdict(row), ensure_ascii=False) for row in kept
        ]
        self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def append(self, row: QuestionRow) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")

    def finish(self) -> None:
        """The run is complete and reported: the journal is no longer needed."""
        self.path.unlink(missing_ok=True)


def run_questions(
    questions: Sequence[EvalQuestion],
    retriever: Retriever,
    pipeline: QAPipeline | None,
    options: SearchOptions,
    progress: ProgressCallback | None = None,
    journal: RowJournal | None = None,
) -> list[QuestionRow]:
    """Score every question, each asked with ``options``; ``pipeline=None`` scores retrieval only.

    With a ``journal``, questions it already holds are not asked again and each new row is
    appended to it as soon as it is scored.
    """
    done_before = journal.load() if journal else {}
    rows = [done_before[q.qid] for q in questions if q.qid in done_before]
    if journal:
        journal.start(rows)
    for question in questions:
        if question.qid not in done_before:
            row = score_retrieval(question, retriever, options)
            if pipeline is not None:
                answer = pipeline.ask(question.question, question.history, options.top_k, options.where, options.mode)
                row = score_answer(question, answer, row)
            rows.append(row)
            if journal:
                journal.append(row)
        if progress:
            progress("questions", len(rows), len(questions))
    order = {q.qid: i for i, q in enumerate(questions)}
    return sorted(rows, key=lambda row: order[row.qid])


# --- summaries -----------------------------------------------------------------------------


def latency_summary(rows: Sequence[QuestionRow]) -> dict[str, float | None]:
    """p50 and p95 of each timed step, in milliseconds."""
    summary: dict[str, float | None] = {}
    for step in LATENCY_STEPS:
        values = [v for v in (getattr(row, step) for row in rows) if v is not None]
        summary[f"{step}_p50"] = percentile(values, 50)
        summary[f"{step}_p95"] = percentile(values, 95)
    return summary


def _span_recall(row: QuestionRow) -> float | None:
    if row.answer is None or not row.answerable:
        return None
    return 0.0 if row.refused else answer_span_recall(row.answer, row.expected)


def _shown_citations(row: QuestionRow) -> bool:
    """Whether the row's citations count for citation precision: an answer (not a refusal) to an answerable question."""
    return row.answer is not None and row.answerable and not row.refused


def _gold_citation_share(row: QuestionRow) -> float | None:
    """Gold citations over all citations shown, the unverified ones included."""
    if not _shown_citations(row):
        return None
    return ratio(sum(c["gold"] for c in row.citations), len(row.citations) + row.unsupported_citations)


def _list_part_recall(row: QuestionRow) -> float | None:
    return row.part_recall if row.answer is not None and len(row.expected) > 1 else None


def _list_precision(row: QuestionRow) -> float | None:
    """The share of listed items that are gold, for an answer (not a refusal) to a multi-part question."""
    if row.answer is None or row.refused or len(row.expected) < 2:
        return None
    return list_precision(row.answer, row.expected)


Outcome = Callable[[QuestionRow], "float | None"]
OUTCOMES: dict[str, Outcome] = {
    "hit@1": lambda row: hit_at(row.rank, 1) if row.has_gold else None,
    "hit@5": lambda row: hit_at(row.rank, 5) if row.has_gold else None,
    "mrr@10": lambda row: reciprocal_rank(row.rank, RETRIEVAL_K) if row.has_gold else None,
    "answer_accuracy": lambda row: None if row.answer is None else float(bool(row.correct)),
    "answer_span_recall": _span_recall,
    "list_part_recall": _list_part_recall,
    "list_precision": _list_precision,
    "refused_answerable": lambda row: None if row.answer is None or not row.answerable else float(not row.refused),
    "refusal_recall": lambda row: None if row.answer is None or row.answerable else float(bool(row.refused)),
    "citation_precision": _gold_citation_share,
    "citation_recall": lambda row: (
        None if row.answer is None or not row.answerable or row.refused else float(any(c["gold"] for c in row.citations))
    ),
}
"""Each metric's outcome for one question (None where it does not apply); higher is better.

The baseline gate compares them question by question. A rate metric is the mean of its outcome,
except citation precision, which pools citations over questions (its outcome is one question's
share of gold citations). ``list_precision`` is the mean share of listed items that are gold,
over answers to multi-part questions (shown, not gated). ``refused_answerable`` counts the answerable questions refused (its
outcome: 1 when not refused). Refusal precision pools both kinds of question and has no outcome
of its own: its flips are those of ``refused_answerable`` and ``refusal_recall``.
"""


def outcomes(rows: Sequence[QuestionRow], metric: str) -> list[float]:
    """The outcomes of ``metric`` for the questions it applies to."""
    return [value for value in map(OUTCOMES[metric], rows) if value is not None]


def summarise(rows: Sequence[QuestionRow]) -> dict[str, float | int | None]:
    """All metrics for a group of questions; None where a metric does not apply.

    Retrieval metrics cover questions with gold evidence; answer metrics cover questions the
    LLM answered; citation metrics cover the answers (not refusals) to answerable questions,
    and unverified citations count against precision.
    """
    answered = [row for row in rows if row.answer is not None]
    shown = [row for row in rows if _shown_citations(row)]
    cited = sum(len(row.citations) + row.unsupported_citations for row in shown)
    refusal_precision, _ = refusal_precision_recall(
        [not row.answerable for row in answered], [bool(row.refused) for row in answered]
    )
    pooled = {
        "refusal_precision": refusal_precision,
        "citation_precision": ratio(sum(c["gold"] for row in shown for c in row.citations), cited),
    }
    not_refused = outcomes(rows, "refused_answerable")
    return {
        "questions": len(rows),
        **{m: pooled[m] if m in pooled else mean(outcomes(rows, m)) for m in RATE_METRICS},
        "refused_answerable": not_refused.count(0.0) if not_refused else None,
        **latency_summary(rows),
    }


def summarise_by_category(rows: Sequence[QuestionRow]) -> dict[str, dict[str, float | int | None]]:
    """:func:`summarise` per category, in order of first appearance."""
    categories = dict.fromkeys(row.category for row in rows)
    return {category: summarise([row for row in rows if row.category == category]) for category in categories}
