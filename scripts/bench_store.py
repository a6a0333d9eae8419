"""Benchmark the two store backends at 10k, 100k or 1M chunks: the FAISS index directory vs a Milvus Lite file.

Chunks are real Chinese news passages (``../shared/data/crud_news.corpus.jsonl.gz``, cut to 300
characters, 10 per document) with synthetic unit vectors of dim 384 (no embedding model runs).
Each backend runs in its own process (so its RSS is its own) and measures:

- bulk load: one commit of every chunk (BM25 tokenization included);
- adding one document (5 chunks) and removing one, ``--writes`` times each: the writer's commit,
  then a reader handle's ``refresh()`` plus its first hybrid search (what the web chat pays);
- search latency p50/p95 over ``--queries`` queries, ``k=50`` candidates as the retriever asks:
  dense, BM25, and hybrid through :class:`rag.qa.retriever.Retriever` (RRF of the two);
- RSS after opening the index for reading, and peak RSS.

Queries are fragments of stored passages; their vectors are the passage's vector plus noise.

Example::

    python scripts/bench_store.py                       # 10k chunks, writes benchmarks/store-10k.{json,md}
    python scripts/bench_store.py --chunks 100000       # benchmarks/store-100k.{json,md}
    python scripts/bench_store.py --chunks 1000000 --queries 30 --writes 2 --backends faiss --memory-gb 15
    python scripts/bench_store.py --chunks 2000 --out-dir /tmp/b   # quick dry run
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (
    BENCH_DIR,
    REPO_ROOT,
    command_line,
    current_rss_mb,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    peak_rss_mb,
    percentiles,
    timed,
    write_results,
)

PACKAGES = ("faiss-cpu", "scipy", "jieba", "pymilvus", "milvus-lite", "numpy")
CORPUS = REPO_ROOT.parent / "shared" / "data" / "crud_news.corpus.jsonl.gz"
DIM = 384
CHUNKS_PER_DOC = 10
CHUNK_CHARS = 300
K = 50
MODEL = "bench:synthetic-384"


def passages(n: int) -> list[str]:
    """``n`` distinct news passages of up to ``CHUNK_CHARS`` characters (at least 50), without the date prefix.

    The first pass takes each article's opening window (the same passages for any ``n`` up to the
    68,798 articles); later passes take the next windows of each article, then windows shifted by
    ``CHUNK_CHARS // 10`` characters at a time, so 1M chunks stay real (overlapping) news text.
    """
    articles = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as handle:
        for line in handle:
            articles.append(json.loads(line)["text"].split("正文：", 1)[-1].strip())
    longest = max(map(len, articles))
    texts: list[str] = []
    for shift in range(0, CHUNK_CHARS, CHUNK_CHARS // 10):
        for start in range(shift, longest, CHUNK_CHARS):
            for article in articles:
                window = article[start : start + CHUNK_CHARS]
                if len(window) >= 50:
                    texts.append(window)
                    if len(texts) == n:
                        return texts
    raise SystemExit(f"the corpus gives only {len(texts)} passages; asked for {n}")


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


class Contents:
    """Chunks, vectors, documents and sources for ``n`` passages, plus spare documents to add."""

    def __init__(self, n: int, spare_docs: int, seed: int = 0) -> None:
        from rag.index.chunking import Chunk, chunk_id_for
        from rag.index.store import DocumentRecord, SourceRecord

        texts = passages(n + spare_docs * CHUNKS_PER_DOC)
        rng = np.random.default_rng(seed)
        self.vectors = unit(rng.standard_normal((len(texts), DIM), dtype=np.float32))
        self.chunks, self.documents, self.sources = [], [], []
        for start in range(0, len(texts), CHUNKS_PER_DOC):
            doc_id = f"news-{start // CHUNKS_PER_DOC:05d}"
            source = f"/bench/{doc_id}.txt"
            part = texts[start : start + CHUNKS_PER_DOC]
            self.chunks += [Chunk(chunk_id_for(doc_id, t), doc_id, f"新闻 {doc_id}", source, t, i) for i, t in enumerate(part)]
            self.documents.append(DocumentRecord(doc_id, f"新闻 {doc_id}", source, "h", len(part), sum(map(len, part)), "now"))
            self.sources.append(SourceRecord(source, "s", [doc_id], "now"))
        self.n_docs = n // CHUNKS_PER_DOC  # the rest are the spare documents

    def queries(self, count: int, seed: int = 1) -> tuple[list[str], np.ndarray]:
        """Fragments of stored passages, and vectors near theirs."""
        rng = np.random.default_rng(seed)
        rows = rng.choice(self.n_docs * CHUNKS_PER_DOC, size=count, replace=False)
        texts = [self.chunks[r].text[10:40].strip() for r in rows]  # the retriever strips questions
        noise = unit(rng.standard_normal((count, DIM), dtype=np.float32))
        return texts, unit(self.vectors[rows] + 0.8 * noise)


class FixedEmbedder:
    """Returns the prepared vector of each query text (no model)."""

    model_id, dim = MODEL, DIM

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def embed(self, texts: Sequence[str], kind: str = "query") -> np.ndarray:
        return np.stack([self.table[t] for t in texts])


def run_backend(location: str, n_chunks: int, n_queries: int, writes: int) -> dict[str, Any]:
    """Every measurement for one backend (run in a process of its own)."""
    from rag.index.chunking import ChunkingConfig
    from rag.index.locations import open_store, open_store_for_writing
    from rag.index.store import Store
    from rag.qa.retriever import Retriever

    data = Contents(n_chunks, writes)
    bulk_n = data.n_docs * CHUNKS_PER_DOC
    texts, vectors = data.queries(n_queries)
    rss_start = current_rss_mb()
    writer: Store = open_store_for_writing(location, MODEL, DIM, ChunkingConfig())
    with timed() as bulk:
        writer.commit([], data.chunks[:bulk_n], data.vectors[:bulk_n], data.documents[: data.n_docs], data.sources[: data.n_docs])
    log(f"{location}: bulk load of {bulk_n} chunks in {bulk.seconds:.1f} s")

    rss_before_open = current_rss_mb()
    reader = open_store(location)
    retriever = Retriever(reader, FixedEmbedder(dict(zip(texts, vectors))))
    retriever.search(texts[0], K)  # builds the FAISS/BM25 structures once
    rss_open = current_rss_mb()
    calls = {
        "dense": lambda n: reader.search_dense(vectors[n], K),
        "bm25": lambda n: reader.search_lexical(texts[n], K),
        "hybrid": lambda n: retriever.search(texts[n], K),
    }
    search: dict[str, Any] = {}
    for mode, call in calls.items():
        samples = []
        for n in range(len(texts)):
            with timed() as t:
                call(n)
            samples.append(t.seconds)
        search[mode] = percentiles(samples, 1000)
        log(f"{location}: {mode} p50 {search[mode]['p50']} ms")

    added, removed = [], []
    documents, sources = list(data.documents[: data.n_docs]), list(data.sources[: data.n_docs])
    for w in range(writes):
        doc = data.documents[data.n_docs + w]
        rows = [i for i, c in enumerate(data.chunks) if c.doc_id == doc.doc_id][:5]
        documents.append(doc)
        sources.append(data.sources[data.n_docs + w])
        with timed() as commit:
            writer.commit([], [data.chunks[i] for i in rows], data.vectors[rows], documents, sources)
        with timed() as seen:
            reader.refresh()
            retriever.search(texts[w], K)
        added.append((commit.seconds, seen.seconds))
        gone = documents.pop(0)
        sources.pop(0)
        with timed() as commit:
            writer.commit([gone.doc_id], [], np.zeros((0, DIM), dtype=np.float32), documents, sources)
        with timed() as seen:
            reader.refresh()
            retriever.search(texts[w], K)
        removed.append((commit.seconds, seen.seconds))
    log(f"{location}: writes done")
    return {
        "location_kind": "milvus-lite" if location.startswith("milvus-lite") else "faiss-directory",
        "chunks": bulk_n,
        "bulk_load_s": round(bulk.seconds, 2),
        "bulk_load_cpu_s": round(bulk.cpu_seconds, 2),
        "search_ms": search,
        "add_document_commit_ms": percentiles([a for a, _ in added], 1000),
        "add_document_reader_refresh_and_search_ms": percentiles([b for _, b in added], 1000),
        "remove_document_commit_ms": percentiles([a for a, _ in removed], 1000),
        "remove_document_reader_refresh_and_search_ms": percentiles([b for _, b in removed], 1000),
        "rss_mb_at_start": rss_start,
        "rss_mb_reader_open_delta": round(rss_open - rss_before_open, 1),
        "rss_mb_after_search": current_rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
    }


def limit_memory(gigabytes: float | None) -> Any:
    """A ``preexec_fn`` that caps the child's address space, or None."""
    if gigabytes is None:
        return None
    limit = int(gigabytes * 2**30)
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def size_label(chunks: int) -> str:
    """10000 -> "10k", 1000000 -> "1m"."""
    return f"{chunks // 1_000_000}m" if chunks % 1_000_000 == 0 else f"{chunks // 1000}k"


