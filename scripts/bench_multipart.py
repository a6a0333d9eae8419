"""Questions in several parts answered two ways in one run: one generation per part (what ships)
or one prompt that lists the parts over the union of their passages.

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
import typing
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from rag.components import Components
from rag.config import Settings
from rag.evaluation.scoring import SearchOptions, load_questions, run_questions, summarise
from rag.index.filters import SearchFilter
from rag.qa.multipart import union_passages
from rag.qa.parts import Part, split_question
from rag.qa.pipeline import Event, QAPipeline, select_context
from rag.qa.queue import Ticket
from rag.qa.retriever import SearchMode
from rag.text_script import detect_script


class OnePromptPipeline(QAPipeline):
    """The shipped pipeline, except that a question in parts is answered in one generation."""

    def _stream_parts(
        self,
        question: str,
        standalone: str,
        parts: Sequence[Part],
        k: int,
        ticket: Ticket,
        started: float,
        timings: dict[str, float],
        rewritten_at: float,
        where: SearchFilter | None,
        mode: SearchMode,
    ) -> Iterator[Event]:
        part_hits = [
            select_context(self.retriever.search(part.question, k=k, mode=mode, where=where), self.max_context_chars)
            for part in parts
        ]
        context, _ = union_passages(part_hits, [part.question for part in parts])
        yield Event("passages", passages=context)
        listing = f"{standalone}（请逐一回答：{'；'.join(part.question for part in parts)}）"
        budget = self.shown_chars * len(parts)
        events = self._answer_part(listing, context, detect_script(question), started, timings, ticket, budget)
        outcome = yield from typing.cast(typing.Generator[Event, None, typing.Any], events)
        checked = outcome.attempt.checked
        yield Event("done", answer=self._finish(question, standalone, checked, context, timings, [outcome], started))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, required=True, help="question set (JSONL); only questions in parts are used")
    parser.add_argument("--index", type=Path, required=True, help="an index built from the set's corpus")
    parser.add_argument("--out", type=Path, help="write the summaries here (JSON)")
    parser.add_argument("--arm", choices=("per_part", "one_prompt"), action="append", help="run only these (default: both)")
    args = parser.parse_args(argv)
    questions = [q for q in load_questions(args.questions) if split_question(q.question) and not q.history]
    components = Components(replace(Settings(), index_dir=args.index))
    shipped = components.pipeline()
    one_prompt = OnePromptPipeline(
        shipped.retriever, shipped.generator, shipped.top_k, queue=shipped.queue, shown_chars=shipped.shown_chars
    )
    results = {}
    for name, pipeline in (("per_part", shipped), ("one_prompt", one_prompt)):
        if args.arm and name not in args.arm:
            continue
        started = time.perf_counter()
        rows = run_questions(questions, shipped.retriever, pipeline, SearchOptions())
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
