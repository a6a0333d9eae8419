"""What can change an answer, recorded in the ``settings`` section of ``report.json``.

Two parts, judged differently against a baseline (``rag eval --baseline``):

* **configuration**, what the project decides: embedder and precision, the LLM file (name, size,
  sha256), generation settings, passage_chars, top_k, search mode and filters, the question
  file's sha256 and the eval index's fingerprint. A run whose configuration differs from the
  baseline's measures something else: it is not compared (exit 4) unless ``--allow-mismatch``.
* **environment**, what the machine decides: CPU model, llama.cpp build, threads, Python and
  package versions. Differences are printed as information and never block: CI machines differ
  in CPU, and the few questions greedy decoding flips between CPUs are what the gate's flip test
  is there to absorb.

A setting one of the runs did not use or did not record (None, or absent: a retrieval-only run
has no LLM; older reports lack newer settings) is not compared.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import BUNDLED_LLM, Settings
from rag.files import write_json_atomic
from rag.index.filters import SearchFilter
from rag.index.store import Store
from rag.models.generators import Generator
from rag.qa.pipeline import MAX_ANSWER_TOKENS, MAX_CONTEXT_CHARS

DECODING = "greedy"  # every generator backend decodes at temperature 0 (rag.models.generators)
HASH_CACHE = "eval-sha256.json"  # in the data dir: file hashes by path, size and mtime
PACKAGES = {
    "rag": ("rag-zh",),
    "torch": ("torch",),
    "sentence-transformers": ("sentence-transformers",),
    "llama-cpp-python": ("llama-cpp-python",),
    "faiss": ("faiss-cpu", "faiss"),
    "jieba": ("jieba",),
    "transformers": ("transformers",),
}
"""The packages whose versions are recorded: shown name -> distribution names to try."""
LOCAL_FILE_BACKENDS = ("llama-cpp", "transformers")
_BLOCK = 8 * 1024 * 1024


# --- configuration -------------------------------------------------------------------------


def cached_sha256(path: Path, cache_file: Path) -> str:
    """The sha256 of ``path``, hashed once and cached in ``cache_file`` by path, size and mtime."""
    stat = path.stat()
    key, stamp = str(path.resolve()), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    known = cache.get(key) if isinstance(cache, dict) else None
    if isinstance(known, dict) and {k: known.get(k) for k in stamp} == stamp and known.get("sha256"):
        return str(known["sha256"])
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    cache = cache if isinstance(cache, dict) else {}
    cache[key] = {**stamp, "sha256": digest.hexdigest()}
    try:
        write_json_atomic(cache_file, cache)
    except OSError:
        pass  # a read-only data dir: hashed again next time
    return digest.hexdigest()


def llm_file(settings: Settings, generator: Generator | None) -> dict[str, Any]:
    """The LLM's name and, for a local model file, its size and sha256 (known for the bundled GGUF).

    ``generator`` is one passed in instead of the configured LLM (tests): its id is all there is.
    """
    if generator is not None:
        return {"name": generator.model_id, "size": None, "sha256": None}
    if settings.llm_backend in LOCAL_FILE_BACKENDS and settings.llm_model == BUNDLED_LLM:
        from rag.models.llm_weights import EXPECTED_SHA256, EXPECTED_SIZE, GGUF_NAME

        return {"name": GGUF_NAME, "size": EXPECTED_SIZE, "sha256": EXPECTED_SHA256}
    path = Path(settings.llm_model).expanduser()
    if settings.llm_backend in LOCAL_FILE_BACKENDS and path.is_file():
        return {"name": path.name, "size": path.stat().st_size, "sha256": cached_sha256(path, settings.data_dir / HASH_CACHE)}
    return {"name": settings.llm_model, "size": None, "sha256": None}  # a server's model or a model folder


def generation_settings(settings: Settings, generator: Generator | None) -> dict[str, Any]:
    """How answers are generated: the backend (from ``RAG_LLM_BACKEND``), decoding and the answer budget."""
    backend = settings.llm_backend if generator is None else type(generator).__name__
    return {
        "backend": backend,
        "decoding": DECODING,
        "max_answer_tokens": MAX_ANSWER_TOKENS,
        "max_context_chars": MAX_CONTEXT_CHARS,
    }


def run_configuration(
    settings: Settings,
    *,
    generator: Generator | None,
    questions_sha256: str,
    mode: str,
    top_k: int,
    retrieval_only: bool,
    where: SearchFilter | None,
) -> dict[str, Any]:
    """The configuration known before the index is synced; :func:`index_fingerprint` is added after."""
    answers = not retrieval_only
    return {
        "embedder": settings.embed_model,
        "embedder_precision": settings.embed_precision,
        "llm": llm_file(settings, generator) if answers else None,
        "generation": generation_settings(settings, generator) if answers else None,
        "passage_chars": settings.passage_chars if answers else None,
        "top_k": top_k if answers else None,
        "mode": mode,
        "filters": filter_settings(where or SearchFilter()),
        "questions_sha256": questions_sha256,
    }


def filter_settings(where: SearchFilter) -> dict[str, Any]:
    """Every part of the search filter, empty ones too, so that no filter and a filter compare."""
    return {"date_from": where.date_from, "date_to": where.date_to, "sources": list(where.sources), "tags": list(where.tags)}


def index_fingerprint(store: Store) -> str:
    """A sha256 over the index's sorted chunk ids and text hashes, its embedder, chunking and lexical scheme.

    Not over the vectors: they differ in the last bits between CPUs, while the same texts and
    model make the same index for the gate's purpose.
    """
    manifest = store.manifest
    chunks = sorted(
        (chunk.chunk_id, hashlib.sha256(chunk.embed_text.encode("utf-8")).hexdigest())
        for document in store.documents()
        for chunk in store.document_chunks(document.doc_id)
    )
    payload = {
        "embedder": manifest.model_id,
        "chunking": manifest.chunking.to_dict(),
        "lexical": manifest.lexical,
        "chunks": chunks,
    }
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


# --- environment ---------------------------------------------------------------------------


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's ``model name`` from /proc/cpuinfo, or the platform's processor name elsewhere."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return platform.processor() or None
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name") and ":" in line]
    return names[0] if names else platform.processor() or None


def llama_build() -> dict[str, str] | None:
    """llama-cpp-python's version and llama.cpp's build flags (``llama_print_system_info``), or None if absent."""
    try:
        import llama_cpp
    except ImportError:
        return None
    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", errors="replace") if isinstance(info, bytes) else str(info)
    return {"version": str(llama_cpp.__version__), "system_info": text.strip()}


def package_versions() -> dict[str, str | None]:
    """The installed version of each of :data:`PACKAGES` (None when not installed)."""
    return {name: _version(distributions) for name, distributions in PACKAGES.items()}


def _version(distributions: tuple[str, ...]) -> str | None:
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def run_environment(settings: Settings, uses_llama: bool) -> dict[str, Any]:
    """The machine's side; the llama.cpp build only when llama.cpp generates the answers."""
    return {
        "cpu": cpu_model(),
        "threads": settings.threads,
        "llama_cpp": llama_build() if uses_llama else None,
        "python": platform.python_version(),
        "packages": package_versions(),
    }


