"""Benchmark cited answers against bare llama.cpp on the same model, prompt and threads.

For each question the project's pipeline answers it (retrieval, prompt, streamed generation,
citation check), then a separate, bare ``llama_cpp.Llama`` instance gets the very same messages
(the pipeline's own prompt) with the same threads, context and greedy decoding. The ratio of
the medians shows the project's own overhead. One unmeasured warm-up question first, so one-off
costs (jieba's dictionary, the lazy index load) stay out of the medians.
Results: benchmarks/generation.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import (  # noqa: E402
    command_line,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    median,
    peak_rss_mb,
    write_results,
)

from rag.config import Settings  # noqa: E402
from rag.evaluation.scoring import load_questions  # noqa: E402
from rag.models.embedders import embedder_for  # noqa: E402
from rag.models.generators import LlamaCppGenerator, llama_settings  # noqa: E402
from rag.models.llm_weights import ensure_bundled_gguf  # noqa: E402
from rag.qa.pipeline import MAX_ANSWER_TOKENS, QAPipeline, select_context, shown_passages  # noqa: E402
from rag.qa.prompts import answer_messages  # noqa: E402
from rag.qa.retriever import Retriever  # noqa: E402

EVAL_QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"


def standalone_questions(path: Path, count: int) -> list[str]:
    """The first ``count`` answerable questions of an eval set that need no chat history."""
    return [q.question for q in load_questions(path) if q.answerable and not q.history][:count]


def bare_run(llm: Any, messages: list[dict[str, str]], max_tokens: int) -> dict[str, float]:
    """Stream one greedy completion from a bare llama.cpp instance; times in ms."""
    started = time.perf_counter()
    first = None
    pieces = 0
    for chunk in llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0, stream=True):
        if chunk["choices"][0]["delta"].get("content"):
            first = first or time.perf_counter()
            pieces += 1
    ended = time.perf_counter()
    return {"first_token_ms": ((first or ended) - started) * 1000, "total_ms": (ended - started) * 1000, "pieces": pieces}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Settings().index_dir, help="index of the sample corpus")
    parser.add_argument("--threads", type=int, default=2, help="threads for llama.cpp and the embedder")
    parser.add_argument("--name", default="generation", help="result file name under benchmarks/")
    parser.add_argument("--questions", type=Path, default=EVAL_QUESTIONS, help="eval set the questions come from")
    parser.add_argument("--count", type=int, default=12, help="questions measured (after one warm-up)")
    args = parser.parse_args()
    warm_up, *questions = standalone_questions(args.questions, args.count + 1)

    settings = replace(Settings(), index_dir=args.index, threads=args.threads)
    gguf = ensure_bundled_gguf(settings.data_dir)
    embedder = embedder_for(settings)  # the precision the sample index was built with (RAG_EMBED_PRECISION)
    retriever = Retriever(settings.index_dir, embedder)
    pipeline = QAPipeline(retriever, LlamaCppGenerator(gguf, threads=args.threads))
    from llama_cpp import Llama, llama_print_system_info

    bare = Llama(**llama_settings(gguf, args.threads))  # the settings LlamaCppGenerator uses

    def both(question: str) -> tuple[Any, dict[str, float]]:
        answer = pipeline.ask(question)
        chunks = [hit.chunk for hit in select_context(retriever.search(question, k=3))]
        messages = answer_messages(question, shown_passages(question, chunks))
        return answer, bare_run(bare, messages, MAX_ANSWER_TOKENS)

    both(warm_up)
    rows = []
    for question in questions:
        answer, plain = both(question)
        t = answer.timings
        gen_s = max((t["total_ms"] - t["first_token_ms"]) / 1000, 1e-6)
        rows.append(
            {
                "question": question,
                "answer": answer.answer,
                "prompt_tokens": t["prompt_tokens"],
                "completion_tokens": t["completion_tokens"],
                "pipeline_first_token_ms": t["first_token_ms"],
                "pipeline_total_ms": t["total_ms"],
                "pipeline_gen_tokens_per_s": round(t["completion_tokens"] / gen_s, 2),
                "bare_first_token_ms": round(plain["first_token_ms"], 1),
                "bare_total_ms": round(plain["total_ms"], 1),
            }
        )
        log(
            f"{question}: pipeline {t['first_token_ms']:.0f}/{t['total_ms']:.0f} ms, bare {plain['first_token_ms']:.0f}/{plain['total_ms']:.0f} ms"
        )

    summary = {
        key: median([r[key] for r in rows])
        for key in (
            "pipeline_first_token_ms",
            "bare_first_token_ms",
            "pipeline_total_ms",
            "bare_total_ms",
            "pipeline_gen_tokens_per_s",
        )
    }
    summary["first_token_ratio"] = round(summary["pipeline_first_token_ms"] / summary["bare_first_token_ms"], 3)
    summary["total_ratio"] = round(summary["pipeline_total_ms"] / summary["bare_total_ms"], 3)
    machine = machine_info(["llama-cpp-python", "sentence-transformers", "torch"])
    result = {
        "benchmark": "generation",
        "command": command_line(),
        "machine": machine,
        "threads": args.threads,
        "llama_cpp_build": llama_print_system_info().decode().strip(),
        "questions": rows,
        "median": summary,
        "peak_rss_mb": peak_rss_mb(),
    }
    table = markdown_table(
        [
            "question",
            "prompt tok",
            "answer tok",
            "pipeline first token ms",
            "bare first token ms",
            "pipeline total ms",
            "bare total ms",
        ],
        [
            [
                r["question"],
                r["prompt_tokens"],
                r["completion_tokens"],
                r["pipeline_first_token_ms"],
                r["bare_first_token_ms"],
                r["pipeline_total_ms"],
                r["bare_total_ms"],
            ]
            for r in rows
        ],
    )
    markdown = (
        "# Cited answers vs bare llama.cpp (same GGUF, prompt, threads)\n\n"
        f"{table}\n\nMedians: first token pipeline {summary['pipeline_first_token_ms']:.0f} ms vs bare "
        f"{summary['bare_first_token_ms']:.0f} ms (ratio {summary['first_token_ratio']}); total "
        f"{summary['pipeline_total_ms']:.0f} ms vs {summary['bare_total_ms']:.0f} ms (ratio {summary['total_ratio']}); "
        f"generation {summary['pipeline_gen_tokens_per_s']:.1f} tokens/s. Peak RSS (both models loaded) {result['peak_rss_mb']:.0f} MiB.\n\n"
        "The pipeline's first-token time includes retrieval (query embedding + BM25 + FAISS) and the refresh check; "
        "bare llama.cpp starts from the finished prompt.\n\n"
        f"llama.cpp build: `{result['llama_cpp_build']}`\n\n" + machine_markdown(machine, command_line())
    )
    json_path, md_path = write_results(args.name, result, markdown)
    log(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
