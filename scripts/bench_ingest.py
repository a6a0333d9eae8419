"""Benchmark ingest and query latency on the first N articles of the CRUD news corpus.

What it measures, in order:

1. float32 sgemm peak of this machine (numpy and torch, ``--threads`` threads) and, from it, the
   FLOP ceiling of the embedding model (../shared/DESIGN.md: ~42 MFLOP per token for e5-small);
2. a fresh ingest of N articles (written to a temporary ``.jsonl``) with the real embedder:
   chunks, seconds, chunks/s, embedding-only chunks/s, tokens per chunk, padding overhead, the
   achieved share of the FLOP ceiling, peak RSS, and a stage breakdown;
3. a re-ingest of the unchanged file (should embed 0 chunks) and of the file with one article
   edited (should embed only that article's changed chunks);
4. query latency (p50/p95) for hybrid, dense-only and BM25-only search over ~50 Chinese queries
   (fragments of the indexed articles plus generic news questions), the query-embedding share,
   and a self-retrieval sanity check (is the source article in the top 5?).

Results go to ``benchmarks/<name>.json`` and ``benchmarks/<name>.md``.

Example::

    python scripts/bench_ingest.py                       # the real bundled e5-small, 1000 articles
    python scripts/bench_ingest.py --embed-model fake:hashing --articles 50 --out-dir /tmp/b
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import (
    BENCH_DIR,
    command_line,
    load_average,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    measure_sgemm_gflops,
    peak_rss_mb,
    percentiles,
    timed,
    write_results,
)

from rag.config import Settings
from rag.index.ingest import EMBED_BATCH, IngestReport, embed_lengths, ingest
from rag.models.embedders import Embedder, TextKind, make_embedder
from rag.qa.retriever import SEARCH_MODES, Retriever

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "crud_news.corpus.jsonl.gz"
PACKAGES = (
    "numpy",
    "torch",
    "sentence-transformers",
    "transformers",
    "faiss-cpu",
    "scipy",
    "jieba",
    "langchain-text-splitters",
    "threadpoolctl",
)

# ../shared/DESIGN.md: e5-small has ~21 M encoder parameters -> ~42 MFLOP per token; a 300-char Chinese
# passage is ~190 tokens. Used only when the embedder exposes no model to count from.
DESIGN_FLOP_PER_TOKEN = 42e6
DESIGN_TOKENS_PER_CHAR = 190 / 300
DESIGN_SGEMM_GFLOPS = 170.0

GENERIC_QUESTIONS = (
    "最近有哪些新手机发布？",
    "人工智能大模型有什么新进展？",
    "新能源汽车的售价是多少？",
    "哪里发生了火灾？",
    "外交部对粮食安全问题怎么说？",
    "广州动物园的老虎为什么很瘦？",
    "台风对哪些地区造成了影响？",
    "市场监管部门出台了哪些新措施？",
    "游戏《星空》什么时候发售？",
    "苹果公司最近有什么新产品？",
    "暑期消费市场表现如何？",
    "普京和金正恩互致贺电说了什么？",
    "医院科主任被举报了什么问题？",
    "天津摊主持刀伤人事件是怎么处理的？",
    "今年夏天的高温天气情况如何？",
    "北京举办了什么啤酒节活动？",
    "京东第二季度营收是多少？",
    "芯片出口管制有什么新消息？",
    "阿富汗酒店爆炸造成多少人伤亡？",
    "视觉中国为什么下架摄影师的作品？",
)

_TEXT_HEAD = re.compile(r"^.*?正文：\s*")
_LEAD = re.compile(r"^(原标题：)?\s*(\S{0,12}?\s*\d+\s*月\s*\d+\s*日\s*(消息|电|讯)\s*[，,]?)?")
_SENTENCE = re.compile(r"[。！？!?；;]")


# ---------------------------------------------------------------- inputs


def write_first_rows(corpus: Path, n: int, dest: Path) -> list[dict[str, Any]]:
    """Copy the first ``n`` rows of a (gzipped) jsonl corpus to ``dest``; returns the rows."""
    opener = gzip.open if corpus.suffix == ".gz" else open
    rows: list[dict[str, Any]] = []
    with opener(corpus, "rt", encoding="utf-8") as source, dest.open("w", encoding="utf-8") as out:
        for line in source:
            if len(rows) >= n:
                break
            if line.strip():
                rows.append(json.loads(line))
                out.write(line if line.endswith("\n") else line + "\n")
    return rows


def fragment_query(text: str, max_chars: int = 28) -> str | None:
    """A title-like query from an article: its first sentence without date and dateline, capped."""
    body = _LEAD.sub("", _TEXT_HEAD.sub("", text, count=1).strip(), count=1).strip()
    first = _SENTENCE.split(body, maxsplit=1)[0].strip()
    first = re.sub(r"\s+", " ", first)[:max_chars].strip()
    return first if len(first) >= 8 else None


@dataclass(frozen=True)
class Query:
    """A benchmark query; ``pid`` is the article it was cut from (None for generic questions)."""

    text: str
    pid: str | None


def build_queries(rows: Sequence[dict[str, Any]], n_fragments: int) -> list[Query]:
    """``n_fragments`` article fragments spread evenly over ``rows``, then the generic questions."""
    queries: list[Query] = []
    seen: set[str] = set()
    step = max(len(rows) // max(n_fragments, 1), 1)
    for row in list(rows[::step]) + list(rows):
        if len(queries) >= n_fragments:
            break
        text = fragment_query(row["text"])
        if text and text not in seen:
            seen.add(text)
            queries.append(Query(text, str(row["pid"])))
    return queries + [Query(q, None) for q in GENERIC_QUESTIONS]


# ---------------------------------------------------------------- embedder instrumentation


@dataclass
@dataclass(frozen=True)
class EmbedCall:
    """One recorded ``embed`` call: when it started (``perf_counter``), its wall and CPU seconds, its texts."""

    start: float
    seconds: float
    cpu_seconds: float
    texts: list[str]

    @property
    def end(self) -> float:
        return self.start + self.seconds


@dataclass
class RecordingEmbedder:
    """Wraps an :class:`Embedder`, recording every call's texts, wall time and CPU time."""

    inner: Embedder
    calls: list[EmbedCall] = field(default_factory=list)

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """The inner embedder's token counts, so the ingest sorts its batches as it would unwrapped."""
        return embed_lengths(self.inner, texts)

    def embed(self, texts: Sequence[str], kind: TextKind = "passage") -> np.ndarray:
        start = time.perf_counter()
        with timed() as t:
            vectors = self.inner.embed(texts, kind=kind)
        self.calls.append(EmbedCall(start, t.seconds, t.cpu_seconds, list(texts)))
        return vectors

    @property
    def seconds(self) -> float:
        return sum(call.seconds for call in self.calls)

    @property
    def cpu_seconds(self) -> float:
        return sum(call.cpu_seconds for call in self.calls)

    @property
    def texts(self) -> int:
        return sum(len(call.texts) for call in self.calls)


