"""The evaluation behind ``rag eval``: a question set scored against an index and the LLM.

Two question formats load into one :class:`EvalQuestion`:

* the regression set (``eval/questions.jsonl``): ``answers`` is a list of required parts, each
  a list of accepted alternatives (``[]`` when unanswerable); ``evidence`` quotes the source
  text; follow-ups carry ``history``;
* external sets (CMRC 2018): ``answers`` is one flat list of alternatives and ``gold_pids``
  names the corpus rows (``pid``, indexed as ``doc_id``) that hold the answer.

Retrieval is scored with its own top-:data:`RETRIEVAL_K` search for every question, whether or
not the LLM runs; answers, refusals and citations are scored from :meth:`QAPipeline.ask`.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from rich.console import Console

from .chunking import Chunk, ChunkingConfig
from .config import REPO_ROOT, Settings
from .documents import file_sha256, iter_input_files
from .embedders import Embedder, embedder_for
from .errors import InputError
from .eval_report import print_deltas, print_summary, write_report
from .generators import Generator, Message
from .ingest import ProgressCallback, ingest, remove
from .metrics import (
    LATENCY_STEPS,
    RATE_METRICS,
    all_parts_found,
    answer_span_recall,
    contains_any,
    contains_quote,
    first_relevant_rank,
    hit_at,
    mean,
    percentile,
    ratio,
    reciprocal_rank,
    refusal_precision_recall,
)
from .pipeline import Answer, QAPipeline
from .progress import RichProgress, progress_bar
from .retriever import SEARCH_MODES, Retriever, SearchHit, SearchMode
from .stores import IndexStore

RETRIEVAL_K = 10
PASSAGES_KEPT = 3  # retrieved passages stored per question for the failure listing
CLIP_CHARS = 200
REGRESSION_EXIT_CODE = 3
JOURNAL_NAME = "rows.partial.jsonl"  # rows of an unfinished run, in the --out folder


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
    refused: bool | None = None
    correct: bool | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)  # verified citations only
    unsupported_citations: int = 0
    first_token_ms: float | None = None
    total_ms: float | None = None


class ModeRetriever(Retriever):
    """A retriever searching in a fixed mode, so the pipeline answers from the mode under test."""

    def __init__(self, index_dir: Path, embedder: Embedder, mode: SearchMode) -> None:
        super().__init__(index_dir, embedder)
        self.mode = mode

    def search(self, query: str, k: int = 5, mode: SearchMode | None = None) -> list[SearchHit]:
        return super().search(query, k=k, mode=mode or self.mode)


def _passage(chunk: Chunk, gold: bool) -> dict[str, Any]:
    text = chunk.text if len(chunk.text) <= CLIP_CHARS else chunk.text[:CLIP_CHARS] + "…"
    return {"doc_id": chunk.doc_id, "chunk_id": chunk.chunk_id, "title": chunk.title, "text": text, "gold": gold}


def score_retrieval(question: EvalQuestion, retriever: Retriever) -> QuestionRow:
    """The row for ``question`` with its top-:data:`RETRIEVAL_K` retrieval scored."""
    started = time.perf_counter()
    hits = retriever.search(question.retrieval_query, k=RETRIEVAL_K)
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
    )


def score_answer(question: EvalQuestion, answer: Answer, row: QuestionRow) -> QuestionRow:
    """``row`` completed with the scored answer, refusal, citations and timings."""
    verified = [c for c in answer.citations if c.verified]
    cited = [(c, answer.passages[c.n - 1].chunk) for c in verified]
    correct = answer.refused if not question.answerable else not answer.refused and all_parts_found(answer.answer, question.parts)
    return replace(
        row,
        standalone_question=answer.standalone_question,
        answer=answer.answer,
        draft=answer.draft,
        refused=answer.refused,
        correct=correct,
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
        lines = [json.dumps({"key": self.key}, ensure_ascii=False)] + [json.dumps(asdict(row), ensure_ascii=False) for row in kept]
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
    top_k: int,
    progress: ProgressCallback | None = None,
    journal: RowJournal | None = None,
) -> list[QuestionRow]:
    """Score every question; ``pipeline=None`` scores retrieval only.

    With a ``journal``, questions it already holds are not asked again and each new row is
    appended to it as soon as it is scored.
    """
    done_before = journal.load() if journal else {}
    rows = [done_before[q.qid] for q in questions if q.qid in done_before]
    if journal:
        journal.start(rows)
    for question in questions:
        if question.qid not in done_before:
            row = score_retrieval(question, retriever)
            if pipeline is not None:
                row = score_answer(question, pipeline.ask(question.question, question.history, top_k), row)
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


def summarise(rows: Sequence[QuestionRow]) -> dict[str, float | int | None]:
    """All metrics for a group of questions; None where a metric does not apply.

    Retrieval metrics cover questions with gold evidence; answer metrics cover questions the
    LLM answered; citation metrics cover answerable ones.
    """
    ranks = [row.rank for row in rows if row.has_gold]
    answered = [row for row in rows if row.answer is not None]
    responded = [row for row in answered if row.answerable and not row.refused]
    citations = [c for row in answered if row.answerable for c in row.citations]
    refusal_precision, refusal_recall = refusal_precision_recall(
        [not row.answerable for row in answered], [bool(row.refused) for row in answered]
    )
    return {
        "questions": len(rows),
        "hit@1": mean([hit_at(rank, 1) for rank in ranks]),
        "hit@5": mean([hit_at(rank, 5) for rank in ranks]),
        "mrr@10": mean([reciprocal_rank(rank, RETRIEVAL_K) for rank in ranks]),
        "answer_accuracy": mean([float(bool(row.correct)) for row in answered]),
        "answer_span_recall": mean([0.0 if row.refused else answer_span_recall(row.answer or "", row.expected)
                                    for row in answered if row.answerable]),
        "refusal_precision": refusal_precision,
        "refusal_recall": refusal_recall,
        "citation_precision": ratio(sum(c["gold"] for c in citations), len(citations)),
        "citation_recall": mean([float(any(c["gold"] for c in row.citations)) for row in responded]),
        **latency_summary(rows),
    }


def summarise_by_category(rows: Sequence[QuestionRow]) -> dict[str, dict[str, float | int | None]]:
    """:func:`summarise` per category, in order of first appearance."""
    categories = dict.fromkeys(row.category for row in rows)
    return {category: summarise([row for row in rows if row.category == category]) for category in categories}


# --- baseline comparison -------------------------------------------------------------------


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


# --- the command ---------------------------------------------------------------------------


def eval_index_dir(index: Path | None, corpus: Sequence[Path], out_dir: Path, default: Path) -> Path:
    """``--index`` if given; else ``<out>/index`` for an eval corpus, or the default index."""
    if index is not None:
        return index
    return out_dir / "index" if corpus else default


def sync_index(corpus: Sequence[Path], settings: Settings, embedder: Embedder, progress: ProgressCallback) -> None:
    """Make the index at ``settings.index_dir`` hold exactly ``corpus`` (unchanged files are skipped)."""
    chunking = ChunkingConfig(settings.chunk_size, settings.chunk_overlap)
    report = ingest(corpus, settings.index_dir, embedder, chunking, progress=progress)
    if report.files_failed:
        failed = "; ".join(f"{path}: {message}" for path, message in report.files_failed)
        raise InputError(f"the eval corpus could not be ingested: {failed}")
    wanted = {str(path.resolve()) for path in iter_input_files(corpus)}
    for source in set(IndexStore.load(settings.index_dir).sources()) - wanted:
        remove(settings.index_dir, source)


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """``git describe --always --dirty`` of the checkout, or None outside git."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def build_report(rows: Sequence[QuestionRow], config: dict[str, Any]) -> dict[str, Any]:
    """The ``report.json`` payload (a ``baseline`` section is added when comparing)."""
    return {
        "config": config,
        "overall": summarise(rows),
        "per_category": summarise_by_category(rows),
        "questions": [asdict(row) for row in rows],
    }


