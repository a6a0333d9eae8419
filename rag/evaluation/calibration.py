"""A small machine calibration, so latencies from different machines can be read side by side.

Each report times a fixed embedding batch with the configured embedder and (unless retrieval
only) a short bare generation with the configured LLM. A step's p50 divided by its reference
time says how many calibration units it took, which moves far less between a fast and a slow
CPU than the milliseconds do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rag.models.embedders import Embedder
from rag.models.generators import Generator, Message

CALIBRATION_TEXTS = tuple(f"第{n}段：河南省设立总规模30亿元的人工智能产业基金，重点投向算力基础设施。" for n in range(32))
CALIBRATION_MESSAGES = (Message(role="user", content="请用一句话介绍长江。"),)
CALIBRATION_TOKENS = 16
EMBED_REPEATS = 3  # the fastest of three: embedding a batch is quick, and its first call may warm caches
REFERENCE = {"retrieve_ms": "embed_ms", "first_token_ms": "generate_ms", "total_ms": "generate_ms"}
"""The calibration time each timed step is divided by."""


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _embed_ms(embedder: Embedder) -> float:
    started = time.perf_counter()
    embedder.embed(CALIBRATION_TEXTS)
    return _ms_since(started)


def _generation(generator: Generator) -> tuple[float, int]:
    """Milliseconds and tokens of the calibration reply, generated to its end."""
    started = time.perf_counter()
    completion = generator.stream(list(CALIBRATION_MESSAGES), max_tokens=CALIBRATION_TOKENS)
    try:
        for _ in completion:
            pass
    finally:
        completion.close()
    return _ms_since(started), completion.usage.get("completion_tokens", 0)


def calibrate(embedder: Embedder, generator: Generator | None) -> dict[str, Any]:
    """Milliseconds this machine takes for the fixed embedding batch and, with an LLM, the short generation."""
    generate_ms, tokens = _generation(generator) if generator else (None, None)
    return {
        "embed_texts": len(CALIBRATION_TEXTS),
        "embed_ms": min(_embed_ms(embedder) for _ in range(EMBED_REPEATS)),
        "generate_tokens": tokens,
        "generate_ms": generate_ms,
    }


def relative_latency(value: float | None, step: str, calibration: Mapping[str, Any] | None) -> float | None:
    """``value`` (a p50 of ``step``, in ms) in units of its calibration time; None without one."""
    reference = (calibration or {}).get(REFERENCE[step])
    return value / reference if value is not None and reference else None