def model_cost(embedder: Embedder) -> dict[str, Any]:
    """FLOP per token of the embedder's encoder (2 x weights of its Linear layers) and its shape.

    Falls back to ../shared/DESIGN.md's e5-small figure when the embedder is not a sentence-transformers model.
    """
    model = getattr(embedder, "_model", None)
    if model is None:
        return {"flop_per_token": DESIGN_FLOP_PER_TOKEN, "source": "DESIGN.md estimate (no model to count)"}
    import torch

    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    cost: dict[str, Any] = {
        "flop_per_token": 2.0 * linear,
        "linear_parameters": int(linear),
        "total_parameters": int(sum(p.numel() for p in model.parameters())),
        "source": "2 x Linear weights counted in the loaded model (embeddings excluded)",
    }
    try:
        config = model[0].auto_model.config
        cost.update(layers=int(config.num_hidden_layers), hidden=int(config.hidden_size))
    except (AttributeError, IndexError, TypeError):
        pass
    return cost


def token_stats(embedder: Embedder, calls: Sequence[EmbedCall]) -> dict[str, Any]:
    """Tokens per embedded text and the padding overhead of the batches the ingest really ran.

    sentence-transformers sorts each ``encode`` call's texts by character length and pads every
    mini-batch (``batch_size``) to its longest member; this replays that on the recorded calls.
    Without a tokenizer, tokens are estimated from characters (../shared/DESIGN.md: 300 chars ~ 190 tokens).
    """
    model = getattr(embedder, "_model", None)
    prefix = getattr(embedder, "_prefix", {}).get("passage", "")
    batch_size = int(getattr(embedder, "batch_size", 16))
    real = padded = texts_n = 0
    lengths: list[int] = []

    def padded_tokens(counts: np.ndarray) -> int:
        """Tokens after padding each mini-batch of ``counts`` (already in batch order) to its longest."""
        return sum(
            int(counts[i : i + batch_size].max()) * len(counts[i : i + batch_size]) for i in range(0, len(counts), batch_size)
        )

    for call in calls:
        prefixed = [prefix + t for t in call.texts]
        if model is not None:
            encoded = model.tokenizer(prefixed, truncation=True, max_length=model.max_seq_length)["input_ids"]
            counts = np.array([len(ids) for ids in encoded])
        else:
            counts = np.array([round(len(t) * DESIGN_TOKENS_PER_CHAR) for t in prefixed])
        padded += padded_tokens(counts[np.argsort([-len(t) for t in prefixed], kind="stable")])
        real += int(counts.sum())
        texts_n += len(call.texts)
        lengths.extend(counts.tolist())
    return {
        "method": "embedder tokenizer" if model is not None else "estimate: 190 tokens per 300 chars",
        "texts": texts_n,
        "tokens_total": real,
        "tokens_per_chunk_mean": round(real / max(texts_n, 1), 1),
        "tokens_per_chunk_p50": float(np.median(lengths)) if lengths else 0.0,
        "tokens_per_chunk_max": int(max(lengths, default=0)),
        "padded_tokens_total": padded,
        "padding_overhead": round(padded / max(real, 1) - 1, 3),
        # the same texts sorted by token count across the whole ingest before batching
        "padding_overhead_if_sorted_globally": round(padded_tokens(np.sort(np.array(lengths))[::-1]) / max(real, 1) - 1, 3),
        "encode_batch_size": batch_size,
        "ingest_embed_batch": EMBED_BATCH,
    }