def render_markdown(payload: dict[str, Any]) -> str:
    runs = payload["backends"]
    names = list(runs)

    def row(label: str, get: Any) -> list[Any]:
        return [
            label,
            *(
                get(runs[name]) if "did_not_finish" not in runs[name] else f"did not finish: {runs[name]['did_not_finish']}"
                for name in names
            ),
        ]

    table = markdown_table(
        ["", *names],
        [
            row("bulk load, one commit (s)", lambda r: r["bulk_load_s"]),
            row(
                "dense search (store) p50 / p95 (ms)",
                lambda r: f"{r['search_ms']['dense']['p50']} / {r['search_ms']['dense']['p95']}",
            ),
            row(
                "BM25 search (store) p50 / p95 (ms)",
                lambda r: f"{r['search_ms']['bm25']['p50']} / {r['search_ms']['bm25']['p95']}",
            ),
            row(
                "hybrid: Retriever, both + RRF, p50 / p95 (ms)",
                lambda r: f"{r['search_ms']['hybrid']['p50']} / {r['search_ms']['hybrid']['p95']}",
            ),
            row("add one document (5 chunks): commit p50 (ms)", lambda r: r["add_document_commit_ms"]["p50"]),
            row(
                "  then a reader's refresh + first search p50 (ms)",
                lambda r: r["add_document_reader_refresh_and_search_ms"]["p50"],
            ),
            row("remove one document: commit p50 (ms)", lambda r: r["remove_document_commit_ms"]["p50"]),
            row(
                "  then a reader's refresh + first search p50 (ms)",
                lambda r: r["remove_document_reader_refresh_and_search_ms"]["p50"],
            ),
            row("RSS added by opening the index to read (MiB)", lambda r: r["rss_mb_reader_open_delta"]),
            row("peak RSS of the process (MiB)", lambda r: r["peak_rss_mb"]),
        ],
    )
    return (
        f"# Store benchmark: FAISS index directory vs Milvus Lite, {payload['chunks']:,} chunks\n\n"
        f"Real news passages (crud_news, cut to {CHUNK_CHARS} characters, {CHUNKS_PER_DOC} per document) with synthetic "
        f"unit vectors of dim {DIM}; k={K} candidates per search as the retriever asks, {payload['queries']} queries per mode; "
        f"{payload['writes']} additions and {payload['writes']} removals. Each backend ran in its own process, one after the other. "
        "Milvus Lite's dense index is FLAT (exact), like the directory's IndexFlatIP; its BM25 is Milvus's own (jieba analyzer).\n\n"
        f"{table}\n\n"
        "The directory (format rag-zh-index/2) writes a new segment with the added chunks plus the manifest on a commit "
        "(removals are tombstones in the manifest), and a reader's refresh loads only the new segments; FAISS and BM25 "
        "follow in place (rows appended, removed rows masked; BM25 statistics are computed at query time). Milvus writes only the changed rows "
        "plus the metadata pages, and a reader's refresh re-reads the metadata only.\n\n"
        "Not measured here: a Milvus server (standalone or cluster), which cannot run on this machine.\n\n"
        + machine_markdown(payload["machine"], payload["command"])
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--timeout-s", type=float, default=None, help="give up on a backend after this long (reported)")
    parser.add_argument("--backends", default="faiss,milvus-lite", help="which to run: faiss, milvus-lite or both")
    parser.add_argument("--memory-gb", type=float, default=None, help="address-space limit of each backend's process (reported)")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR)
    parser.add_argument("--location", help=argparse.SUPPRESS)  # internal: measure one backend, print JSON
    args = parser.parse_args(argv)
    if args.location:
        print(json.dumps(run_backend(args.location, args.chunks, args.queries, args.writes)))
        return
    machine = machine_info(PACKAGES)
    backends = {}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as scratch:
        chosen = args.backends.split(",")
        for name, location in (("FAISS directory", f"{scratch}/faiss"), ("Milvus Lite", f"milvus-lite://{scratch}/kb.db")):
            if ("faiss" if name.startswith("FAISS") else "milvus-lite") not in chosen:
                continue
            command = [
                sys.executable,
                __file__,
                "--location",
                location,
                *(f"--{k}={v}" for k, v in (("chunks", args.chunks), ("queries", args.queries), ("writes", args.writes))),
            ]
            try:
                done = subprocess.run(
                    command,
                    check=True,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout_s,
                    preexec_fn=limit_memory(args.memory_gb),
                )
            except subprocess.TimeoutExpired as timeout:
                sys.stderr.write(timeout.stderr.decode() if isinstance(timeout.stderr, bytes) else timeout.stderr or "")
                log(f"{name}: did not finish within {args.timeout_s:.0f} s")
                backends[name] = {"did_not_finish": f"within {args.timeout_s:.0f} s"}
                continue
            except subprocess.CalledProcessError as failed:
                sys.stderr.write(failed.stderr)
                reason = "out of memory" if "MemoryError" in failed.stderr else f"exit {failed.returncode}"
                log(f"{name}: failed ({reason})")
                backends[name] = {"did_not_finish": f"{reason} (limit {args.memory_gb} GB)" if args.memory_gb else reason}
                continue
            sys.stderr.write(done.stderr)
            backends[name] = json.loads(done.stdout.strip().splitlines()[-1])
    payload = {
        "command": command_line(),
        "machine": machine,
        "chunks": args.chunks,
        "queries": args.queries,
        "writes": args.writes,
        "backends": backends,
    }
    json_path, md_path = write_results(f"store-{size_label(args.chunks)}", payload, render_markdown(payload), args.out_dir)
    log(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
