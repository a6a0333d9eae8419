"""Settings: defaults, overridable by environment variables (``RAG_*``) and CLI options."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.index.limits import ParseLimits
from rag.index.locations import is_uri, local_dir
from rag.qa.queue import DEFAULT_WORK_LIMIT

REPO_ROOT = Path(__file__).resolve().parent.parent

BUNDLED_EMBEDDER = "bundled:multilingual-e5-small"
BUNDLED_LLM = "bundled:qwen2.5-coder-1.5b-instruct-q4_k_m"
# What the LLM reads of the passages, all together (RAG_PASSAGE_CHARS; 0: whole passages). Prompt
# reading sets the first-token time (60-80 tokens/s on 2 cores); 540 cuts passages to their
# sentences that match the question (rag.qa.focus): on the regression set first token 6.2 -> 4.4 s
# in one morning (3.9 s on a faster afternoon) and the gate passes (whole passages failed it on
# refusal precision); CMRC answers lost 3 points, 0.710 -> 0.680 on 200 questions (README).
DEFAULT_PASSAGE_CHARS = 540
# The percent of a folder's documents one `rag sync` may remove (RAG_SYNC_MAX_REMOVAL; 100: no
# limit): more looks like a share lost, not files deleted (rag.index.sync).
DEFAULT_SYNC_MAX_REMOVAL = 50.0


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _optional_path(name: str) -> Path | None:
    value = _env(name, "")
    return Path(value).expanduser() if value else None


def default_data_dir() -> Path:
    """Where converted/joined model weights are cached (``RAG_DATA_DIR``)."""
    return Path(_env("RAG_DATA_DIR", str(Path.home() / ".cache" / "rag-zh"))).expanduser()


def parse_limits_from_env() -> ParseLimits:
    """What reading one input file may cost (:class:`ParseLimits`; its defaults where a variable is
    unset): ``RAG_PARSE_TIMEOUT`` seconds (60), ``RAG_PARSE_MEMORY_MB`` (2048), ``RAG_DOCX_MAX_MB``
    unpacked (200), ``RAG_PDF_MAX_PAGES`` (2000), ``RAG_MAX_MEGAPIXELS`` per image or OCR'd page (50)."""
    default = ParseLimits()
    return ParseLimits(
        timeout_s=float(_env("RAG_PARSE_TIMEOUT", str(default.timeout_s))),
        memory_mb=int(_env("RAG_PARSE_MEMORY_MB", str(default.memory_mb))),
        docx_max_mb=int(_env("RAG_DOCX_MAX_MB", str(default.docx_max_mb))),
        pdf_max_pages=int(_env("RAG_PDF_MAX_PAGES", str(default.pdf_max_pages))),
        max_pixels=round(float(_env("RAG_MAX_MEGAPIXELS", str(default.max_pixels / 1e6))) * 1e6),
    )


def default_index() -> str:
    """The index used when ``--index`` is not given (``RAG_INDEX``): a directory or a Milvus URI."""
    return _env("RAG_INDEX", str(REPO_ROOT / "index" / "default"))


def default_index_dir() -> Path:
    """The index directory, or the local folder of a Milvus index (see :func:`rag.index.locations.local_dir`)."""
    return local_dir(default_index())


def default_db_file() -> Path:
    """The server's database (``RAG_DB``): knowledge bases, users, keys, the audit log; default
    ``rag.db`` beside the default index (``index/rag.db``)."""
    return Path(_env("RAG_DB", str(default_index_dir().parent / "rag.db"))).expanduser()


def default_index_uri() -> str | None:
    """``RAG_INDEX`` when it is a Milvus URI."""
    return default_index() if is_uri(default_index()) else None


@dataclass(frozen=True)
class Settings:
    """Everything a pipeline needs to know; built once from the environment."""

    data_dir: Path = field(default_factory=default_data_dir)
    index_dir: Path = field(default_factory=default_index_dir)
    index_uri: str | None = field(default_factory=default_index_uri)
    embed_model: str = field(default_factory=lambda: _env("RAG_EMBED_MODEL", BUNDLED_EMBEDDER))
    # int8 by default: 1.3x faster ingest on 2 cores, CMRC retrieval unchanged (benchmarks/ingest-int8.md)
    embed_precision: str = field(default_factory=lambda: _env("RAG_EMBED_PRECISION", "int8"))
    llm_backend: str = field(default_factory=lambda: _env("RAG_LLM_BACKEND", "llama-cpp"))
    llm_model: str = field(default_factory=lambda: _env("RAG_LLM_MODEL", BUNDLED_LLM))
    llm_base_url: str = field(default_factory=lambda: _env("RAG_LLM_BASE_URL", "http://127.0.0.1:8080/v1"))
    llm_api_key: str = field(default_factory=lambda: _env("RAG_LLM_API_KEY", "not-needed"))
    threads: int = field(default_factory=lambda: int(_env("RAG_THREADS", str(os.cpu_count() or 2))))
    chunk_size: int = field(default_factory=lambda: int(_env("RAG_CHUNK_SIZE", "300")))
    chunk_overlap: int = field(default_factory=lambda: int(_env("RAG_CHUNK_OVERLAP", "60")))
    passage_chars: int = field(default_factory=lambda: int(_env("RAG_PASSAGE_CHARS", str(DEFAULT_PASSAGE_CHARS))))
    queue_capacity: int = field(default_factory=lambda: int(_env("RAG_QUEUE_SIZE", "8")))
    max_concurrent_work: int = field(default_factory=lambda: int(_env("RAG_MAX_CONCURRENT_WORK", str(DEFAULT_WORK_LIMIT))))
    sync_max_removal: float = field(default_factory=lambda: float(_env("RAG_SYNC_MAX_REMOVAL", str(DEFAULT_SYNC_MAX_REMOVAL))))
    conversations_db: Path | None = field(default_factory=lambda: _optional_path("RAG_CONVERSATIONS_DB"))
    db_file: Path = field(default_factory=default_db_file)
    kb_root: Path = field(default_factory=lambda: default_index_dir().parent)  # new knowledge bases: index/NAME
    audit_questions: bool = field(default_factory=lambda: _env("RAG_AUDIT_QUESTIONS", "0") == "1")
    audit_days: int = field(default_factory=lambda: int(_env("RAG_AUDIT_DAYS", "365")))
    parse_limits: ParseLimits = field(default_factory=parse_limits_from_env)

    @property
    def conversations_file(self) -> Path:
        """The web chat's saved conversations (SQLite): ``RAG_CONVERSATIONS_DB`` or next to the index."""
        return self.conversations_db or self.index_dir.parent / "conversations" / "conversations.db"

    @property
    def feedback_file(self) -> Path:
        """Where older versions kept the web chat's thumbs up/down (JSONL, next to the index): imported into ``RAG_DB`` once."""
        return self.index_dir.parent / "feedback" / "feedback.jsonl"

    @property
    def index(self) -> str:
        """Where the index lives: the Milvus URI, or the index directory.

        The URI holds only while ``index_dir`` is still its local folder, so code that points
        ``index_dir`` at another directory (``replace(settings, index_dir=...)``) gets that directory.
        """
        uri = self.index_uri
        return uri if uri and local_dir(uri) == self.index_dir else str(self.index_dir)

    def with_index(self, location: str | Path) -> Settings:
        """These settings with another index: a directory or a Milvus URI (``--index``)."""
        uri = str(location) if is_uri(location) else None
        return replace(self, index_dir=local_dir(location), index_uri=uri)
