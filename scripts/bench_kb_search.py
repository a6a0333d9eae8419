"""Benchmark a search over several knowledge bases against one knowledge base of the same chunks.

Issue 28 asks: on 3 KBs of 10k chunks each, a search over all three has p95 within 1.5x a search
over one KB of 30k chunks. Both layouts hold the same chunks with the same vectors:

- articles of ``../shared/data/crud_news.corpus.jsonl.gz`` in file order, loaded and chunked as
  ``rag ingest`` does (the JSONL reader, the default chunking), until there are enough chunks;
- each chunk embedded once with the configured embedder (the bundled e5-small, int8 by default),
  in batches of similar token length as ingest makes them, kept in ``<workdir>/pending`` so a rerun
  embeds nothing;
- three FAISS index directories of consecutive articles (about ``--chunks-per-kb`` chunks each),
  and one directory of all of them, written with the same vectors;
- knowledge bases registered in a scratch database, searched through
  :meth:`rag.components.Components.searcher` (what the web chat, the API and MCP use): the
  three KBs together (each KB's hybrid ranking, merged by RRF) vs the one big KB.

Queries are question-like strings made from the opening sentence of articles spread over the
three KBs. The two layouts are timed interleaved, query by query, alternating which goes first,
so load from other processes falls on both alike. Each timing is what the pipeline does per
question: ``refresh()`` (is there a newer index?) then a hybrid ``search`` for the top 5 (the
query embedding included); each layout is timed a second way, with the query's vector computed
beforehand, to show what the layouts themselves cost apart from the embedding both pay.

Example::

    python scripts/bench_kb_search.py                    # writes benchmarks/kb-search.{json,md}
    python scripts/bench_kb_search.py --chunks-per-kb 500 --queries 20 --out-dir /tmp/b   # dry run
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (
    BENCH_DIR,
    REPO_ROOT,
    command_line,
    load_average,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    peak_rss_mb,
    percentiles,
    timed,
    write_results,
)

if TYPE_CHECKING:
    from rag.index.chunking import Chunk
    from rag.index.documents import Document
    from rag.models.embedders import Embedder
    from rag.qa.kb_search import KbRetriever

PACKAGES = ("faiss-cpu", "scipy", "jieba", "torch", "sentence-transformers", "numpy")
CORPUS = REPO_ROOT.parent / "shared" / "data" / "crud_news.corpus.jsonl.gz"
K = 5
ARTICLES_PER_CHUNK = 0.5  # more than enough articles to read: CRUD articles give about 3 chunks each
ASKS = ("是怎么回事？", "的具体情况如何？", "有哪些细节？", "是什么时候发生的？", "涉及哪些数字？")


def load_documents(workdir: Path, chunks_wanted: int) -> list[Document]:
    """The first articles of the corpus, read by the ingest's own JSONL reader."""
    from rag.index.documents import load_file

    rows = int(chunks_wanted * ARTICLES_PER_CHUNK) + 100
    path = workdir / f"crud_news_first{rows}.jsonl"
    if not path.is_file():
        with gzip.open(CORPUS, "rt", encoding="utf-8") as source, path.open("w", encoding="utf-8") as out:
            for n, line in enumerate(source):
                if n == rows:
                    break
                out.write(line)
    return load_file(path)


def split_kbs(documents: Sequence[Document], kbs: int, per_kb: int) -> list[list[tuple[Document, list[Chunk]]]]:
    """Consecutive documents, chunked, into ``kbs`` groups of at least ``per_kb`` chunks each."""
    from rag.index.chunking import ChunkingConfig, chunk_document

    groups: list[list[tuple[Document, list[Chunk]]]] = [[] for _ in range(kbs)]
    filled, counts = 0, [0] * kbs
    for document in documents:
        chunks = chunk_document(document, ChunkingConfig())
        if not chunks:
            continue
        groups[filled].append((document, chunks))
        counts[filled] += len(chunks)
        if counts[filled] >= per_kb:
            filled += 1
            if filled == kbs:
                return groups
    raise SystemExit(f"not enough articles for {kbs} x {per_kb} chunks (got {counts}); raise ARTICLES_PER_CHUNK")


