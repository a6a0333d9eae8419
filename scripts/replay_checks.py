"""Re-check stored answers with the current checks, without the LLM: which outcomes would change.

Two replays over an eval index's chunks (``<out>/index/gen-*/chunks.jsonl``):

* ``drafts REPORT CHUNKS``: every answered row's draft in a ``rag eval`` report goes through
  :func:`rag.qa.release.check_draft` with the passages the row retrieved (the first three:
  top-k and the context budget may have shown fewer, so a marker may point elsewhere); prints
  each row whose answer would become a refusal, a form flaw or another text;
* ``gold QUESTIONS CHUNKS``: every gold answer of a question file, cited ``[1]`` to the first
  chunk holding it (and its evidence), goes through the citation check with and without the
  question check; prints the answers the question check would withhold (its false refusals,
  with one passage as the only context, so a pessimistic count)::

    python3 scripts/replay_checks.py drafts eval/hard/baseline.json out/nm-before/index/gen-000001/chunks.jsonl
    python3 scripts/replay_checks.py gold eval/hard/questions.jsonl out/nm-before/index/gen-000001/chunks.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rag.index.chunking import Chunk
from rag.qa.citations import check_answer
from rag.qa.qualifiers import answers_question
from rag.qa.release import check_draft


def load_chunks(path: Path) -> dict[str, Chunk]:
    """The chunks of an index's ``chunks.jsonl`` by id."""
    chunks = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        chunks[raw["chunk_id"]] = Chunk(
            raw["chunk_id"], raw["doc_id"], raw.get("title", ""), raw.get("source", ""), raw["text"], 0
        )
    return chunks


def replay_drafts(report: Path, chunks: dict[str, Chunk]) -> int:
    """Print the answered rows whose checked answer would change; return how many."""
    changed = 0
    for row in json.loads(report.read_text(encoding="utf-8"))["questions"]:
        if row["refused"] or not row.get("draft"):
            continue
        passages = [chunks[hit["chunk_id"]] for hit in row["retrieved"][:3] if hit["chunk_id"] in chunks]
        checked, flaw = check_draft(row["draft"], row["standalone_question"], passages, passages, "simplified")
        if checked.refused or flaw or checked.text != row["answer"]:
            changed += 1
            now = "refused" if checked.refused else f"flaw: {flaw}" if flaw else f"now {checked.text[:80]!r}"
            was = "correct" if row["correct"] else "wrong"
            print(f"{row['qid']} ({row['category']}, {was}) -> {now} | {row['question']}")
    print(f"{changed} answered rows would change")
    return changed


def replay_gold(questions: Path, chunks: Sequence[Chunk]) -> int:
    """Print the gold answers the question check would withhold; return how many."""
    lost = total = 0
    for line in questions.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not row.get("answers") or row.get("history"):
            continue
        evidence = row.get("evidence") or []
        for alternatives in row["answers"]:
            answer = alternatives[0]
            holding = [c for c in chunks if answer in c.text]
            cited = [c for c in holding if any(e[:15] in c.text for e in evidence)] or holding
            if not cited or check_answer(f"{answer}[1]。", cited[:1]).refused:
                continue
            total += 1
            if check_answer(f"{answer}[1]。", cited[:1], answers_question(row["question"], cited[:1])).refused:
                lost += 1
                print(f"{row['qid']} ({row['category']}) {row['question']} | {answer}")
    print(f"{lost} of {total} gold answers withheld by the question check")
    return lost


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["drafts", "gold"])
    parser.add_argument("source", type=Path, help="report.json (drafts) or a question file (gold)")
    parser.add_argument("chunks", type=Path, help="chunks.jsonl of the index the answers came from")
    args = parser.parse_args(argv)
    chunks = load_chunks(args.chunks)
    if args.kind == "drafts":
        replay_drafts(args.source, chunks)
    else:
        replay_gold(args.source, list(chunks.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