# ---------------------------------------------------------------- phases


def run_ingest(paths: list[Path], index: Path, embedder: Embedder) -> tuple[IngestReport, dict[str, Any], RecordingEmbedder]:
    """One ``ingest`` call with timing of its stages (via the progress callback and the recorder)."""
    recorder = RecordingEmbedder(embedder)
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault(f"{stage}_first", time.perf_counter())
        marks[f"{stage}_last"] = time.perf_counter()

    start = time.perf_counter()
    with timed() as total:
        report = ingest(paths, index, recorder, progress=progress)
    stages: dict[str, Any] = {
        "total_s": round(total.seconds, 3),
        "total_cpu_s": round(total.cpu_seconds, 3),
        "embed_calls_s": round(recorder.seconds, 3),
        "embed_calls_cpu_s": round(recorder.cpu_seconds, 3),
    }
    if recorder.calls:
        first_start, last_end = recorder.calls[0].start, recorder.calls[-1].end
        stages["load_and_chunk_s"] = round(first_start - start, 3)
        stages["pending_batch_saves_s"] = round(last_end - first_start - recorder.seconds, 3)
    if "write_first" in marks:
        stages["bm25_tokenize_and_save_s"] = round(marks["write_last"] - marks["write_first"], 3)
    return report, stages, recorder


