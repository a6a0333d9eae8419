"""Text embedders behind one small interface.

An :class:`Embedder` turns texts into L2-normalised float32 rows. ``kind`` says whether the
texts are search queries or passages: e5-style models need different prefixes for each.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from rag.errors import ModelError

if TYPE_CHECKING:
    from rag.config import Settings

TextKind = Literal["query", "passage", "raw"]
"""What the texts are: e5-style models prefix queries and passages differently; ``raw`` is used as given."""


@runtime_checkable
class Embedder(Protocol):
    """Anything that embeds texts; ``model_id`` and ``dim`` are recorded in the index manifest."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str], kind: TextKind = "passage") -> np.ndarray:
        """Return a ``(len(texts), dim)`` float32 array of unit-length rows."""
        ...


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 (a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


Precision = Literal["int8", "fp32"]
KEEP_FP32 = r"layer\.\d+\.output\.dense$"
"""Linear layers left in fp32 by :func:`quantize_int8` (a regular expression on module names):
the FFN output projections, where int8 loses the most accuracy (their inputs, after GELU, have
the widest range)."""


def quantize_int8(model: Any, keep_fp32: str | None = KEEP_FP32) -> None:
    """Dynamic int8 quantization (torch) of the model's Linear layers, in place, except ``keep_fp32``.

    Weights are stored in int8 and activations quantized per batch at run time: about half the
    matrix-multiply time on CPU, no calibration data needed.
    """
    import torch

    names = {
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not (keep_fp32 and re.search(keep_fp32, name))
    }
    with warnings.catch_warnings():
        # torch 2.13 deprecates torch.ao.quantization and its quantized tensor dtypes (the int8
        # weights made here), with a warning on every load; the replacement (torchao) is not a
        # dependency of this project, and the call works as documented on the pinned torch.
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor.*deprecated", category=UserWarning)
        torch.ao.quantization.quantize_dynamic(model, qconfig_spec=names, dtype=torch.qint8, inplace=True)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder (or a hub id where there is network).

    Query/passage prefixes come from the model folder's ``prompts`` config when it has them
    (the converted bundled e5 model does), else from ``query_prefix``/``passage_prefix``.
    """

    def __init__(
        self,
        model: str | Path,
        model_id: str | None = None,
        threads: int | None = None,
        batch_size: int = 16,
        query_prefix: str = "",
        passage_prefix: str = "",
        precision: Precision = "fp32",
    ) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelError(f"sentence-transformers is not installed: {exc}") from exc
        if threads:
            torch.set_num_threads(threads)
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        try:
            self._model = SentenceTransformer(str(model), device="cpu")
        except Exception as exc:
            raise ModelError(
                f"cannot load embedding model {model!s}: {exc}. "
                "Give a local sentence-transformers folder, or run `rag models prepare` for the bundled one."
            ) from exc
        if precision == "int8":
            quantize_int8(self._model)
        self.model_id = model_id or str(model)
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 0)
        self.batch_size = batch_size
        prompts = getattr(self._model, "prompts", {}) or {}
        self._prefix = {
            "query": prompts.get("query", query_prefix),
            "passage": prompts.get("passage", passage_prefix),
            "raw": "",
        }

    def count_tokens(self, texts: Sequence[str]) -> int:
        """How many tokens the model reads for ``texts`` (special tokens included)."""
        return sum(self.token_lengths(texts))

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, special tokens included (no truncation); tokenized a slice at a time,
        so a whole archive's chunks never hold their token ids in memory at once."""
        slice_size = 1024
        return [
            len(ids)
            for start in range(0, len(texts), slice_size)
            for ids in self._model.tokenizer(list(texts[start : start + slice_size]))["input_ids"]
        ]

    def embed(self, texts: Sequence[str], kind: TextKind = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefixed = [self._prefix[kind] + t for t in texts]
        vectors = self._model.encode(prefixed, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return normalise_rows(vectors)


def embedder_for(settings: Settings) -> Embedder:
    """The embedder ``settings`` configure (model, model folder, threads, precision)."""
    return make_embedder(settings.embed_model, settings.data_dir, settings.threads, settings.embed_precision)


def make_embedder(model: str, data_dir: Path, threads: int | None = None, precision: str = "fp32") -> Embedder:
    """The embedder named by a setting: the bundled e5 model, ``fake:hashing`` (tests), a folder or a hub id.

    ``precision`` ``int8`` quantizes a sentence-transformers model on load; its ``model_id`` then ends
    in ``#int8``, so an index records which variant built it and refuses to mix them.
    """
    from rag.config import BUNDLED_EMBEDDER

    if precision not in ("fp32", "int8"):
        raise ModelError(f"unknown embedding precision {precision!r} (RAG_EMBED_PRECISION); choose fp32 or int8")
    variant: Precision = "int8" if precision == "int8" else "fp32"
    model_id = f"{model}#int8" if variant == "int8" else model
    if model == BUNDLED_EMBEDDER:
        from rag.models.e5_convert import ensure_bundled_e5

        return SentenceTransformerEmbedder(ensure_bundled_e5(data_dir), model_id=model_id, threads=threads, precision=variant)
    if model.startswith("fake:hashing"):
        from rag.models.fakes import HashingEmbedder

        return HashingEmbedder(model_id=model)
    if model.startswith("openai:"):
        from rag.models.remote_embedder import RemoteEmbedder

        return RemoteEmbedder.from_env(model.removeprefix("openai:"))
    local = Path(model).expanduser()
    if local.exists() and not local.is_dir():
        raise ModelError(f"{local} is a file; an embedding model must be a sentence-transformers folder")
    is_e5 = "e5" in local.name.lower()
    return SentenceTransformerEmbedder(
        local if local.is_dir() else model,
        model_id=model_id,
        threads=threads,
        query_prefix="query: " if is_e5 else "",
        passage_prefix="passage: " if is_e5 else "",
        precision=variant,
    )