def open_eval(
    settings: Settings,
    corpus: Sequence[Path],
    mode: SearchMode,
    top_k: int,
    retrieval_only: bool,
    generator: Generator | None,
    progress: ProgressCallback,
) -> tuple[ModeRetriever, QAPipeline | None]:
    """The retriever (after syncing ``corpus`` into the index) and, unless retrieval only, the pipeline."""
    embedder = embedder_for(settings)
    if corpus:
        sync_index(corpus, settings, embedder, progress)
    retriever = ModeRetriever(settings.index_dir, embedder, mode)
    if retrieval_only:
        return retriever, None
    if generator is None:
        from .generators import make_generator

        generator = make_generator(settings)
    return retriever, QAPipeline(retriever, generator, top_k=top_k)


def run_config(
    questions: Path,
    count: int,
    retriever: ModeRetriever,
    pipeline: QAPipeline | None,
    corpus: Sequence[Path],
    top_k: int,
) -> dict[str, Any]:
    """The ``config`` section of a report: what was run, on what, when."""
    store = retriever.store
    return {
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "questions": {"path": str(questions), "sha256": file_sha256(Path(questions)), "count": count},
        "models": {"embedder": retriever.embedder.model_id, "llm": pipeline.generator.model_id if pipeline else None},
        "index": {
            "path": str(retriever.index_dir),
            "documents": len(store.documents()),
            "chunks": len(store.chunks),
            "chunking": store.chunking.to_dict(),
            "corpus": [str(path) for path in corpus],
        },
        "mode": retriever.mode,
        "top_k": top_k,
        "retrieval_k": RETRIEVAL_K,
        "retrieval_only": pipeline is None,
    }


