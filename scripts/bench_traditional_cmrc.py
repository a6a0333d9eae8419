"""CMRC 2018 dev in Traditional vs Simplified characters: retrieval and answers (issue 17).

Converts corpus and questions with OpenCC (``scripts/make_traditional_cmrc.py``, ``s2tw``), then
runs ``rag eval`` on each configuration below, in its own folder under ``--work`` (a finished
one, with its ``report.json``, is not run again), and writes ``benchmarks/traditional-cmrc.{json,md}``:

- retrieval only, first ``--limit`` questions, hybrid / BM25 / dense, each script on its own index;
- across scripts: Traditional questions on the Simplified index and the reverse (hybrid);
- answers with the real models on the first ``--answers`` questions of each script.

Example::

    nice python scripts/bench_traditional_cmrc.py --work out/traditional-cmrc   # about 1 h on 2 busy cores
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import REPO_ROOT, command_line, load_average, log, machine_info, machine_markdown, markdown_table, write_results
from make_traditional_cmrc import convert_file

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "cmrc2018_dev"
SCRIPTS = ("simp", "trad")
METRICS = ("hit@1", "hit@5", "mrr@10", "answer_accuracy", "answer_span_recall", "citation_precision", "total_ms_p50")


def runs(limit: int, answers: int) -> list[dict[str, Any]]:
    """Every configuration: its folder name, question and index script, mode, and whether the LLM answers."""
    table = [
        {"name": f"{s}-{m}", "questions": s, "index": s, "mode": m, "limit": limit, "answers": False}
        for m in ("hybrid", "bm25", "dense")
        for s in SCRIPTS
    ]
    table += [
        {"name": "tq-simp-hybrid", "questions": "trad", "index": "simp", "mode": "hybrid", "limit": limit, "answers": False},
        {"name": "sq-trad-hybrid", "questions": "simp", "index": "trad", "mode": "hybrid", "limit": limit, "answers": False},
    ]
    return table + [
        {"name": f"{s}-answers", "questions": s, "index": s, "mode": "hybrid", "limit": answers, "answers": True} for s in SCRIPTS
    ]


def run_eval(run: dict[str, Any], prefixes: dict[str, Path], work: Path, execute: bool) -> dict[str, Any] | None:
    """``rag eval`` for one configuration (skipped when its report exists); its overall metrics
    (None when it has no report and ``execute`` is off)."""
    out = work / run["name"]
    report = out / "report.json"
    if not report.is_file():
        if not execute:
            return None
        questions, index = prefixes[run["questions"]], prefixes[run["index"]]
        command = [sys.executable, "-m", "rag", "eval", "--questions", f"{questions}.queries.jsonl"]
        command += ["--corpus", f"{index}.corpus.jsonl", "--index", str(work / f"{run['index']}-index")]
        command += ["--limit", str(run["limit"]), "--mode", run["mode"], "--out", str(out)]
        command += [] if run["answers"] else ["--retrieval-only"]
        log(" ".join(command))
        subprocess.run(command, check=True)
    raw = json.loads(report.read_text(encoding="utf-8"))
    return {"overall": raw["overall"], "config": {key: raw["config"][key] for key in ("date", "git_commit", "mode", "models")}}


def markdown(results: dict[str, dict[str, Any] | None], command: str, machine: dict[str, Any]) -> str:
    """The summary page: the retrieval and answer tables, then machine and command."""
    names = {"simp": "Simplified", "trad": "Traditional (OpenCC s2tw)"}

    def cell(run: str, metric: str) -> str:
        found = results[run]
        value = None if found is None else found["overall"].get(metric)
        return "-" if value is None else (f"{value / 1000:.1f} s" if metric.endswith("_ms_p50") else f"{value:.3f}")

    retrieval = [
        [names[s], mode, *(cell(f"{s}-{mode}", m) for m in ("hit@1", "hit@5", "mrr@10"))]
        for mode in ("hybrid", "bm25", "dense")
        for s in SCRIPTS
    ]
    retrieval += [
        [
            "Traditional questions, Simplified articles",
            "hybrid",
            *(cell("tq-simp-hybrid", m) for m in ("hit@1", "hit@5", "mrr@10")),
        ],
        [
            "Simplified questions, Traditional articles",
            "hybrid",
            *(cell("sq-trad-hybrid", m) for m in ("hit@1", "hit@5", "mrr@10")),
        ],
    ]
    answers = [[names[s], *(cell(f"{s}-answers", m) for m in METRICS)] for s in SCRIPTS]
    n_retrieval = max((r["overall"]["questions"] for n, r in results.items() if r and "answers" not in n), default=0)
    n_answers = max((r["overall"]["questions"] for n, r in results.items() if r and "answers" in n), default=0)
    return (
        "# CMRC 2018 dev: Traditional vs Simplified\n\n"
        f"Corpus (848 paragraphs) and questions converted to Traditional with OpenCC `s2tw`; each script has its own index.\n\n"
        f"## Retrieval (first {n_retrieval} questions)\n\n"
        + markdown_table(["questions / articles", "mode", "hit@1", "hit@5", "MRR@10"], retrieval)
        + f"\n\n## Answers (first {n_answers} questions, real models)\n\n"
        + markdown_table(["script", *METRICS], answers)
        + f"\n\nLoad average at the end: {load_average()}.\n\n"
        + machine_markdown(machine, command)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="prefix of the CMRC .corpus.jsonl / .queries.jsonl")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "out" / "traditional-cmrc")
    parser.add_argument("--limit", type=int, default=600, help="questions for retrieval")
    parser.add_argument("--answers", type=int, default=60, help="questions answered by the LLM")
    parser.add_argument("--no-run", action="store_true", help="only summarise the reports already in --work")
    args = parser.parse_args(argv)
    machine = machine_info(["opencc", "jieba", "bm25s", "faiss-cpu", "sentence-transformers", "llama-cpp-python"])
    traditional = args.work / f"{args.data.name}_trad"
    for part in ("corpus", "queries"):
        target = Path(f"{traditional}.{part}.jsonl")
        if not target.is_file():
            convert_file(Path(f"{args.data}.{part}.jsonl"), target)
    prefixes = {"simp": args.data, "trad": traditional}
    results = {run["name"]: run_eval(run, prefixes, args.work, not args.no_run) for run in runs(args.limit, args.answers)}
    payload = {"machine": machine, "load_average_at_end": load_average(), "command": command_line(), "runs": results}
    write_results("traditional-cmrc", payload, markdown(results, command_line(), machine))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