def edit_one_article(path: Path, row_index: int) -> str:
    """Append a sentence to one article of a jsonl file in place; returns its pid."""
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[row_index])
    row["text"] += "（本文于基准测试中追加了一句话，用于测量增量更新。）"
    lines[row_index] = json.dumps(row, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(row["pid"])


T = TypeVar("T")


def median_ms(action: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median wall time of ``repeats`` calls of ``action`` in milliseconds, and the last call's result."""
    samples = []
    for _ in range(max(repeats, 1)):
        with timed() as t:
            result = action()
        samples.append(t.seconds * 1000)
    return float(np.median(samples)), result


def query_latency(
    retriever: Retriever, queries: Sequence[Query], repeats: int, k: int, modes: Sequence[str] = SEARCH_MODES
) -> dict[str, Any]:
    """Query-embedding time and per-mode search latency (median over ``repeats`` per query, then
    p50/p95 over queries), plus the share of fragment queries whose source article is in the top ``k``."""
    embedder = retriever.embedder
    embed_ms = [median_ms(partial(embedder.embed, [q.text], kind="query"), repeats)[0] for q in queries]
    results: dict[str, Any] = {"query_embedding_ms": percentiles(embed_ms)}
    fragments = sum(q.pid is not None for q in queries)
    for mode in modes:
        per_query, hits = [], 0
        for query in queries:
            ms, found = median_ms(partial(retriever.search, query.text, k=k, mode=mode), repeats)
            per_query.append(ms)
            hits += query.pid is not None and any(hit.chunk.doc_id == query.pid for hit in found)
        results[mode] = {"latency_ms": percentiles(per_query), f"self_hit_at_{k}": round(hits / max(fragments, 1), 3)}
    return results


def set_threads(threads: int) -> None:
    """Threads for torch (the query embedder) and FAISS (OpenMP) alike."""
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


# ---------------------------------------------------------------- report


def ceiling(sgemm_gflops: float, flop_per_token: float, tokens_per_chunk: float) -> float:
    """Chunks per second if every FLOP ran at the sgemm peak."""
    return sgemm_gflops * 1e9 / (flop_per_token * tokens_per_chunk)


def _stages(stages: dict[str, float]) -> str:
    return ", ".join(f"{name.removesuffix('_s').replace('_', ' ')} {seconds}" for name, seconds in stages.items())


def render_markdown(result: dict[str, Any]) -> str:
    """The short human summary of one run."""
    cfg, first, flops = result["config"], result["ingest"], result["flop_ceiling"]
    tok, q, sgemm = first["tokens"], result["queries"], flops["sgemm"]
    again, edit = result["reingest_unchanged"], result["reingest_one_edit"]
    k, one = q["k"], q["one_thread"]
    ingest_header = [
        "articles",
        "chunks",
        "total s",
        "chunks/s",
        "embedding-only chunks/s",
        "tokens/chunk",
        "peak RSS MiB",
    ]
    ingest_row = [first["articles"], first["chunks"], first["seconds"], first["chunks_per_s"]]
    ingest_row += [first["embed_only_chunks_per_s"], tok["tokens_per_chunk_mean"], first["peak_rss_mb"]]
    query_header = ["mode", "p50 ms", "p95 ms", "max ms", "p50 ms, 1 thread", f"fragment self-hit@{k}"]
    query_rows = [
        [mode, *(q[mode]["latency_ms"][p] for p in ("p50", "p95", "max"))]
        + [one[mode]["latency_ms"]["p50"] if mode in one else "-", q[mode][f"self_hit_at_{k}"]]
        for mode in SEARCH_MODES
    ]
    sgemm_cores = ", ".join(f"{run['cores_used_median']}" for run in sgemm.values())
    sgemm_runs = "; ".join(f"{name.replace('_', ' ')} {run['gflops_best']}" for name, run in sgemm.items())
    n_runs, matrix = len(sgemm["numpy_before"]["runs"]), sgemm["numpy_before"]["matrix"]
    lines = [
        f"# Ingest and query benchmark: {cfg['articles']} CRUD news articles, `{cfg['embed_model']}`",
        "",
        f"{cfg['threads']} threads; embedder load {cfg['embedder_load_s']} s.",
        "",
        "## Ingest (fresh index)",
        "",
        markdown_table(ingest_header, [ingest_row]),
        "",
        f"- stages (s): {_stages(first['stages'])}",
        (
            f"- the embedding ran on {first['embed_cores_used']} cores on average (CPU time / wall time) out of "
            f"{cfg['threads']}; with its cores free it would have done about "
            f"{first['embed_only_chunks_per_s_if_cores_free']} chunks/s"
        ),
        (
            f"- padding: ingest hands the embedder {tok['ingest_embed_batch']} texts per call and sentence-transformers "
            f"pads mini-batches of {tok['encode_batch_size']} to their longest text: {tok['padding_overhead']:.1%} extra "
            f"tokens; sorting all chunks by length first would cost {tok['padding_overhead_if_sorted_globally']:.1%}"
        ),
        (
            f"- peak RSS after loading the model {first['peak_rss_after_model_load_mb']} MiB, after ingest "
            f"{first['peak_rss_mb']} MiB"
        ),
        "",
        "## FLOP ceiling",
        "",
    ]
    if "estimate" in flops["flop_source"]:
        lines += ["_Not a transformer embedder: the ceiling is e5-small's and the ratio is meaningless._", ""]
    lines += [
        (
            f"- model cost {flops['flop_per_token'] / 1e6:.1f} MFLOP/token ({flops['flop_source']}) x "
            f"{tok['tokens_per_chunk_mean']} tokens/chunk = {flops['gflop_per_chunk']:.2f} GFLOP/chunk"
        ),
        (
            f"- measured sgemm peak, GFLOP/s, best of {n_runs} runs of {matrix}, {cfg['threads']} threads: {sgemm_runs}"
            f" (../shared/DESIGN.md: ~{DESIGN_SGEMM_GFLOPS:.0f} on an idle machine)"
        ),
        (
            f"- ceiling at the measured numpy peak ({flops['sgemm_numpy_peak_gflops']} GFLOP/s): "
            f"**{flops['ceiling_chunks_per_s_measured']:.1f} chunks/s**; at DESIGN's 170 GFLOP/s: "
            f"{flops['ceiling_chunks_per_s_design']:.1f} chunks/s"
        ),
        (
            f"- achieved, embedding only: {first['embed_only_chunks_per_s']} chunks/s = "
            f"**{flops['achieved_over_ceiling_measured']:.0%} of the measured ceiling** "
            f"({flops['achieved_over_ceiling_design']:.0%} of DESIGN's); effective {flops['achieved_gflops']:.1f} GFLOP/s "
            f"({flops['achieved_gflops_incl_padding']:.1f} counting padding tokens)"
        ),
        (
            f"- per CPU-second, which other processes distort much less: sgemm reached "
            f"{flops['sgemm_numpy_gflop_per_cpu_s']} GFLOP per core-second, the embedding "
            f"{flops['achieved_gflop_per_cpu_s']} = **{flops['achieved_over_peak_per_cpu_s']:.0%} of the per-core "
            f"peak**; the sgemm runs got {sgemm_cores} cores (CPU time / wall time) of the {cfg['threads']} they asked for"
        ),
        "",
        "## Re-ingest",
        "",
        (
            f"- same file again: embedded **{again['chunks_embedded']} chunks** ({again['embed_calls']} embed calls), "
            f"took **{again['seconds']} s**"
        ),
        (
            f"- one article edited in the same file: embedded {edit['chunks_embedded']} chunks, reused "
            f"{edit['chunks_reused']}, took {edit['seconds']} s (stages: {_stages(edit['stages'])})"
        ),
        "",
        "## Query latency",
        "",
        (
            f"{q['n_queries']} queries ({q['n_fragments']} article fragments, {q['n_queries'] - q['n_fragments']} generic "
            f"news questions), k={k}, median of {q['repeats']} runs per query, then percentiles over queries. "
            '"1 thread" repeats the measurement with `torch.set_num_threads(1)` and `faiss.omp_set_num_threads(1)`.'
        ),
        "",
        markdown_table(query_header, query_rows),
        "",
        (
            f"- query embedding alone: p50 {q['query_embedding_ms']['p50']} ms, p95 {q['query_embedding_ms']['p95']} ms "
            f"({cfg['threads']} threads); p50 {one['query_embedding_ms']['p50']} ms with 1 thread"
        ),
        (
            f"- cold first query (builds BM25 and FAISS in memory): {q['cold_first_query_ms']} ms; index load "
            f"{q['retriever_load_ms']} ms"
        ),
        "- dense-only search also runs BM25 (the retriever computes it for the lexical-overlap flag)",
        f"- load average at the end of the run: {result['load_average_at_end']}",
        "",
        machine_markdown(result["machine"], result["command"]),
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    settings = Settings()
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Writes <out-dir>/<name>.json and <out-dir>/<name>.md. Run long benchmarks under nohup.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--articles", type=int, default=1000, help="how many articles (first rows of the corpus)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="gzip or plain jsonl rows {pid, text, title}")
    parser.add_argument(
        "--embed-model",
        default=settings.embed_model,
        help="embedding model: the bundled e5, 'fake:hashing' for a dry run, a folder or a hub id",
    )
    parser.add_argument("--data-dir", type=Path, default=settings.data_dir, help="where converted model weights are cached")
    parser.add_argument("--threads", type=int, default=settings.threads, help="torch / BLAS threads")
    parser.add_argument(
        "--precision", choices=("fp32", "int8"), default=settings.embed_precision, help="embedding weights (RAG_EMBED_PRECISION)"
    )
    parser.add_argument("--fragments", type=int, default=30, help="article-fragment queries (plus 20 generic questions)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per query and mode; the median is kept")
    parser.add_argument("--k", type=int, default=5, help="hits per search")
    parser.add_argument("--sgemm-size", type=int, default=4096, help="square matrix size for the sgemm peak")
    parser.add_argument("--sgemm-repeats", type=int, default=10, help="sgemm runs; the best is the peak")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the jsonl and index here (default: a temp dir)")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR, help="where the results are written")
    parser.add_argument("--name", default="ingest", help="base name of the result files")
    return parser.parse_args(argv)


def flop_ceiling(
    embedder: Embedder,
    tokens: dict[str, Any],
    achieved: float,
    embed_cpu_s: float,
    sgemm: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The embedder's FLOP ceiling in chunks/s at the measured sgemm peak (and DESIGN.md's), and the
    share of it that ``achieved`` (embedding-only chunks/s, wall clock) reached.

    Also the same ratio per CPU-second (GFLOP the embedding did per CPU-second of ``embed_cpu_s``
    over sgemm's best GFLOP per CPU-second), which other processes on the machine distort less."""
    cost = model_cost(embedder)
    tpc = tokens["tokens_per_chunk_mean"]
    numpy_runs = [run for run in sgemm.values() if run["library"].startswith("numpy")]
    peak = max(run["gflops_best"] for run in numpy_runs)
    per_core_peak = max(run["gflop_per_cpu_s_best"] for run in numpy_runs)
    achieved_per_core = tokens["texts"] * cost["flop_per_token"] * tpc / 1e9 / max(embed_cpu_s, 1e-9)
    measured, design = (ceiling(g, cost["flop_per_token"], tpc) for g in (peak, DESIGN_SGEMM_GFLOPS))
    result: dict[str, Any] = {
        "flop_per_token": cost["flop_per_token"],
        "flop_source": cost["source"],
        "model": cost,
        "gflop_per_chunk": round(cost["flop_per_token"] * tpc / 1e9, 3),
        "sgemm_numpy_peak_gflops": peak,
        "sgemm": sgemm,
        "ceiling_chunks_per_s_measured": round(measured, 2),
        "ceiling_chunks_per_s_design": round(design, 2),
        "achieved_over_ceiling_measured": round(achieved / measured, 3),
        "achieved_over_ceiling_design": round(achieved / design, 3),
        "sgemm_numpy_gflop_per_cpu_s": per_core_peak,
        "achieved_gflop_per_cpu_s": round(achieved_per_core, 2),
        "achieved_over_peak_per_cpu_s": round(achieved_per_core / per_core_peak, 3),
        "achieved_gflops": round(achieved * cost["flop_per_token"] * tpc / 1e9, 2),
        "achieved_gflops_incl_padding": round(
            achieved * cost["flop_per_token"] * tpc * (1 + tokens["padding_overhead"]) / 1e9, 2
        ),
    }
    if "layers" in cost:  # attention (QK^T and AV) is not in the Linear count: 4 x layers x hidden x seq
        result["attention_flop_per_token_at_mean_len"] = 4.0 * cost["layers"] * cost["hidden"] * tpc
    return result


def measure_sgemm(args: argparse.Namespace, when: str) -> dict[str, dict[str, Any]]:
    """numpy and torch sgemm peaks, keyed ``<backend>_<when>``."""
    runs = {
        f"{backend}_{when}": measure_sgemm_gflops(args.sgemm_size, args.sgemm_repeats, args.threads, backend)
        for backend in ("numpy", "torch")
    }
    log(f"sgemm {when}: " + ", ".join(f"{k} {v['gflops_best']} GFLOP/s" for k, v in runs.items()))
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_info(PACKAGES)
    sgemm = measure_sgemm(args, "before")
    with timed() as load:
        embedder = make_embedder(args.embed_model, args.data_dir, args.threads, args.precision)
    rss_model = peak_rss_mb()
    log(f"embedder {embedder.model_id} loaded in {load.seconds:.1f} s")

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        corpus_file, index = work / f"crud_news_first{args.articles}.jsonl", work / "index"
        rows = write_first_rows(args.corpus, args.articles, corpus_file)

        log(f"ingesting {len(rows)} articles into {index}")
        report, stages, recorder = run_ingest([corpus_file], index, embedder)
        tokens = token_stats(embedder, recorder.calls)
        first = {
            "articles": len(report.documents_added),
            "chunks": report.chunks_total,
            "chunks_embedded": report.chunks_embedded,
            "seconds": round(stages["total_s"], 2),
            "chunks_per_s": round(report.chunks_total / stages["total_s"], 2),
            "embed_only_chunks_per_s": round(recorder.texts / max(recorder.seconds, 1e-9), 2),
            "embed_cores_used": round(recorder.cpu_seconds / max(recorder.seconds, 1e-9), 2),
            # if the process had had all its threads' cores to itself (the CPU time spread over them)
            "embed_only_chunks_per_s_if_cores_free": round(recorder.texts * args.threads / max(recorder.cpu_seconds, 1e-9), 2),
            "chars_per_article_mean": round(float(np.mean([len(r["text"]) for r in rows])), 1),
            "tokens": tokens,
            "stages": stages,
            "peak_rss_mb": peak_rss_mb(),
            "peak_rss_after_model_load_mb": rss_model,
        }
        log(f"ingest: {first['chunks']} chunks in {first['seconds']} s, {first['embed_only_chunks_per_s']}/s embedding")
        sgemm.update(measure_sgemm(args, "after"))
        ceiling_info = flop_ceiling(embedder, tokens, first["embed_only_chunks_per_s"], recorder.cpu_seconds, sgemm)

        log("re-ingest, unchanged file")
        again, again_stages, again_rec = run_ingest([corpus_file], index, embedder)
        reingest_unchanged = {
            "chunks_embedded": again.chunks_embedded,
            "embed_calls": len(again_rec.calls),
            "files_unchanged": len(again.files_unchanged),
            "seconds": round(again_stages["total_s"], 3),
        }
        log(f"re-ingest: embedded {again.chunks_embedded} in {reingest_unchanged['seconds']} s")

        edited_pid = edit_one_article(corpus_file, len(rows) // 2)
        log(f"re-ingest with one edited article ({edited_pid})")
        edit, edit_stages, _ = run_ingest([corpus_file], index, embedder)
        reingest_one_edit = {
            "edited_pid": edited_pid,
            "chunks_embedded": edit.chunks_embedded,
            "chunks_reused": edit.chunks_reused,
            "seconds": round(edit_stages["total_s"], 3),
            "stages": edit_stages,
        }

        log("query latency")
        queries = build_queries(rows, args.fragments)
        with timed() as retriever_load:
            retriever = Retriever(index, embedder)
        with timed() as cold:
            retriever.search(queries[0].text, k=args.k)  # builds BM25 + FAISS in memory
        latency = query_latency(retriever, queries, args.repeats, args.k)
        latency.update(
            n_queries=len(queries),
            n_fragments=sum(q.pid is not None for q in queries),
            k=args.k,
            repeats=args.repeats,
            retriever_load_ms=round(retriever_load.seconds * 1000, 1),
            cold_first_query_ms=round(cold.seconds * 1000, 1),
            sample_queries=[q.text for q in queries[:5]] + [q.text for q in queries[-3:]],
        )
        log(f"hybrid p50 {latency['hybrid']['latency_ms']['p50']} ms; now with 1 thread")
        set_threads(1)
        latency["one_thread"] = query_latency(retriever, queries, args.repeats, args.k, modes=("hybrid", "dense"))
        set_threads(args.threads)

    result = {
        "benchmark": "ingest",
        "command": command_line(),
        "machine": machine,
        "config": {
            "articles": args.articles,
            "corpus": str(args.corpus),
            "embed_model": args.embed_model,
            "model_id": embedder.model_id,
            "dim": embedder.dim,
            "threads": args.threads,
            "embedder_load_s": round(load.seconds, 2),
        },
        "ingest": first,
        "flop_ceiling": ceiling_info,
        "reingest_unchanged": reingest_unchanged,
        "reingest_one_edit": reingest_one_edit,
        "queries": latency,
        "peak_rss_mb_end": peak_rss_mb(),
        "load_average_at_end": load_average(),
    }
    json_path, md_path = write_results(args.name, result, render_markdown(result), args.out_dir)
    log(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
