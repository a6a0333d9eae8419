"""Embedding speed and accuracy on 2 cores: the bundled e5-small in fp32 and in int8 variants.

Embeds ``--passages`` Chinese news passages (``../shared/data/crud_news.corpus.jsonl.gz``, cut to
300 characters like the chunker does) with each variant, after a warm-up, and reports passages/s,
tokens per passage, the ratio to the fp32 FLOP ceiling (measured sgemm peak / 42.8 MFLOP per
token), and the cosine of each variant's vectors to fp32's (mean, min). Results go to
``benchmarks/embedding-int8.{json,md}``.

    python scripts/bench_embedding.py --passages 300
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_common import (  # noqa: E402
    command_line,
    load_average,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    measure_sgemm_gflops,
    write_results,
)

from rag.config import Settings  # noqa: E402
from rag.models.e5_convert import ensure_bundled_e5  # noqa: E402
from rag.models.embedders import KEEP_FP32, SentenceTransformerEmbedder, quantize_int8  # noqa: E402

CRUD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "crud_news.corpus.jsonl.gz"
FLOP_PER_TOKEN = 42.8e6  # e5-small encoder: ~21.4 M parameters x 2 (../shared/DESIGN.md)
VARIANTS = {
    "fp32": None,
    "int8 (all Linear layers)": "",
    "int8, FFN output in fp32 (default)": KEEP_FP32,
}


def passages(count: int, chars: int = 300) -> list[str]:
    texts = []
    with gzip.open(CRUD, "rt", encoding="utf-8") as handle:
        for line in handle:
            text = json.loads(line)["text"].strip()
            if len(text) >= chars:
                texts.append(text[:chars])
            if len(texts) >= count:
                break
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    texts = passages(args.passages)
    folder = ensure_bundled_e5(Settings().data_dir)
    load_before = load_average()
    sgemm = measure_sgemm_gflops(threads=args.threads, backend="torch")
    results: dict[str, Any] = {}
    reference: np.ndarray | None = None
    tokens = 0.0
    for name, keep in VARIANTS.items():
        embedder = SentenceTransformerEmbedder(folder, threads=args.threads)
        if keep is not None:
            quantize_int8(embedder._model, keep or None)
        tokens = embedder.count_tokens(["passage: " + t for t in texts]) / len(texts)
        embedder.embed(texts[:32])  # warm-up
        started = time.perf_counter()
        vectors = embedder.embed(texts)
        seconds = time.perf_counter() - started
        reference = vectors if reference is None else reference
        cosines = np.sum(vectors * reference, axis=1)
        rate = len(texts) / seconds
        ceiling = sgemm["gflops_best"] * 1e9 / (FLOP_PER_TOKEN * tokens)
        results[name] = {
            "passages_per_s": round(rate, 2),
            "seconds": round(seconds, 1),
            "ceiling_ratio_vs_fp32_peak": round(rate / ceiling, 3),
            "cosine_to_fp32_mean": round(float(cosines.mean()), 5),
            "cosine_to_fp32_min": round(float(cosines.min()), 5),
        }
        log(f"{name}: {rate:.1f} passages/s, cosine mean {cosines.mean():.5f} min {cosines.min():.5f}")
    fp32_rate = results["fp32"]["passages_per_s"]
    for row in results.values():
        row["speedup_vs_fp32"] = round(row["passages_per_s"] / fp32_rate, 2)
    machine = machine_info(["torch", "sentence-transformers", "transformers"])
    payload = {
        "machine": machine,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "passages": len(texts),
        "tokens_per_passage": round(tokens, 1),
        "sgemm": sgemm,
        "results": results,
    }
    ceiling_fp32 = sgemm["gflops_best"] * 1e9 / (FLOP_PER_TOKEN * tokens)
    table = markdown_table(
        ["variant", "passages/s", "x fp32", "share of fp32 ceiling", "cosine to fp32 mean", "min"],
        [
            [
                name,
                r["passages_per_s"],
                r["speedup_vs_fp32"],
                r["ceiling_ratio_vs_fp32_peak"],
                r["cosine_to_fp32_mean"],
                r["cosine_to_fp32_min"],
            ]
            for name, r in results.items()
        ],
    )
    markdown = (
        f"# Embedding speed: e5-small fp32 vs int8 ({len(texts)} passages of 300 characters, {args.threads} threads)\n\n"
        f"{tokens:.0f} tokens per passage; measured torch sgemm peak {sgemm['gflops_best']:.0f} GFLOP/s, so the fp32 "
        f"ceiling is {ceiling_fp32:.1f} passages/s. Load average before: {load_before}.\n\n" + table + "\n\n"
        "int8 is torch dynamic quantization (`rag.models.embedders.quantize_int8`): int8 weights, activations "
        "quantized per batch; no calibration data. The FFN output projections can stay in fp32 (`KEEP_FP32`).\n\n"
        + machine_markdown(machine, command_line())
    )
    write_results("embedding-int8", payload, markdown)
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