def embed_once(chunks: Sequence[Chunk], embedder: Embedder, workdir: Path, budget_s: float | None) -> tuple[np.ndarray, int]:
    """Vectors of ``chunks`` in order, each distinct text embedded once (kept under ``workdir``),
    and how many are real: past ``budget_s`` seconds of embedding the rest get random unit vectors
    (exact FAISS search costs the same whatever the values; the report says how many)."""
    from rag.index.faiss_store import PendingEmbeddings
    from rag.index.ingest import EMBED_BATCH, embed_lengths
    from rag.index.store import text_key

    journal = PendingEmbeddings(workdir, embedder.model_id)
    keys = [text_key(c) for c in chunks]
    text_of = {key: chunk.embed_text for key, chunk in zip(keys, chunks)}
    todo = [key for key in dict.fromkeys(keys) if key not in journal.vectors]
    log(f"{len(text_of)} distinct chunk texts, {len(text_of) - len(todo)} embedded before, {len(todo)} to embed")
    lengths = dict(zip(todo, embed_lengths(embedder, [text_of[k] for k in todo]), strict=True))
    todo.sort(key=lambda key: (lengths[key], key))
    started = time.perf_counter()
    for start in range(0, len(todo), EMBED_BATCH):
        if budget_s is not None and time.perf_counter() - started > budget_s:
            log(f"embedding budget spent: {len(todo) - start} chunks get random vectors")
            break
        batch = todo[start : start + EMBED_BATCH]
        journal.add(batch, embedder.embed([text_of[k] for k in batch], kind="passage"))
        done = start + len(batch)
        if done % (EMBED_BATCH * 16) == 0 or done == len(todo):
            log(f"embedded {done}/{len(todo)} ({done / (time.perf_counter() - started):.1f}/s)")
    rng = np.random.default_rng(0)
    filler = rng.standard_normal((len(keys), embedder.dim)).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    real = sum(key in journal.vectors for key in keys)
    return np.stack([journal.vectors.get(key, filler[n]) for n, key in enumerate(keys)]), real


def write_index(
    location: Path, group: Sequence[tuple[Document, list[Chunk]]], vectors: dict[str, np.ndarray], embedder: Embedder
) -> None:
    """One FAISS index directory of ``group``'s chunks, with the vectors computed before."""
    from rag.files import now_iso
    from rag.index.chunking import ChunkingConfig
    from rag.index.locations import open_store_for_writing
    from rag.index.store import DocumentRecord, SourceRecord

    chunks = [chunk for _, cs in group for chunk in cs]
    documents = [
        DocumentRecord(d.doc_id, d.title, d.source, d.content_hash, len(cs), len(d.text), now_iso(), date=d.date)
        for d, cs in group
    ]
    by_source: dict[str, list[str]] = {}
    for document, _ in group:
        by_source.setdefault(document.source, []).append(document.doc_id)
    sources = [SourceRecord(path, "bench", ids, now_iso()) for path, ids in by_source.items()]
    writer = open_store_for_writing(str(location), embedder.model_id, embedder.dim, ChunkingConfig())
    writer.commit([], chunks, np.stack([vectors[c.chunk_id] for c in chunks]), documents, sources)


