"""Many users at once against ``rag api`` with the real models: errors, time to sources, first token, throughput.

Starts ``rag api`` (the configured models, an index of ``corpus/``) as a subprocess on a free
loopback port, then ``--users`` threads each ask ``--rounds`` questions from the regression set
over the streaming chat API, all at the same time. Per answer it records the time to the sources
chunk, the time to the first token (client side), the server's queue wait (``timings.queue_ms``)
and the total time. Results go to ``benchmarks/api-concurrency.{json,md}``.

    python scripts/bench_api.py --users 8 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402
    REPO_ROOT,
    command_line,
    load_average,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    percentiles,
    write_results,
)


def answerable_questions(count: int) -> list[str]:
    """The first ``count`` answerable, standalone questions of the regression set."""
    rows = [json.loads(line) for line in (REPO_ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    picked = [row["question"] for row in rows if row["answers"] and not row.get("history")]
    return picked[:count]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(index: Path, port: int, capacity: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAG_QUEUE_SIZE": str(capacity)}
    server = subprocess.Popen([sys.executable, "-m", "rag", "api", "--port", str(port), "--index", str(index)], env=env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["models_loaded"]:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"rag api exited with {server.returncode}")
        time.sleep(1)
    server.terminate()
    raise SystemExit("rag api did not load its models within 10 minutes")


def ask(url: str, question: str) -> dict[str, Any]:
    """One streamed answer: client-side times (s) and the server's timings."""
    record: dict[str, Any] = {"question": question, "error": None}
    started = time.perf_counter()
    body = {"model": "rag-zh", "stream": True, "messages": [{"role": "user", "content": question}]}
    try:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=900) as response:
            if response.status_code != 200:
                record["error"] = f"HTTP {response.status_code}: {response.read().decode()[:200]}"
                return record
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                now = time.perf_counter() - started
                if "error" in chunk:
                    record["error"] = chunk["error"]["message"]
                if "sources" in chunk and "sources_s" not in record:
                    record["sources_s"] = now
                content = (chunk.get("choices") or [{}])[0].get("delta", {}).get("content") if chunk.get("choices") else None
                if content and "first_token_s" not in record:
                    record["first_token_s"] = now
                if "timings" in chunk:
                    record["server"] = chunk["timings"]
                    record["refused"] = chunk.get("refused")
    except httpx.HTTPError as exc:
        record["error"] = repr(exc)
    record["total_s"] = time.perf_counter() - started
    return record


def user(url: str, questions: list[str], out: list[dict[str, Any]], lock: threading.Lock) -> None:
    for question in questions:
        result = ask(url, question)
        with lock:
            out.append(result)
        log(f"  {'ERR ' + str(result['error']) if result['error'] else 'ok'}  {result.get('total_s', 0):.1f} s  {question}")


def summarise(records: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    ok = [r for r in records if not r["error"]]
    queue_s = [r["server"].get("queue_ms", 0) / 1000 for r in ok if "server" in r]
    first = [r["first_token_s"] for r in ok if "first_token_s" in r]
    generation_wait = [
        r["first_token_s"] - r["server"].get("queue_ms", 0) / 1000 for r in ok if "first_token_s" in r and "server" in r
    ]
    return {
        "answers": len(records),
        "errors": len(records) - len(ok),
        "refused": sum(bool(r.get("refused")) for r in ok),
        "wall_s": round(wall_s, 1),
        "answers_per_minute": round(60 * len(ok) / wall_s, 2) if wall_s else 0,
        "time_to_sources_s": percentiles((r["sources_s"] for r in ok if "sources_s" in r), digits=3),
        "time_to_first_token_s": percentiles(first, digits=2),
        "queue_wait_s": percentiles(queue_s, digits=2),
        "first_token_after_queue_s": percentiles(generation_wait, digits=2),
        "total_s": percentiles((r["total_s"] for r in ok), digits=2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8, help="simultaneous users (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="questions each user asks, one after another (default 2)")
    parser.add_argument(
        "--index", type=Path, default=REPO_ROOT / "out" / "bench-api" / "index", help="index of corpus/ (built if missing)"
    )
    args = parser.parse_args()

    subprocess.run([sys.executable, "-m", "rag", "ingest", str(REPO_ROOT / "corpus"), "--index", str(args.index)], check=True)
    questions = answerable_questions(args.users * args.rounds)
    port = free_port()
    load_before = load_average()
    log(f"starting rag api on port {port} ...")
    server = start_server(args.index, port, capacity=args.users)
    records: list[dict[str, Any]] = []
    lock = threading.Lock()
    try:
        url = f"http://127.0.0.1:{port}"
        threads = [
            threading.Thread(target=user, args=(url, questions[n :: args.users], records, lock)) for n in range(args.users)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    summary = summarise(records, wall)
    machine = machine_info(["llama-cpp-python", "sentence-transformers", "fastapi", "uvicorn"])
    payload = {
        "machine": machine,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "users": args.users,
        "rounds": args.rounds,
        "summary": summary,
        "records": records,
    }
    rows = [
        [name, stats.get("p50", "-"), stats.get("p95", "-")]
        for name, stats in (
            ("time to sources (s)", summary["time_to_sources_s"]),
            ("queue wait (s)", summary["queue_wait_s"]),
            ("first token after the queue (s)", summary["first_token_after_queue_s"]),
            ("time to first token (s)", summary["time_to_first_token_s"]),
            ("total (s)", summary["total_s"]),
        )
    ]
    markdown = (
        f"# {args.users} users at once against `rag api` (real models, 2 cores)\n\n"
        f"{summary['answers']} streamed answers ({args.users} users x {args.rounds} questions from `eval/questions.jsonl`), "
        f"errors: **{summary['errors']}**, refusals: {summary['refused']}, wall {summary['wall_s']} s, "
        f"throughput **{summary['answers_per_minute']} answers/minute**. Load average before: {load_before}.\n\n"
        + markdown_table(["", "p50", "p95"], rows)
        + "\n\nOne model serves everyone: answers are generated one at a time, so the queue wait grows with the "
        "number of users while the time to the sources stays flat (retrieval never waits for the LLM).\n\n"
        + machine_markdown(machine, command_line())
    )
    json_path, md_path = write_results("api-concurrency", payload, markdown)
    log(f"wrote {json_path} and {md_path}")
    print(json.dumps(summary, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
