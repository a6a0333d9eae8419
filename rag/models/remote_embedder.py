"""An embedder behind any OpenAI-compatible ``/v1/embeddings`` endpoint (TEI, vLLM, Infinity, Ollama, ``rag api``).

Selected with ``RAG_EMBED_MODEL=openai:http://host:port/v1``. ``RAG_EMBED_REMOTE_MODEL`` names the
served model (default: the only one the server lists), ``RAG_EMBED_API_KEY`` is sent as a bearer
token, ``RAG_EMBED_CONCURRENCY`` (default 2) requests are in flight at once. Connection errors,
429 and 5xx answers are retried with exponential backoff. Servers embed texts as given, so the
e5 ``query: ``/``passage: `` prefixes are added here when the served model is an e5 model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np

from rag.errors import ModelError
from rag.models.e5_convert import PROMPTS
from rag.models.embedders import TextKind, normalise_rows

MAX_DELAY_S = 30.0


class RemoteEmbedder:
    """Embeds through an OpenAI-compatible server; ``model_id`` is ``openai:<served model>``.

    Construction asks the server for one vector: it learns the dimension, and a server that is
    down or refuses fails here, with a :class:`ModelError` that says so.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str = "",
        concurrency: int = 2,
        batch_size: int = 16,
        retries: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 120.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ModelError(f"RAG_EMBED_MODEL=openai:{base_url}: give the server's URL, e.g. openai:http://host:8000/v1")
        if concurrency < 1 or batch_size < 1:
            raise ModelError("RAG_EMBED_CONCURRENCY and the batch size must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.batch_size = batch_size
        self.retries = retries
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._http = httpx.Client(timeout=timeout_s, headers=headers, limits=limits)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="remote-embed")
        self.remote_model = model or self._only_model()
        self.model_id = f"openai:{self.remote_model}"
        self._prefix = PROMPTS if "e5" in self.remote_model.lower() else {}
        self.dim = 0  # learnt from the first answer, then every answer must have it
        self.dim = self._request(["dimension"]).shape[1]

    @classmethod
    def from_env(cls, base_url: str) -> RemoteEmbedder:
        """The embedder ``RAG_EMBED_REMOTE_MODEL``, ``RAG_EMBED_API_KEY`` and ``RAG_EMBED_CONCURRENCY`` configure."""
        concurrency = os.environ.get("RAG_EMBED_CONCURRENCY", "").strip() or "2"
        if not concurrency.isdigit():
            raise ModelError(f"RAG_EMBED_CONCURRENCY={concurrency!r} is not a number")
        return cls(
            base_url,
            model=os.environ.get("RAG_EMBED_REMOTE_MODEL", "").strip() or None,
            api_key=os.environ.get("RAG_EMBED_API_KEY", "").strip(),
            concurrency=int(concurrency),
        )

    def embed(self, texts: Sequence[str], kind: TextKind = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = self._prefix.get(kind, "")
        batches = [
            [prefix + text for text in texts[start : start + self.batch_size]] for start in range(0, len(texts), self.batch_size)
        ]
        return normalise_rows(np.concatenate(list(self._pool.map(self._request, batches))))

    # ---------------------------------------------------------------- HTTP

    def _only_model(self) -> str:
        """The served model when ``RAG_EMBED_REMOTE_MODEL`` is not set: the server must list exactly one."""
        names = [str(row.get("id")) for row in self._call("GET", "/models").get("data", [])]
        if len(names) != 1:
            raise ModelError(
                f"the embedding server {self.base_url} serves {len(names)} models ({', '.join(names) or 'none'}); "
                "set RAG_EMBED_REMOTE_MODEL to the embedding model"
            )
        return names[0]

    def _request(self, texts: list[str]) -> np.ndarray:
        """One ``/embeddings`` call; its vectors checked for count, model and dimension."""
        body = self._call("POST", "/embeddings", {"model": self.remote_model, "input": texts, "encoding_format": "float"})
        answered = body.get("model")
        if answered and answered != self.remote_model:
            raise ModelError(
                f"the embedding server {self.base_url} answered with model '{answered}', not '{self.remote_model}'; "
                "set RAG_EMBED_REMOTE_MODEL to the model it serves"
            )
        try:
            rows = sorted(body["data"], key=lambda row: row["index"])
            vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"the embedding server {self.base_url} sent an unexpected answer ({exc!r})") from exc
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ModelError(f"the embedding server {self.base_url} sent {len(vectors)} vectors for {len(texts)} texts")
        if self.dim and vectors.shape[1] != self.dim:
            raise ModelError(
                f"the embedding server {self.base_url} sent vectors of dimension {vectors.shape[1]}, not {self.dim} "
                f"as before: is '{self.remote_model}' still the model it serves?"
            )
        return vectors

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """JSON from the server; retried with backoff on connection errors, 429 and 5xx."""
        url = self.base_url + path
        for attempt in range(self.retries + 1):
            retry_after = None
            try:
                response = self._http.request(method, url, json=payload)
            except httpx.TransportError as exc:
                problem = f"is not reachable ({exc.__class__.__name__}: {exc})"
            else:
                if response.status_code < 400:
                    return _json(response, url)
                problem = f"answered {response.status_code}: {_message(response)}"
                if response.status_code != 429 and response.status_code < 500:
                    hint = "; set RAG_EMBED_API_KEY" if response.status_code in (401, 403) else ""
                    raise ModelError(f"the embedding server {url} {problem}{hint}")
                retry_after = response.headers.get("Retry-After")
            if attempt < self.retries:
                time.sleep(_delay(self.backoff_s, attempt, retry_after))
        raise ModelError(
            f"the embedding server {url} {problem} (tried {self.retries + 1} times); "
            "start it, or point RAG_EMBED_MODEL=openai:URL at a running one"
        )


def _delay(backoff_s: float, attempt: int, retry_after: str | None) -> float:
    """Exponential backoff, or the server's ``Retry-After`` seconds when it gives more."""
    delay = backoff_s * 2**attempt
    if retry_after and retry_after.strip().isdigit():
        delay = max(delay, float(retry_after))
    return min(delay, MAX_DELAY_S)


def _json(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ModelError(f"the embedding server {url} did not answer JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise ModelError(f"the embedding server {url} sent an unexpected answer ({str(body)[:200]})")
    return body


def _message(response: httpx.Response) -> str:
    """The error message of an OpenAI-style error body, else the start of the body."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return response.text[:200] or response.reason_phrase