def uses_llama(settings: Settings, generator: Generator | None, retrieval_only: bool) -> bool:
    """Whether llama.cpp generates this run's answers."""
    return generator is None and not retrieval_only and settings.llm_backend == "llama-cpp"


# --- differences ---------------------------------------------------------------------------


def flatten(section: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"llm.sha256": ...}``."""
    flat: dict[str, Any] = {}
    for name, value in section.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _shown(value: Any) -> str:
    """A setting for one line: hashes cut to 12 characters, structures as compact JSON."""
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """One line per setting that both record and that differs: ``top_k: 3 → 5``."""
    old, new = flatten(before), flatten(after)
    return [
        f"{name}: {_shown(old[name])} → {_shown(new[name])}"
        for name in sorted(old.keys() & new.keys())
        if old[name] is not None and new[name] is not None and old[name] != new[name]
    ]


NO_SETTINGS = "the baseline records no settings; record a new one"
MISMATCH_ALLOWED = "the configuration differs from the baseline's; compared anyway (--allow-mismatch)"


@dataclass(frozen=True)
class SettingsDiff:
    """This run's settings against the baseline's: configuration lines block, environment lines inform."""

    recorded: bool  # whether the baseline records settings at all
    configuration: list[str]
    environment: list[str]
    allowed: bool  # --allow-mismatch

    @classmethod
    def of(cls, stored: Mapping[str, Any], current: Mapping[str, Any], allowed: bool = False) -> SettingsDiff:
        """Compare ``current`` settings with those of ``stored``, a baseline ``report.json``."""
        recorded = stored.get("settings")
        if not isinstance(recorded, Mapping):
            return cls(False, [], [], allowed)
        return cls(
            recorded=True,
            configuration=differences(recorded.get("configuration") or {}, current.get("configuration") or {}),
            environment=differences(recorded.get("environment") or {}, current.get("environment") or {}),
            allowed=allowed,
        )

    @property
    def blocks(self) -> bool:
        """The configuration differs and ``--allow-mismatch`` was not given: not comparable."""
        return bool(self.configuration) and not self.allowed

    @property
    def notes(self) -> list[str]:
        """What the comparison must say about the settings."""
        if not self.recorded:
            return [NO_SETTINGS]
        return [MISMATCH_ALLOWED] if self.configuration and self.allowed else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "recorded": self.recorded,
            "configuration": self.configuration,
            "environment": self.environment,
            "allowed_mismatch": self.allowed,
        }
