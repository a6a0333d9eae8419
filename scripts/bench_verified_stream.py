"""Benchmark verified streaming against raw streaming, in one run, with the real bundled models.

Each question goes once through the pipeline's stream, which carries both: ``token`` events
(the model's raw text as it writes) and ``text`` events (sentences released once the check
keeps them). Per question: the first raw token, the first released text, and per sentence the
delay between the raw sentence end (the token that brought its 。！？； or line end, or the last
token for a final sentence without one) and the release that completes the same sentence of the
answer (counted in order; refusals have no per-sentence delays). A retried question counts the
raw sentences of its last attempt. One unmeasured warm-up question first.
Results: benchmarks/verified-stream.{json,md}.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import command_line, log, machine_info, machine_markdown, markdown_table, median, write_results  # noqa: E402
from bench_generation import EVAL_QUESTIONS, standalone_questions  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.models.embedders import embedder_for  # noqa: E402
from rag.models.generators import LlamaCppGenerator  # noqa: E402
from rag.models.llm_weights import ensure_bundled_gguf  # noqa: E402
from rag.qa.pipeline import QAPipeline  # noqa: E402
from rag.qa.retriever import Retriever  # noqa: E402

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")
_MARKERS = re.compile(r"[\[【][^\]】]*[\]】]")


def sentences(text: str, finished: bool) -> int:
    """How many sentences of ``text`` are complete (all of them once ``finished``); markers alone are none."""
    parts = [p for p in _SENTENCE_END.split(text) if _MARKERS.sub("", p).strip(" \n。！？!?；;")]
    if not finished and parts and not re.search(r"[。！？!?；;\n]\s*$", parts[-1]):
        parts = parts[:-1]
    return len(parts)


def measure(pipeline: QAPipeline, question: str) -> dict[str, Any]:
    """One streamed answer: when raw and released sentences completed, in ms from the start."""
    started = time.perf_counter()
    raw, released = "", ""
    raw_ends: list[float] = []
    text_ends: list[float] = []
    first_raw = first_text = last_token = None
    answer = None
    for event in pipeline.stream(question):
        now = (time.perf_counter() - started) * 1000
        if event.kind == "retry":
            raw, raw_ends = "", []
        elif event.kind == "token":
            first_raw = first_raw if first_raw is not None else now
            raw += event.text
            raw_ends += [now] * (sentences(raw, False) - len(raw_ends))
            last_token = now
        elif event.kind == "text":
            first_text = first_text if first_text is not None else now
            released += event.text
            text_ends += [now] * (sentences(released, False) - len(text_ends))
        elif event.kind == "done":
            answer = event.answer
            raw_ends += [last_token or now] * (sentences(raw, True) - len(raw_ends))
            text_ends += [now] * (sentences(released, True) - len(text_ends))
    assert answer is not None and released == answer.answer
    delays = [] if answer.refused else [round(t - r, 1) for r, t in zip(raw_ends, text_ends)]
    return {
        "question": question,
        "answer": answer.answer,
        "refused": answer.refused,
        "attempts": int(answer.timings.get("attempts", 1)),
        "first_raw_ms": round(first_raw or 0.0, 1),
        "first_text_ms": round(first_text or 0.0, 1),
        "total_ms": answer.timings["total_ms"],
        "raw_sentence_end_ms": [round(t, 1) for t in raw_ends],
        "release_ms": [round(t, 1) for t in text_ends],
        "release_delay_ms": delays,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Settings().index_dir, help="index of the sample corpus")
    parser.add_argument("--threads", type=int, default=2, help="threads for llama.cpp and the embedder")
    parser.add_argument("--name", default="verified-stream", help="result file name under benchmarks/")
    parser.add_argument("--questions", type=Path, default=EVAL_QUESTIONS, help="eval set the questions come from")
    parser.add_argument("--count", type=int, default=12, help="answerable questions measured (after one warm-up)")
    args = parser.parse_args()
    warm_up, *questions = standalone_questions(args.questions, args.count + 1)

    settings = replace(Settings(), index_dir=args.index, threads=args.threads)
    retriever = Retriever(settings.index_dir, embedder_for(settings))
    pipeline = QAPipeline(retriever, LlamaCppGenerator(ensure_bundled_gguf(settings.data_dir), threads=args.threads))
    measure(pipeline, warm_up)
    rows = []
    for question in questions:
        row = measure(pipeline, question)
        rows.append(row)
        log(
            f"{question}: first raw {row['first_raw_ms']:.0f} ms, first text {row['first_text_ms']:.0f} ms, delays {row['release_delay_ms']}"
        )

    delays = [d for row in rows for d in row["release_delay_ms"]]
    summary = {
        "first_raw_ms": median([r["first_raw_ms"] for r in rows]),
        "first_text_ms": median([r["first_text_ms"] for r in rows]),
        "total_ms": median([r["total_ms"] for r in rows]),
        "release_delay_ms": median(delays) if delays else None,
        "sentences_timed": len(delays),
        "refused": sum(r["refused"] for r in rows),
    }
    summary["first_visible_ratio"] = round(summary["first_text_ms"] / summary["first_raw_ms"], 3)
    summary["per_question_ratio"] = median([r["first_text_ms"] / r["first_raw_ms"] for r in rows if r["first_raw_ms"]])
    machine = machine_info(["llama-cpp-python", "sentence-transformers", "torch"])
    result = {"benchmark": "verified-stream", "command": command_line(), "machine": machine, "threads": args.threads}
    result |= {"questions": rows, "median": summary}
    table = markdown_table(
        ["question", "answer", "first raw ms", "first text ms", "total ms", "release delay per sentence ms"],
        [
            [
                r["question"],
                r["answer"].replace("|", "\\|"),
                r["first_raw_ms"],
                r["first_text_ms"],
                r["total_ms"],
                r["release_delay_ms"],
            ]
            for r in rows
        ],
    )
    markdown = (
        "# Verified streaming vs raw streaming (same run, bundled models)\n\n"
        f"{table}\n\nMedians over {len(rows)} answerable questions ({summary['refused']} refused): first raw token "
        f"{summary['first_raw_ms']:.0f} ms, first verified text {summary['first_text_ms']:.0f} ms (ratio "
        f"{summary['first_visible_ratio']}, median of per-question ratios {summary['per_question_ratio']:.2f}), "
        f"whole answer {summary['total_ms']:.0f} ms; release delay per sentence {summary['release_delay_ms']} ms "
        f"over {summary['sentences_timed']} sentences.\n\n"
        "A sentence is released once the model has written the first character that cannot belong to it (a marker "
        "may follow its full stop) and the check of the draft so far keeps it; the last one when the model stops. "
        "Times are from the start of the request (retrieval included).\n\n" + machine_markdown(machine, command_line())
    )
    json_path, md_path = write_results(args.name, result, markdown)
    log(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
