"""A CMRC 2018 refusal set: questions whose gold paragraphs were removed from a copy of the index.

Picks ``--refusals`` paragraphs (seeded) outside the paragraphs of the first ``--skip`` questions
(those stay answerable for ``rag eval --limit 300``), removes them from a copy of a CMRC index
and marks one question of each as unanswerable; ``--answerable`` questions of kept paragraphs
are mixed in (two refusals, one answerable, in turn), so one ``rag eval`` run reports refusal
recall, refusal precision and answer accuracy together::

    python3 scripts/make_cmrc_refusal_set.py --index out/cmrc/index --out out/cmrc-refusal
    rag eval --questions out/cmrc-refusal/questions.jsonl --index out/cmrc-refusal/index --out out/cmrc-refusal/run
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.index.ingest import remove
from rag.index.locations import open_store

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pick(
    queries: Sequence[dict[str, Any]], refusals: int, answerable: int, skip: int, seed: int
) -> tuple[list[str], list[dict[str, Any]]]:
    """The paragraphs to remove and the question rows (refusals marked unanswerable), interleaved."""
    by_pid: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in queries:
        if len(row.get("gold_pids") or []) == 1:
            by_pid[row["gold_pids"][0]].append(row)
    reserved = {pid for row in queries[:skip] for pid in row.get("gold_pids") or []}
    candidates = sorted(pid for pid in by_pid if pid not in reserved)
    rng = random.Random(seed)
    removed = sorted(rng.sample(candidates, refusals))
    kept = [pid for pid in candidates if pid not in set(removed)]
    unanswerable = [
        {
            "qid": f"REFUSE_{row['qid']}",
            "question": row["question"],
            "category": "unanswerable",
            "answers": [],
            "removed_pids": row["gold_pids"],
        }
        for row in (rng.choice(by_pid[pid]) for pid in removed)
    ]
    answered = [{**rng.choice(by_pid[pid]), "category": "answerable"} for pid in sorted(rng.sample(kept, answerable))]
    rows: list[dict[str, Any]] = []
    while unanswerable or answered:
        rows += unanswerable[:2] + answered[:1]
        unanswerable, answered = unanswerable[2:], answered[1:]
    return removed, rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index directory of the whole CMRC dev corpus")
    parser.add_argument("--out", type=Path, required=True, help="writes questions.jsonl and index/ here")
    parser.add_argument("--queries", type=Path, default=SHARED / "cmrc2018_dev.queries.jsonl")
    parser.add_argument("--refusals", type=int, default=100)
    parser.add_argument("--answerable", type=int, default=50)
    parser.add_argument("--skip", type=int, default=300, help="keep the paragraphs of the first N questions")
    parser.add_argument("--seed", type=int, default=2018)
    args = parser.parse_args(argv)
    try:
        removed, rows = pick(read_jsonl(args.queries), args.refusals, args.answerable, args.skip, args.seed)
        index = args.out / "index"
        if index.exists():
            shutil.rmtree(index)
        shutil.copytree(args.index, index)
        for pid in removed:
            remove(index, pid)
        left = {d.doc_id for d in open_store(index).documents()}
    except (OSError, ValueError, RagError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if left & set(removed):
        print("error: some gold paragraphs are still in the index", file=sys.stderr)
        return 1
    questions = args.out / "questions.jsonl"
    questions.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"{len(removed)} paragraphs removed ({len(left)} left); {len(rows)} questions in {questions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
