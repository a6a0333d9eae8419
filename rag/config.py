"""Settings: defaults, overridable by environment variables (``RAG_*``) and CLI options."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

BUNDLED_EMBEDDER = "bundled:multilingual-e5-small"
BUNDLED_LLM = "bundled:qwen2.5-coder-1.5b-instruct-q4_k_m"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def default_data_dir() -> Path:
    """Where converted/joined model weights are cached (``RAG_DATA_DIR``)."""
    return Path(_env("RAG_DATA_DIR", str(Path.home() / ".cache" / "rag-zh"))).expanduser()


def default_index_dir() -> Path:
    """The index used when ``--index`` is not given (``RAG_INDEX``)."""
    return Path(_env("RAG_INDEX", str(REPO_ROOT / "index" / "default"))).expanduser()


@dataclass(frozen=True)
class Settings:
    """Everything a pipeline needs to know; built once from the environment."""

    data_dir: Path = field(default_factory=default_data_dir)
    index_dir: Path = field(default_factory=default_index_dir)
    embed_model: str = field(default_factory=lambda: _env("RAG_EMBED_MODEL", BUNDLED_EMBEDDER))
    embed_precision: str = field(default_factory=lambda: _env("RAG_EMBED_PRECISION", "fp32"))
    llm_backend: str = field(default_factory=lambda: _env("RAG_LLM_BACKEND", "llama-cpp"))
    llm_model: str = field(default_factory=lambda: _env("RAG_LLM_MODEL", BUNDLED_LLM))
    llm_base_url: str = field(default_factory=lambda: _env("RAG_LLM_BASE_URL", "http://127.0.0.1:8080/v1"))
    llm_api_key: str = field(default_factory=lambda: _env("RAG_LLM_API_KEY", "not-needed"))
    threads: int = field(default_factory=lambda: int(_env("RAG_THREADS", str(os.cpu_count() or 2))))
    chunk_size: int = field(default_factory=lambda: int(_env("RAG_CHUNK_SIZE", "300")))
    chunk_overlap: int = field(default_factory=lambda: int(_env("RAG_CHUNK_OVERLAP", "60")))
    queue_capacity: int = field(default_factory=lambda: int(_env("RAG_QUEUE_SIZE", "8")))
