"""How much a chunk's int8 vector depends on its batch mates, and what one text per batch would cost.

Embeds the chunks of ``corpus/`` (default chunking) as ingest does, 32 texts per call, in file
order and in a shuffled order, and again one text per call (vectors independent of any batch
mate); prints the differences and the median time of ``--repeats`` runs of each (see
benchmarks/ingest-deterministic.md)::

    python scripts/bench_batch_independence.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rag.config import Settings  # noqa: E402
from rag.index.chunking import ChunkingConfig, chunk_document  # noqa: E402
from rag.index.documents import load_file  # noqa: E402
from rag.index.ingest import EMBED_BATCH  # noqa: E402
from rag.models.embedders import Embedder, embedder_for  # noqa: E402


def embed_in_order(embedder: Embedder, texts: Sequence[str], order: np.ndarray, per_call: int) -> tuple[float, np.ndarray]:
    """Seconds taken and the vectors (in ``texts`` order) when ``texts`` are embedded in ``order``, ``per_call`` at a time."""
    started = time.perf_counter()
    parts = [embedder.embed([texts[i] for i in order[j : j + per_call]]) for j in range(0, len(order), per_call)]
    elapsed = time.perf_counter() - started
    vectors = np.zeros_like(np.vstack(parts))
    vectors[order] = np.vstack(parts)
    return elapsed, vectors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=REPO_ROOT / "corpus", help="folder of .txt articles (default: %(default)s)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each way (default: %(default)s)")
    args = parser.parse_args(argv)
    embedder = embedder_for(Settings())
    texts = [
        chunk.embed_text
        for path in sorted(args.corpus.glob("*.txt"))
        for doc in load_file(path)
        for chunk in chunk_document(doc, ChunkingConfig())
    ]
    forward, shuffled = np.arange(len(texts)), np.random.default_rng(0).permutation(len(texts))
    batched = [embed_in_order(embedder, texts, forward if i % 2 == 0 else shuffled, EMBED_BATCH) for i in range(args.repeats)]
    alone = [embed_in_order(embedder, texts, forward if i % 2 == 0 else shuffled, 1) for i in range(args.repeats)]
    diff = np.abs(batched[0][1] - batched[1][1]) if args.repeats > 1 else np.zeros(1)
    print(f"{embedder.model_id}: {len(texts)} chunks of {args.corpus}")
    print(
        f"{EMBED_BATCH} per call, file order vs shuffled: max |diff| {diff.max():.4f}, rows differing {int((diff.max(axis=-1) > 0).sum())}"
    )
    print(f"1 per call, file order vs shuffled: identical {np.array_equal(alone[0][1], alone[-1][1])}")
    old, new = statistics.median(t for t, _ in batched), statistics.median(t for t, _ in alone)
    print(f"median s: {EMBED_BATCH} per call {old:.2f} ({[round(t, 2) for t, _ in batched]}), 1 per call {new:.2f} "
          f"({[round(t, 2) for t, _ in alone]}); 1 per call / {EMBED_BATCH} per call = {new / old:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
