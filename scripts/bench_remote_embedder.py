"""Benchmark ingest through a remote embedder: `rag api`'s ``/v1/embeddings`` with 1, 2 and 4 requests in flight.

One run starts ``rag api`` (the bundled e5-small behind ``/v1/embeddings``) in its own process on
loopback, then ingests the same CMRC paragraphs into fresh FAISS index directories: once with the
local embedder (the reference) and once per ``RAG_EMBED_CONCURRENCY`` through
``RAG_EMBED_MODEL=openai:http://127.0.0.1:PORT/v1``. It reports chunks/s of the whole ingest
(read, chunk, embed, BM25 tokens, write), the ratio to the local embedder, and the cosine of the
remote vectors to the local ones.

On one 2-core machine the server and the ingest share the same cores, so this measures the
overhead of the HTTP path and whether requests in flight overlap the client's work with the
server's; a separate embedding box (or a pool of them) is what more requests in flight are for.

Example::

    python scripts/bench_remote_embedder.py                  # 300 paragraphs, writes benchmarks/remote-embedder.{json,md}
    python scripts/bench_remote_embedder.py --paragraphs 40 --out-dir /tmp/b   # quick dry run
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (
    BENCH_DIR,
    REPO_ROOT,
    command_line,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    timed,
    write_results,
)

PACKAGES = ("sentence-transformers", "torch", "fastapi", "uvicorn", "httpx", "faiss-cpu")
CORPUS = REPO_ROOT.parent / "shared" / "data" / "cmrc2018_dev.corpus.jsonl"
CONCURRENCY = (1, 2, 4)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_paragraphs(count: int, folder: Path) -> Path:
    """The first ``count`` CMRC paragraphs as a JSONL file ``rag ingest`` reads."""
    path = folder / "cmrc.jsonl"
    with CORPUS.open(encoding="utf-8") as source, path.open("w", encoding="utf-8") as target:
        for n, line in enumerate(source):
            if n == count:
                break
            row = json.loads(line)
            target.write(json.dumps({"pid": row["pid"], "title": row["title"], "text": row["text"]}, ensure_ascii=False) + "\n")
    return path


class ApiServer:
    """``rag api`` on loopback in a child process, until :meth:`stop`."""

    def __init__(self, index: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        env = {**os.environ, "RAG_INDEX": str(index)}
        command = [sys.executable, "-m", "rag", "api", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"rag api exited: {self.process.stderr.read() if self.process.stderr else ''}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(1)
        raise SystemExit("rag api did not answer /health within 300 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def ingest_run(paragraphs: Path, index: Path, embed_model: str | None, concurrency: int) -> dict[str, Any]:
    """One ``rag ingest`` in-process (a fresh index); chunks/s of the whole call."""
    from rag.components import Components
    from rag.config import Settings
    from rag.index.chunking import ChunkingConfig
    from rag.index.ingest import ingest
    from rag.index.locations import open_store

    overrides = {"RAG_EMBED_CONCURRENCY": str(concurrency)}
    if embed_model:
        overrides["RAG_EMBED_MODEL"] = embed_model
        overrides["RAG_EMBED_REMOTE_MODEL"] = "bundled:multilingual-e5-small"  # rag api also lists its chat model
    os.environ.update(overrides)
    try:
        settings = Settings()
        embedder = Components(settings).embedder()
        embedder.embed(["预热：加载线程与缓存"], kind="passage")  # warm-up, not timed
        with timed() as run:
            report = ingest([paragraphs], index, embedder, ChunkingConfig.from_settings(settings))
    finally:
        for key in overrides:
            os.environ.pop(key, None)
    store = open_store(str(index))
    chunks = report.chunks_embedded
    return {
        "embedder": embedder.model_id,
        "concurrency": concurrency if embed_model else None,
        "chunks": chunks,
        "seconds": round(run.seconds, 2),
        "chunks_per_s": round(chunks / run.seconds, 2),
        "vectors": store,
    }


def cosines(local: Any, remote: Any) -> dict[str, float]:
    """Mean and min cosine between the two indexes' vectors of the same chunk."""
    mine = local.known_vectors(local_keys(local))
    theirs = remote.known_vectors(mine.keys())
    values = [float(np.dot(mine[key], theirs[key])) for key in mine if key in theirs]
    return {"pairs": len(values), "mean": round(float(np.mean(values)), 6), "min": round(float(np.min(values)), 6)}


def local_keys(store: Any) -> list[str]:
    from rag.index.store import text_key

    return [text_key(chunk) for chunk in store.chunks]


def render_markdown(payload: dict[str, Any]) -> str:
    local = payload["runs"][0]
    rows = [
        [
            "local (in-process)" if run["concurrency"] is None else f"remote, {run['concurrency']} in flight",
            run["chunks"],
            run["seconds"],
            run["chunks_per_s"],
            f"{run['chunks_per_s'] / local['chunks_per_s']:.2f}×",
        ]
        for run in payload["runs"]
    ]
    table = markdown_table(["embedder", "chunks", "ingest s", "chunks/s", "vs local"], rows)
    cos = payload["cosine_remote_vs_local"]
    return (
        "# Ingest through a remote embedder (`rag api` /v1/embeddings) vs the local embedder\n\n"
        f"{payload['paragraphs']} CMRC 2018 dev paragraphs ingested into a fresh FAISS index directory per row "
        "(read, chunk, embed, BM25 tokens, write), one run, rows one after the other. The server is `rag api` "
        "with the bundled e5-small on loopback, on the same 2 cores as the ingest.\n\n"
        f"{table}\n\n"
        f"Vectors through the server vs local: cosine mean {cos['mean']}, min {cos['min']} over {cos['pairs']} chunks.\n\n"
        "Both processes share two cores here, so more requests in flight cannot add compute; they only overlap "
        "the client's chunking and tokenising with the server's embedding. With the embedder on its own machine "
        "(TEI, vLLM, Infinity, or `rag api` replicas behind a load balancer) requests in flight are what keeps "
        "it busy. Not run here: a separate embedding box.\n\n" + machine_markdown(payload["machine"], payload["command"])
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=300)
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR)
    args = parser.parse_args(argv)
    machine = machine_info(PACKAGES)
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as scratch_dir:
        scratch = Path(scratch_dir)
        paragraphs = write_paragraphs(args.paragraphs, scratch)
        runs = [ingest_run(paragraphs, scratch / "local", None, 1)]
        log(f"local: {runs[0]['chunks_per_s']} chunks/s")
        server = ApiServer(scratch / "served-index")
        try:
            for concurrency in CONCURRENCY:
                run = ingest_run(paragraphs, scratch / f"remote-{concurrency}", f"openai:{server.url}", concurrency)
                log(f"remote, {concurrency} in flight: {run['chunks_per_s']} chunks/s")
                runs.append(run)
        finally:
            server.stop()
        cosine = cosines(runs[0]["vectors"], runs[1]["vectors"])
    for run in runs:
        run.pop("vectors")
    payload = {
        "command": command_line(),
        "machine": machine,
        "paragraphs": args.paragraphs,
        "runs": runs,
        "cosine_remote_vs_local": cosine,
    }
    json_path, md_path = write_results("remote-embedder", payload, render_markdown(payload), args.out_dir)
    log(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