def make_queries(groups: Sequence[Sequence[tuple[Document, list[Chunk]]]], count: int) -> list[str]:
    """Question-like strings from the opening sentence of articles spread evenly over the KBs."""
    queries: list[str] = []
    per_kb = -(-count // len(groups))
    for group in groups:
        step = max(1, len(group) // per_kb)
        for document, _ in group[::step][:per_kb]:
            body = document.text.split("正文：", 1)[-1]
            body = re.sub(r"^.{0,30}?消息[，,]", "", body.strip())  # "IT之家 8 月 16 日消息，"
            lede = re.split(r"[，。！？；,]", body, maxsplit=1)[0].strip()[:30]
            queries.append(lede + ASKS[len(queries) % len(ASKS)])
    return queries[:count]


def timed_search(searcher: KbRetriever, query: str) -> tuple[float, float]:
    """Wall and CPU seconds of what the pipeline does per question: refresh, then a hybrid search."""
    with timed() as clock:
        searcher.refresh()
        searcher.search(query, K)
    return clock.seconds, clock.cpu_seconds


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build (or reuse) both layouts under ``args.workdir`` and time them interleaved."""
    from rag.components import Components
    from rag.config import Settings
    from rag.index.locations import store_exists
    from rag.models.embedders import embedder_for

    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings(db_file=workdir / "rag.db").with_index(workdir / "index" / "default")
    with timed() as load:
        embedder = embedder_for(settings)
    log(f"embedder {embedder.model_id} loaded in {load.seconds:.1f} s")

    groups = split_kbs(load_documents(workdir, args.kbs * args.chunks_per_kb), args.kbs, args.chunks_per_kb)
    every = [chunk for group in groups for _, chunks in group for chunk in chunks]
    with timed() as embedding:
        found, real = embed_once(every, embedder, workdir, args.embed_budget_s)
    if args.embed_only:
        return {"embedded": real, "chunks": len(every)}
    vectors = dict(zip((c.chunk_id for c in every), found))
    locations = {f"part{n + 1}": workdir / "index" / f"part{n + 1}" for n in range(args.kbs)}
    locations["all"] = workdir / "index" / "all"
    for name, location in locations.items():
        if not store_exists(str(location)):
            write_index(
                location,
                [item for group in groups for item in group] if name == "all" else groups[int(name[4:]) - 1],
                vectors,
                embedder,
            )
            log(f"wrote {location}")

    components = Components(settings, embedder=embedder)
    registry = components.kbs()
    known = {kb.name for kb in registry.list()}
    kbs = {
        name: registry.get(name) if name in known else registry.create(name, location=str(loc)) for name, loc in locations.items()
    }
    layouts = {
        f"{args.kbs} KBs": components.searcher([kbs[name] for name in locations if name != "all"]),
        "1 KB": components.searcher([kbs["all"]]),
    }
    sizes = {label: [part.retriever.store.count() for part in searcher.parts] for label, searcher in layouts.items()}
    log(f"chunks per KB: {sizes}")
    queries = make_queries(groups, args.queries)
    vectors_of, embed_seconds = {}, []
    for query in queries:  # what embedding one query costs, and the vectors for the layouts below
        with timed() as clock:
            vectors_of[query] = embedder.embed([query], kind="query")[0]
        embed_seconds.append(clock.seconds)
    given = GivenVectors(embedder, vectors_of)
    many, one = list(layouts)
    layouts[f"{many}, query vector given"] = with_embedder(layouts[many], given)
    layouts[f"{one}, query vector given"] = with_embedder(layouts[one], given)
    for searcher in layouts.values():  # FAISS and BM25 structures are built on first use
        timed_search(searcher, queries[0])

    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in layouts}
    labels = list(layouts)
    for round_number in range(args.rounds):
        for n, query in enumerate(queries):
            shift = (n + round_number) % len(labels)  # each layout goes first as often as the others
            for label in labels[shift:] + labels[:shift]:
                samples[label].append(timed_search(layouts[label], query))
        log(f"round {round_number + 1}/{args.rounds} done")

    wall = {label: percentiles([s for s, _ in found], 1000) for label, found in samples.items()}
    cpu = {label: percentiles([c for _, c in found], 1000) for label, found in samples.items()}
    many_given, one_given = labels[2:]
    return {
        "kbs": args.kbs,
        "chunks_per_kb": sizes[many],
        "chunks_one_kb": sizes[one][0],
        "articles": sum(len(group) for group in groups),
        "queries": len(queries),
        "rounds": args.rounds,
        "k": K,
        "embedder": embedder.model_id,
        "embedding": {"chunks": len(every), "real_vectors": real, "seconds": round(embedding.seconds, 1)},
        "wall_ms": wall,
        "cpu_ms": cpu,
        "query_embedding_ms": percentiles(embed_seconds, 1000),
        "ratio_p95": round(wall[many]["p95"] / wall[one]["p95"], 3),
        "ratio_p50": round(wall[many]["p50"] / wall[one]["p50"], 3),
        "ratio_cpu_p95": round(cpu[many]["p95"] / cpu[one]["p95"], 3),
        "ratio_given_p95": round(wall[many_given]["p95"] / wall[one_given]["p95"], 3),
        "ratio_given_p50": round(wall[many_given]["p50"] / wall[one_given]["p50"], 3),
        "example_queries": queries[:5],
        "peak_rss_mb": peak_rss_mb(),
    }


class GivenVectors:
    """The embedder's model id and dimension, answering queries with vectors computed before (the
    search without the query embedding, which both layouts pay alike)."""

    def __init__(self, embedder: Embedder, vectors: dict[str, np.ndarray]) -> None:
        self.model_id, self.dim, self.vectors = embedder.model_id, embedder.dim, vectors

    def embed(self, texts: Sequence[str], kind: str = "query") -> np.ndarray:
        return np.stack([self.vectors[text] for text in texts])


def with_embedder(searcher: KbRetriever, embedder: Any) -> KbRetriever:
    """The same KBs (the same loaded stores and locks) searched with ``embedder``."""
    from rag.qa.kb_search import KbPart, KbRetriever
    from rag.qa.retriever import Retriever

    return KbRetriever([KbPart(part.name, Retriever(part.retriever.store, embedder), part.lock) for part in searcher.parts])


def render_markdown(payload: dict[str, Any]) -> str:
    result = payload["result"]
    wall, cpu = result["wall_ms"], result["cpu_ms"]
    sizes = {
        True: " + ".join(f"{n:,}" for n in result["chunks_per_kb"]),
        False: f"{result['chunks_one_kb']:,}",
    }
    table = markdown_table(
        ["layout", "chunks", "p50 (ms)", "p95 (ms)", "mean (ms)", "CPU p50 / p95 (ms)"],
        [
            [
                label,
                sizes[label.startswith(f"{result['kbs']} KBs")],
                wall[label]["p50"],
                wall[label]["p95"],
                wall[label]["mean"],
                f"{cpu[label]['p50']} / {cpu[label]['p95']}",
            ]
            for label in wall
        ],
    )
    verdict = "within" if result["ratio_p95"] <= 1.5 else "**over**"
    return (
        f"# Search over {result['kbs']} knowledge bases vs one of the same chunks\n\n"
        f"Issue 28's check: {result['kbs']} KBs of about {min(result['chunks_per_kb']):,} chunks each, searched together, "
        f"against one KB of all {result['chunks_one_kb']:,} chunks; p95 within 1.5x.\n\n"
        f"**p95 ratio {result['ratio_p95']}** ({verdict} 1.5), p50 ratio {result['ratio_p50']}, "
        f"CPU-time p95 ratio {result['ratio_cpu_p95']}. Without the query embedding (both layouts given the query's "
        f"vector): p95 ratio {result['ratio_given_p95']}, p50 ratio {result['ratio_given_p50']}.\n\n"
        f"{table}\n\n"
        f"Per search: `refresh()` then a hybrid search for the top {result['k']} through `Components.searcher` "
        "(the query embedded once; per KB BM25 + FAISS fused by RRF; several KBs merged by RRF), "
        f"{result['queries']} queries x {result['rounds']} rounds per layout, the layouts interleaved query by query "
        "(each going first in turn). The rows *query vector given* search the same loaded stores with the query's vector "
        "computed beforehand: what the layouts themselves cost. Embedding one query alone: p50 "
        f"{result['query_embedding_ms']['p50']} ms, p95 {result['query_embedding_ms']['p95']} ms.\n\n"
        f"Data: the first {result['articles']:,} CRUD news articles (`crud_news.corpus.jsonl.gz`), read by the ingest's "
        f"JSONL reader and chunked with the default chunking; {result['embedding']['chunks']:,} chunks embedded once with "
        f"`{result['embedder']}` ({result['embedding']['seconds']} s in this run; vectors kept from an earlier run are not "
        "embedded again), and every index written from those vectors: consecutive articles to each small KB, all of them to "
        f"the big one.{_filler_note(result['embedding'])} "
        "Each store is a FAISS index directory (exact inner product) with its BM25 index. Queries are the opening clause "
        f"of articles spread evenly over the KBs plus a question ending, e.g. {', '.join(result['example_queries'][:3])}.\n\n"
        f"Peak RSS of the process {result['peak_rss_mb']} MiB (the embedder, both layouts loaded).\n\n"
        + machine_markdown(payload["machine"], payload["command"])
    )


def _filler_note(embedding: dict[str, int]) -> str:
    """The sentence saying how many chunks got random vectors, if any did."""
    missing = embedding["chunks"] - embedding["real_vectors"]
    if not missing:
        return ""
    return (
        f" **{embedding['real_vectors']:,} chunks have the model's vectors, the other {missing:,} random unit vectors**: "
        "embedding them all did not fit the session (about 5 chunks/s on the shared cores; `--embed-only` ran first and was "
        "stopped, `--embed-budget-s 0` then used what it had kept). Exact FAISS search costs the same whatever the values, "
        "and BM25 reads the real text."
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kbs", type=int, default=3)
    parser.add_argument("--chunks-per-kb", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the queries, per layout")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-kb-search"), help="vectors and indexes (reused)")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR)
    parser.add_argument(
        "--embed-budget-s",
        type=float,
        default=None,
        help="stop embedding after this long (random vectors for the rest, reported)",
    )
    parser.add_argument(
        "--embed-only", action="store_true", help="only embed the chunks into the workdir (run it in the background first)"
    )
    parser.add_argument("--name", default="kb-search", help="output file name, without extension")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    machine = machine_info(PACKAGES)
    result = run(args)
    if args.embed_only:
        log(f"embedded {result['embedded']} of {result['chunks']} chunks")
        return
    machine["load_average_at_end"] = load_average()
    payload = {"command": command_line(), "machine": machine, "result": result}
    paths = write_results(args.name, payload, render_markdown(payload), args.out_dir)
    log(f"p95 ratio {result['ratio_p95']}; wrote {', '.join(map(str, paths))}")


if __name__ == "__main__":
    main()