def run_key(config: Mapping[str, Any]) -> dict[str, Any]:
    """What must match for rows of an earlier, interrupted run to be reused: not its date or size."""
    key = {name: value for name, value in config.items() if name not in ("date", "git_commit")}
    key["questions"] = {name: value for name, value in config["questions"].items() if name != "count"}
    return key


def run_cli_eval(
    *,
    settings: Settings,
    index: Path | None,
    questions: Path,
    corpus: Sequence[Path],
    out_dir: Path,
    baseline: Path | None,
    retrieval_only: bool,
    limit: int | None,
    mode: str,
    top_k: int,
    console: Console,
    generator: Generator | None = None,
    fresh: bool = False,
) -> int:
    """``rag eval``: score, write report.json/.md/chart.png to ``out_dir``, return the exit code.

    The code is :data:`REGRESSION_EXIT_CODE` when a metric fell beyond its tolerance against
    ``baseline``, else 0. ``generator`` replaces the configured LLM (tests pass a fake). Rows are
    journalled in ``out_dir`` as they are scored, so an interrupted run resumes where it stopped;
    ``fresh`` discards such a journal.
    """
    if mode not in SEARCH_MODES:
        raise InputError(f"unknown search mode '{mode}'; choose one of {', '.join(SEARCH_MODES)}")
    stored = load_report(baseline) if baseline else None
    items = load_questions(questions, limit)
    settings = replace(settings, index_dir=eval_index_dir(index, corpus, out_dir, settings.index_dir))
    with progress_bar(console) as bar:
        progress = RichProgress(bar)
        retriever, pipeline = open_eval(settings, corpus, mode, top_k, retrieval_only, generator, progress)  # type: ignore[arg-type]
        config = run_config(questions, len(items), retriever, pipeline, corpus, top_k)
        journal = RowJournal(out_dir / JOURNAL_NAME, run_key(config))
        if fresh:
            journal.finish()
        resumed = len(set(journal.load()) & {q.qid for q in items})
        if resumed:
            console.print(f"resuming: {resumed} of {len(items)} questions already scored in {journal.path}", highlight=False)
        rows = run_questions(items, retriever, pipeline, top_k, progress, journal)
    report = build_report(rows, config)
    deltas = compare(stored["overall"], report["overall"]) if stored else []
    if stored:
        report["baseline"] = {"path": str(baseline), "deltas": [d.to_dict() for d in deltas]}
    written = write_report(report, out_dir)
    print_summary(report, console)
    if stored:
        if stored.get("config", {}).get("questions", {}).get("sha256") != report["config"]["questions"]["sha256"]:
            console.print("[yellow]note:[/] the baseline was made from a different question file")
        print_deltas(report["baseline"]["deltas"], console)
    journal.finish()
    console.print("wrote " + ", ".join(str(path) for path in written), highlight=False)
    return REGRESSION_EXIT_CODE if any(d.regressed for d in deltas) else 0
