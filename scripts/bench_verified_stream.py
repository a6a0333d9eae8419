"""Benchmark verified streaming against raw streaming, in one run, with the real bundled models.

Each question goes once through the pipeline's stream, which carries both: ``token`` events
(the model's raw text as it writes) and ``text`` events (sentences released once the check
keeps them). Per question: the first raw token, the first released text, and per sentence the
delay between the raw sentence end (the token that brought its 。！？； or line end, or the last
token for a final sentence without one) and the release that completes the same sentence of the
answer (counted in order; refusals have no per-sentence delays). A retried question counts the
raw sentences of its last attempt. One unmeasured warm-up question first.

Per question it also records whether a retry happened and why (``refusal``: the first draft
declined, or was withheld because no citation held; ``form``: a form flaw), the number of
sentences, and whether the final answer is a refusal; and it splits the wait for the first visible
text of an answered question into: the withdrawn attempt (first raw token to the first token of
the attempt that is shown), writing (to the raw end of the sentence the first release completes),
settling (to the token that released it) and checking (that token to the release).

``--corpus`` measures another set over its own articles, e.g. the harder set:
``--questions eval/hard/questions.jsonl --corpus eval/hard/corpus`` (ingested once into
``out/bench-index/<folder>``, e.g. ``eval-hard-corpus``; unchanged files are skipped on the next run).
Results: benchmarks/verified-stream.{json,md}.
"""

from __future__ import annotations

import argparse
import os
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
from rag.index.ingest import ingest  # noqa: E402
from rag.models.embedders import embedder_for  # noqa: E402
from rag.models.generators import LlamaCppGenerator  # noqa: E402
from rag.models.llm_weights import ensure_bundled_gguf  # noqa: E402
from rag.qa import citations, release  # noqa: E402
from rag.qa.citations import is_refusal  # noqa: E402
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


