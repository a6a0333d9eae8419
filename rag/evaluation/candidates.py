"""Feedback becomes test cases: 👎 answers and refused questions, gathered for an evaluator to label.

``rag eval candidates`` reads the web chat's feedback in ``RAG_DB`` (records of
:func:`rag.web.feedback.feedback_record`: the 👎 ones, with their comment) and its saved
conversations (:mod:`rag.web.conversations`: the refused answers, every user's) and writes one
JSONL row per question in the regression-set schema of ``eval/questions.jsonl``: ``category``,
``answers``, ``evidence`` and ``source`` are left empty for the evaluator, next to what the chat
answered and the passages it was shown. The feedback keeps only the passages' chunk ids;
their text comes from the index, empty when the index no longer holds them.

A question is listed once (compared after :func:`rag.evaluation.metrics.normalise`), 👎 first. The
rows already in the output file are kept as they are, labels included; new ones are numbered
after them (``c001``, ``c002``, ...). ``rag eval validate`` then checks the labelled rows
(:func:`rag.evaluation.validate.check_candidates`).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.accounts.db import Database
from rag.components import Components
from rag.config import Settings
from rag.errors import InputError
from rag.evaluation.metrics import normalise
from rag.index.chunking import Chunk

CANDIDATE_QID = re.compile(r"^c(\d+)$")


@dataclass(frozen=True)
class Candidate:
    """A question to label: what the chat answered, from which passages, why it is here, and when."""

    question: str
    answer_given: str
    passages: list[dict[str, str]]
    comment: str
    date: str
    kind: str  # "thumbs_down" or "refused"

    def row(self, qid: str) -> dict[str, Any]:
        """The JSONL row, the fields the evaluator fills in left empty."""
        return {"qid": qid, **asdict(self), "category": "", "answers": [], "evidence": [], "source": []}


def passage(chunk_id: str, chunk: Chunk | None) -> dict[str, str]:
    """A passage shown with the answer; title, text and source empty when the index no longer holds it."""
    return {
        "chunk_id": chunk_id,
        "title": chunk.title if chunk else "",
        "text": chunk.text if chunk else "",
        "source": chunk.source if chunk else "",
    }


def down_votes(db: Database, since: str = "") -> list[dict[str, Any]]:
    """The 👎 records of the web chat's feedback from ``since`` (an ISO date) on (one without a question skipped)."""
    from rag.web.feedback import FeedbackStore

    return [record for record in FeedbackStore(db).records(since, "down") if record["question"]]


def index_chunks(components: Components, wanted: set[str]) -> dict[str, Chunk]:
    """The chunks of the index whose ids are ``wanted``, by id (none without an index)."""
    if not wanted or not components.store_exists():
        return {}
    store = components.open_store()
    chunks = (chunk for document in store.documents() for chunk in store.document_chunks(document.doc_id))
    return {chunk.chunk_id: chunk for chunk in chunks if chunk.chunk_id in wanted}


def from_feedback(record: Mapping[str, Any], chunks: Mapping[str, Chunk]) -> Candidate:
    """The candidate of one 👎 record; the question is the standalone one a follow-up was rewritten into."""
    ids = [str(chunk_id) for chunk_id in record.get("passage_chunk_ids") or []]
    return Candidate(
        question=record.get("standalone_question") or record["question"],
        answer_given=str(record.get("answer", "")),
        passages=[passage(chunk_id, chunks.get(chunk_id)) for chunk_id in ids],
        comment=str(record.get("comment", "")),
        date=str(record.get("time", "")),
        kind="thumbs_down",
    )


def refused_answers(db: Path, since: str = "") -> Iterator[Candidate]:
    """The refused answers of the saved conversations changed from ``since`` on, oldest first (none without a file)."""
    from rag.web.conversations import turn_from_dict

    if not db.is_file():
        return
    query = "SELECT turns, updated_at FROM conversations WHERE updated_at >= ? ORDER BY updated_at, rowid"
    try:
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            conversations = conn.execute(query, (since,)).fetchall()
    except sqlite3.Error as exc:
        raise InputError(f"cannot read the saved conversations {db}: {exc}") from exc
    for turns, updated_at in conversations:
        for turn in map(turn_from_dict, json.loads(turns)):
            if turn.answer and turn.answer.refused:
                answer = turn.answer
                passages = [passage(hit.chunk.chunk_id, hit.chunk) for hit in answer.passages]
                question = answer.standalone_question or turn.question
                yield Candidate(question, answer.answer, passages, "", updated_at, "refused")


def gather(settings: Settings, feedback_db: Database, conversations_db: Path, since: str = "") -> list[Candidate]:
    """The 👎 answers, then the refused ones, from ``since`` (an ISO date; "" for all) on, repeats included."""
    records = down_votes(feedback_db, since)
    wanted = {str(chunk_id) for record in records for chunk_id in record.get("passage_chunk_ids") or []}
    chunks = index_chunks(Components(settings), wanted)
    return [from_feedback(record, chunks) for record in records] + list(refused_answers(conversations_db, since))


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a candidates file (none when it does not exist); a malformed line is an :class:`InputError`."""
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}, line {number}: {exc}") from exc
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise InputError(f"{path}, line {number}: not a row with a question")
        rows.append(row)
    return rows


def new_rows(found: Sequence[Candidate], existing: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the questions of ``found`` that ``existing`` rows do not hold, each once, numbered after them."""
    seen = {normalise(row["question"]) for row in existing}
    numbers = [int(match[1]) for row in existing if (match := CANDIDATE_QID.match(str(row.get("qid", ""))))]
    start = max(numbers, default=0) + 1
    rows: list[dict[str, Any]] = []
    for candidate in found:
        key = normalise(candidate.question)
        if key not in seen:
            seen.add(key)
            rows.append(candidate.row(f"c{start + len(rows):03d}"))
    return rows


def jsonl(rows: Sequence[Mapping[str, Any]]) -> str:
    """``rows`` as JSON lines."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows`` as JSONL through a temporary file renamed over ``path``: labels are never half-written.

    Owner-only (0600), like the database the feedback and the conversations come from.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}"
    try:
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
            handle.write(jsonl(rows))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@dataclass(frozen=True)
class Collected:
    """What one ``rag eval candidates`` found: the new rows, the candidates before de-duplication, the rows kept."""

    added: list[dict[str, Any]]
    found: int
    kept: int

    def summary(self, out: Path | None) -> str:
        kinds = Counter(row["kind"] for row in self.added)
        text = (
            f"{len(self.added)} new candidates ({kinds['thumbs_down']} thumbs-down, {kinds['refused']} refused; "
            f"{self.found - len(self.added)} repeated or listed already)"
        )
        return text + (f"; {out} holds {self.kept + len(self.added)} rows" if out else "")


def collect(settings: Settings, out: Path | None, feedback_db: Database, conversations_db: Path, since: str = "") -> Collected:
    """Gather the candidates (the feedback in ``feedback_db``) and, with ``out``, add the new ones to that file
    (its rows kept as they are)."""
    existing = read_rows(out) if out else []
    found = gather(settings, feedback_db, conversations_db, since)
    added = new_rows(found, existing)
    if out:
        write_rows(out, [*existing, *added])
    return Collected(added, len(found), len(existing))
