"""Questions in several parts answered two ways in one run: one generation per part, or one
prompt that lists the parts over the union of their passages (what ships does the first for
coordinated items, the second for several asks about one subject: rag.qa.parts.Part.together).

Both retrieve each part on its own; they differ only in how the model is asked. Scored with
``rag eval``'s own functions (answer accuracy, part recall, citation precision) on the questions
that :func:`rag.qa.parts.split_question` splits; the index is an existing one (``rag ingest``)::

    python scripts/bench_multipart.py --questions eval/hard/questions.jsonl --index out/hard-index \\
        --out benchmarks/multipart-prompting.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from unittest import mock

from rag.components import Components
from rag.config import Settings
from rag.evaluation.scoring import SearchOptions, load_questions, run_questions, summarise
from rag.qa.parts import Part, split_question


def forced(together: bool) -> Callable[[str], list[Part]]:
    """:func:`split_question` with every part answered one way: all together, or each on its own."""

    def split(question: str) -> list[Part]:
        return [replace(part, together=together) for part in split_question(question)]

    return split


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, required=True, help="question set (JSONL); only questions in parts are used")
    parser.add_argument("--index", type=Path, required=True, help="an index built from the set's corpus")
    parser.add_argument("--out", type=Path, help="write the summaries here (JSON)")
    parser.add_argument("--arm", choices=("per_part", "one_prompt"), action="append", help="run only these (default: both)")
    args = parser.parse_args(argv)
    questions = [q for q in load_questions(args.questions) if split_question(q.question) and not q.history]
    pipeline = Components(replace(Settings(), index_dir=args.index)).pipeline()
    results = {}
    for name, together in (("per_part", False), ("one_prompt", True)):
        if args.arm and name not in args.arm:
            continue
        started = time.perf_counter()
        with mock.patch("rag.qa.pipeline.split_question", forced(together)):
            rows = run_questions(questions, pipeline.retriever, pipeline, SearchOptions())
        summary = summarise(rows)
        results[name] = {
            "questions": len(rows),
            "answer_accuracy": summary["answer_accuracy"],
            "list_part_recall": summary["list_part_recall"],
            "citation_precision": summary["citation_precision"],
            "refused_answerable": summary["refused_answerable"],
            "first_token_ms_p50": summary["first_token_ms_p50"],
            "total_ms_p50": summary["total_ms_p50"],
            "wall_s": round(time.perf_counter() - started, 1),
            "rows": [{"qid": r.qid, "correct": r.correct, "part_recall": r.part_recall, "answer": r.answer} for r in rows],
        }
        print(name, {k: v for k, v in results[name].items() if k != "rows"}, flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