class CheckTimer:
    """Stands in for :func:`rag.qa.release.check_draft`: times each check of a draft (the release
    runs one each time a sentence settles, and one when the model stops) and keeps its arguments."""

    def __init__(self) -> None:
        self.check = release.check_draft
        self.calls: list[tuple[Any, ...]] = []
        self.times: list[float] = []

    def __call__(self, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.check(*args)
        finally:
            self.times.append((time.perf_counter() - start) * 1000)
            self.calls.append(args)

    def reset(self) -> None:
        self.calls, self.times = [], []

    def from_scratch(self) -> list[float]:
        """The same checks again, each with the text caches emptied first (every check from scratch)."""
        times = []
        for args in self.calls:
            for cached in (citations.squash, citations._key_facts, citations.bigrams):
                cached.cache_clear()
            start = time.perf_counter()
            self.check(*args)
            times.append((time.perf_counter() - start) * 1000)
        return times


CHECKS = CheckTimer()


def measure(pipeline: QAPipeline, question: str) -> dict[str, Any]:
    """One streamed answer: when raw and released sentences completed, in ms from the start."""
    CHECKS.reset()
    checks_before_text = 0
    started = time.perf_counter()
    raw, released = "", ""
    raw_ends: list[float] = []
    text_ends: list[float] = []
    first_raw = first_text = last_token = shown_first_raw = trigger = None
    first_ends: list[float] = []
    tokens = 0  # token events of the shown attempt
    at_finish = True  # the first text came once the model had stopped
    answer = None
    for event in pipeline.stream(question):
        now = (time.perf_counter() - started) * 1000
        if event.kind == "retry":
            raw, raw_ends, shown_first_raw, tokens = "", [], None, 0
        elif event.kind == "token":
            first_raw = first_raw if first_raw is not None else now
            shown_first_raw = shown_first_raw if shown_first_raw is not None else now
            raw += event.text
            tokens += 1
            raw_ends += [now] * (sentences(raw, False) - len(raw_ends))
            last_token = now
            at_finish = first_text is None
        elif event.kind == "text":
            if first_text is None:
                first_text, trigger, checks_before_text = now, last_token, len(CHECKS.times)
                first_ends = list(raw_ends)  # the raw sentences complete when the first text came
            released += event.text
            text_ends += [now] * (sentences(released, False) - len(text_ends))
        elif event.kind == "done":
            answer = event.answer
            raw_ends += [last_token or now] * (sentences(raw, True) - len(raw_ends))
            text_ends += [now] * (sentences(released, True) - len(text_ends))
    assert answer is not None and released == answer.answer
    delays = [] if answer.refused else [round(t - r, 1) for r, t in zip(raw_ends, text_ends)]
    live, scratch = CHECKS.times, CHECKS.from_scratch()
    row: dict[str, Any] = {
        "question": question,
        "answer": answer.answer,
        "refused": answer.refused,
        "attempts": int(answer.timings.get("attempts", 1)),
        "retry": answer.retry,
        "retry_why": retry_why(answer.retry, answer.withheld),
        "withheld": answer.withheld,
        "draft": answer.draft,
        "tokens": tokens,
        "sentences": sentences(answer.answer, True),
        "first_raw_ms": round(first_raw or 0.0, 1),
        "first_text_ms": round(first_text or 0.0, 1),
        "total_ms": answer.timings["total_ms"],
        "raw_sentence_end_ms": [round(t, 1) for t in raw_ends],
        "release_ms": [round(t, 1) for t in text_ends],
        "release_delay_ms": delays,
        "checks": len(live),
        "check_ms": round(sum(live), 1),
        "check_ms_to_first_text": round(sum(live[:checks_before_text]), 1),
        "check_from_scratch_ms": round(sum(scratch), 1),
        "check_from_scratch_ms_to_first_text": round(sum(scratch[:checks_before_text]), 1),
    }
    if not answer.refused and first_raw is not None and first_text is not None:
        shown = shown_first_raw if shown_first_raw is not None else first_raw
        trigger = trigger if trigger is not None else first_text
        # the raw end of the sentence the first release completed: the last token when it came at the end
        written = trigger if at_finish else max((t for t in first_ends if t <= trigger), default=trigger)
        row["gap_ms"] = {
            "withdrawn_attempt": round(shown - first_raw, 1),
            "writing": round(max(written - shown, 0.0), 1),
            "settling": round(max(trigger - written, 0.0), 1),
            "checking": round(first_text - max(trigger, shown), 1),
        }
    return row


def retry_why(retry: str, withheld: str) -> str:
    """Why a second attempt was made: the model declined, the check withheld its draft, or its form."""
    if retry == "refusal":
        return "model declined" if is_refusal(withheld.split("\n\n")[0]) else "no citation held"
    return {"form": "form flaw", "": ""}.get(retry, retry)


def corpus_index(corpus: Path, settings: Settings) -> Path:
    """The benchmark's own index of ``corpus`` (synced: unchanged files are skipped)."""
    root = Path(__file__).resolve().parent.parent
    folder = corpus.resolve()
    name = "-".join(folder.relative_to(root).parts) if folder.is_relative_to(root) else folder.name
    index = root / "out" / "bench-index" / name
    report = ingest([corpus], index, embedder_for(settings), prune=True)
    if report.files_failed:
        raise SystemExit(f"could not ingest {report.files_failed}")
    return index


def p50(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows]
    return median(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Settings().index_dir, help="index of the sample corpus")
    parser.add_argument(
        "--corpus", type=Path, help="articles of --questions, ingested into out/bench-index/ (instead of --index)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for llama.cpp and the embedder")
    parser.add_argument("--name", default="verified-stream", help="result file name under benchmarks/")
    parser.add_argument("--questions", type=Path, default=EVAL_QUESTIONS, help="eval set the questions come from")
    parser.add_argument("--count", type=int, default=12, help="answerable questions measured (after one warm-up)")
    args = parser.parse_args()
    warm_up, *questions = standalone_questions(args.questions, args.count + 1)
    load = [round(x, 2) for x in os.getloadavg()]

    settings = replace(Settings(), index_dir=args.index, threads=args.threads)
    if args.corpus:
        settings = replace(settings, index_dir=corpus_index(args.corpus, settings))
    retriever = Retriever(settings.index_dir, embedder_for(settings))
    release.check_draft = CHECKS  # type: ignore[assignment]
    pipeline = QAPipeline(retriever, LlamaCppGenerator(ensure_bundled_gguf(settings.data_dir), threads=args.threads))
    measure(pipeline, warm_up)
    rows = []
    for question in questions:
        row = measure(pipeline, question)
        rows.append(row)
        log(
            f"{question}: first raw {row['first_raw_ms']:.0f} ms, first text {row['first_text_ms']:.0f} ms, "
            f"retry {row['retry_why'] or '-'}, refused {row['refused']}, gap {row.get('gap_ms')}"
        )

    answered = [r for r in rows if not r["refused"]]
    delays = [d for row in answered for d in row["release_delay_ms"]]
    summary: dict[str, Any] = {
        "questions": len(rows),
        "answered": len(answered),
        "refused": len(rows) - len(answered),
        "retried": sum(bool(r["retry"]) for r in rows),
        "retried_answered": sum(bool(r["retry"]) for r in answered),
        "single_sentence_answered": sum(r["sentences"] == 1 for r in answered),
        "all": {key: p50(rows, key) for key in ("first_raw_ms", "first_text_ms", "total_ms")},
        "first_raw_ms": p50(answered, "first_raw_ms"),
        "first_text_ms": p50(answered, "first_text_ms"),
        "total_ms": p50(answered, "total_ms"),
        "release_delay_ms": median(delays) if delays else None,
        "sentences_timed": len(delays),
        "checks": {
            key: {"p50": p50(answered, key), "sum": round(sum(r[key] for r in answered), 1)}
            for key in ("check_ms", "check_ms_to_first_text", "check_from_scratch_ms", "check_from_scratch_ms_to_first_text")
        },
    }
    if answered:
        summary["first_visible_ratio"] = round(summary["first_text_ms"] / summary["first_raw_ms"], 3)
        summary["per_question_ratio"] = round(median([r["first_text_ms"] / r["first_raw_ms"] for r in answered]), 3)
        unretried = [r for r in answered if not r["retry"]]
        if unretried:
            summary["unretried"] = {
                "count": len(unretried),
                "first_raw_ms": p50(unretried, "first_raw_ms"),
                "first_text_ms": p50(unretried, "first_text_ms"),
                "ratio": round(p50(unretried, "first_text_ms") / p50(unretried, "first_raw_ms"), 3),
            }
        parts = ("withdrawn_attempt", "writing", "settling", "checking")
        summary["gap_ms"] = {
            part: {
                "p50": median([r["gap_ms"][part] for r in answered]),
                "sum": round(sum(r["gap_ms"][part] for r in answered), 1),
            }
            for part in parts
        }
    machine = machine_info(["llama-cpp-python", "sentence-transformers", "torch"])
    result = {"benchmark": "verified-stream", "command": command_line(), "machine": machine, "threads": args.threads}
    result |= {"load_average_before": load, "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    result |= {"questions": rows, "median": summary}
    json_path, md_path = write_results(args.name, result, markdown_report(rows, summary, machine))
    log(f"wrote {json_path} and {md_path}")
    return 0


def markdown_report(rows: list[dict[str, Any]], summary: dict[str, Any], machine: dict[str, Any]) -> str:
    """The results page: one row per question, then the medians and where the gap comes from."""
    table = markdown_table(
        [
            "question",
            "answer",
            "retry",
            "sentences",
            "first raw ms",
            "first text ms",
            "total ms",
            "release delay per sentence ms",
        ],
        [
            [
                r["question"],
                r["answer"].replace("|", "\\|").replace("\n", " "),
                r["retry_why"] or "-",
                r["sentences"],
                r["first_raw_ms"],
                r["first_text_ms"],
                r["total_ms"],
                r["release_delay_ms"],
            ]
            for r in rows
        ],
    )
    text = f"# Verified streaming vs raw streaming (same run, bundled models)\n\n{table}\n\n"
    if summary["answered"]:
        gap = summary["gap_ms"]
        unretried = summary.get("unretried")
        text += (
            f"Medians over the {summary['answered']} answered of {summary['questions']} answerable questions "
            f"({summary['refused']} refused, {summary['retried']} retried, {summary['retried_answered']} of them answered; "
            f"{summary['single_sentence_answered']} answers are one sentence): first raw token "
            f"{summary['first_raw_ms']:.0f} ms, first verified text {summary['first_text_ms']:.0f} ms (ratio "
            f"{summary['first_visible_ratio']}, median of per-question ratios {summary['per_question_ratio']:.2f}), "
            f"whole answer {summary['total_ms']:.0f} ms; release delay per sentence {summary['release_delay_ms']} ms "
            f"over {summary['sentences_timed']} sentences.\n\n"
        )
        if unretried:
            text += (
                f"Answered without a retry ({unretried['count']}): first raw token {unretried['first_raw_ms']:.0f} ms, "
                f"first verified text {unretried['first_text_ms']:.0f} ms (ratio {unretried['ratio']}).\n\n"
            )
        text += (
            "Where the wait for the first text goes past the first raw token (answered questions, ms, median / sum): "
            + "; ".join(f"{part.replace('_', ' ')} {v['p50']:.0f} / {v['sum']:.0f}" for part, v in gap.items())
            + ".\n\n"
        )
        checks = summary["checks"]
        text += (
            "Cost of the checks of the growing drafts (answered questions, ms, median / sum), as streamed (earlier "
            "sentences' text steps cached) and the same checks replayed from scratch after each answer (caches emptied "
            f"before each, as before the caches): before the first text {checks['check_ms_to_first_text']['p50']:.0f} / "
            f"{checks['check_ms_to_first_text']['sum']:.0f} vs {checks['check_from_scratch_ms_to_first_text']['p50']:.0f} / "
            f"{checks['check_from_scratch_ms_to_first_text']['sum']:.0f}; whole answer {checks['check_ms']['p50']:.0f} / "
            f"{checks['check_ms']['sum']:.0f} vs {checks['check_from_scratch_ms']['p50']:.0f} / {checks['check_from_scratch_ms']['sum']:.0f}.\n\n"
        )
    text += (
        "A sentence is released once the model has written the first character that cannot belong to it (a marker "
        "may follow its full stop) and the check of the draft so far keeps it; the last one when the model stops. "
        "Times are from the start of the request (retrieval included).\n\n" + machine_markdown(machine, command_line())
    )
    return text


if __name__ == "__main__":
    raise SystemExit(main())
