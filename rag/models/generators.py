"""LLM backends behind one small interface: ``stream(messages) -> Completion``.

A :class:`Completion` yields the reply in pieces and holds its token counts (``usage``) once
it has been read to the end, so concurrent callers never share state through the generator.

* :class:`LlamaCppGenerator`: a GGUF file with llama-cpp-python (the CPU default, bundled model).
* :class:`TransformersGenerator`: a Hugging Face causal LM folder, hub id or GGUF (for GPUs).
* :class:`OpenAIGenerator`: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama).
* :class:`rag.models.fakes.ScriptedGenerator`: a deterministic fake for tests (``fake:scripted``).

All decode greedily (temperature 0), so the same prompt gives the same answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypedDict, runtime_checkable

import httpx

from rag.config import BUNDLED_LLM, Settings
from rag.errors import ModelError

BACKENDS = ("llama-cpp", "transformers", "openai", "fake:scripted")


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


Usage = dict[str, int]
"""Token counts of one reply: ``prompt_tokens`` and ``completion_tokens`` (either may be absent)."""


class Completion(Iterator[str]):
    """One streamed reply: iterate for its text pieces; ``usage`` is complete once it is exhausted.

    ``produce(usage)`` is the backend's generator of pieces; it fills ``usage`` as it goes.
    """

    def __init__(self, produce: Callable[[Usage], Iterator[str]]) -> None:
        self.usage: Usage = {}
        self._pieces = produce(self.usage)

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop reading: the backend stops generating."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


@runtime_checkable
class Generator(Protocol):
    """A chat model: ``stream`` returns the reply as a :class:`Completion` (temperature 0)."""

    model_id: str

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Completion:
        """The reply to ``messages``, generated greedily, at most ``max_tokens`` tokens."""
        ...


class _TokenCounter:
    """A llama.cpp logits processor that only counts: it runs once per sampled token."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.sampled = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.sampled == 0:
            self.prompt_tokens = len(input_ids)  # the whole templated prompt, cached prefix included
        self.sampled += 1
        return scores


def llama_settings(model_path: str | Path, threads: int | None, n_ctx: int = 4096, n_batch: int = 512) -> dict[str, Any]:
    """The ``llama_cpp.Llama`` arguments :class:`LlamaCppGenerator` loads a GGUF with (benchmarks reuse them)."""
    return {
        "model_path": str(model_path),
        "n_ctx": n_ctx,
        "n_batch": n_batch,
        "n_threads": threads,
        "n_threads_batch": threads,
        "flash_attn": True,  # measured: 4 % faster prompt reading on 2 cores (benchmarks/llama-build.md)
        "verbose": False,
    }


class LlamaCppGenerator:
    """A local GGUF model run by llama-cpp-python on the CPU."""

    def __init__(
        self,
        model_path: str | Path,
        threads: int | None = None,
        n_ctx: int = 4096,
        n_batch: int = 512,
        model_id: str | None = None,
    ) -> None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelError(f"GGUF model file not found: {path}")
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelError(f"llama-cpp-python is not installed: {exc}") from exc
        try:
            self._llm = Llama(**llama_settings(path, threads, n_ctx, n_batch))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load {path}: {exc}") from exc
        self.n_ctx = n_ctx
        self.model_id = model_id or path.name

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Completion:
        return Completion(lambda usage: self._pieces(messages, max_tokens, usage))

    def _pieces(self, messages: Sequence[Message], max_tokens: int, usage: Usage) -> Iterator[str]:
        from llama_cpp import LogitsProcessorList

        counter = _TokenCounter()
        finish_reason = None
        try:
            chunks = self._llm.create_chat_completion(
                messages=list(messages),  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=0.0,
                stream=True,
                logits_processor=LogitsProcessorList([counter]),
            )
            for chunk in chunks:
                choice: dict[str, Any] = chunk["choices"][0]  # type: ignore[index,assignment]
                finish_reason = choice.get("finish_reason") or finish_reason
                if text := choice["delta"].get("content"):
                    yield str(text)
        except ValueError as exc:  # e.g. the prompt does not fit the context window
            raise ModelError(f"llama.cpp rejected the request (context {self.n_ctx} tokens): {exc}") from exc
        ended_on_eos = finish_reason == "stop"  # the end-of-turn token was sampled but is not output
        usage["prompt_tokens"] = counter.prompt_tokens
        usage["completion_tokens"] = counter.sampled - int(ended_on_eos and counter.sampled > 0)


class TransformersGenerator:
    """A Hugging Face causal LM: a local folder, a hub id, or a ``.gguf`` file (dequantized on load)."""

    def __init__(
        self,
        model: str | Path,
        threads: int | None = None,
        device: str | None = None,
        model_id: str | None = None,
    ) -> None:
        source, extra = _transformers_source(model)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelError(f"transformers is not installed: {exc}") from exc
        if threads:
            torch.set_num_threads(threads)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(source, **extra)
            model_on_cpu: Any = AutoModelForCausalLM.from_pretrained(
                source, dtype=torch.bfloat16 if self.device == "cuda" else torch.float32, **extra
            )
            self._model: Any = model_on_cpu.to(self.device)
        except (OSError, ValueError, ImportError) as exc:  # ImportError: GGUF needs `gguf` and `accelerate`
            raise ModelError(f"transformers cannot load {model}: {exc}") from exc
        self._model.eval()
        self.model_id = model_id or str(model)

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Completion:
        return Completion(lambda usage: self._pieces(messages, max_tokens, usage))

    def _pieces(self, messages: Sequence[Message], max_tokens: int, usage: Usage) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        inputs = self._tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}
        stop = threading.Event()  # set when the caller stops reading, so generation stops too
        worker = threading.Thread(target=self._generate, args=(inputs, streamer, max_tokens, stop, result), daemon=True)
        worker.start()
        try:
            yield from (text for text in streamer if text)
        finally:
            stop.set()
            worker.join()
        if "error" in result:
            raise ModelError(f"transformers generation failed: {result['error']}") from result["error"]
        prompt_tokens = int(inputs["input_ids"].shape[1])
        special = set(self._tokenizer.all_special_ids)
        new_tokens = result["sequences"][0, prompt_tokens:].tolist()
        usage["prompt_tokens"] = prompt_tokens
        usage["completion_tokens"] = sum(1 for token in new_tokens if token not in special)

    def _generate(self, inputs: Any, streamer: Any, max_tokens: int, stop: threading.Event, result: dict[str, Any]) -> None:
        """Greedy generation on a worker thread; errors are handed back through ``result``."""
        from transformers import StoppingCriteriaList

        try:
            result["sequences"] = self._model.generate(
                **inputs,
                streamer=streamer,
                max_new_tokens=max_tokens,
                stopping_criteria=StoppingCriteriaList([lambda *_args, **_kwargs: stop.is_set()]),
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        except Exception as exc:  # noqa: BLE001 - re-raised on the caller's thread
            result["error"] = exc
            streamer.end()


def _transformers_source(model: str | Path) -> tuple[str, dict[str, str]]:
    """``from_pretrained`` arguments: a ``.gguf`` file becomes its folder plus ``gguf_file=``."""
    path = Path(model).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF model file not found: {path}")
        return str(path.parent), {"gguf_file": path.name}
    return (str(path) if path.exists() else str(model)), {}


class OpenAIGenerator:
    """An OpenAI-compatible ``/chat/completions`` endpoint, streamed as server-sent events.

    Token counts come from the server when it sends ``usage`` in the stream; when it does not
    (llama.cpp's Python server), ``completion_tokens`` counts the streamed content chunks.
    """

    def __init__(self, base_url: str, model: str, api_key: str = "not-needed", timeout_s: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_id = model
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout_s, connect=10.0)

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Completion:
        return Completion(lambda usage: self._pieces(messages, max_tokens, usage))

    def _pieces(self, messages: Sequence[Message], max_tokens: int, usage: Usage) -> Iterator[str]:
        payload = {
            "model": self.model_id,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        url = f"{self.base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {self.api_key}"}
        chunks = 0
        try:
            with httpx.stream("POST", url, json=payload, headers=headers, timeout=self.timeout) as response:
                if response.status_code >= 400:
                    detail = response.read().decode("utf-8", errors="replace")[:500]
                    raise ModelError(f"the LLM server at {url} answered HTTP {response.status_code}: {detail}")
                for event in _sse_events(response.iter_lines()):
                    if reported := event.get("usage"):
                        usage.update({k: int(reported.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")})
                    for choice in event.get("choices") or []:
                        if text := (choice.get("delta") or {}).get("content"):
                            chunks += 1
                            yield text
        except httpx.ConnectError as exc:
            raise ModelError(
                f"cannot reach the LLM server at {self.base_url} ({exc}); start it, "
                "or point RAG_LLM_BASE_URL at a running OpenAI-compatible server"
            ) from exc
        except httpx.HTTPError as exc:
            raise ModelError(f"the LLM server at {self.base_url} failed: {exc!r}") from exc
        if not usage:
            usage["completion_tokens"] = chunks


def _sse_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of an SSE stream's ``data:`` lines, up to ``[DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except json.JSONDecodeError as exc:
            raise ModelError(f"the LLM server sent a malformed event: {data[:200]!r}") from exc


def make_generator(settings: Settings) -> Generator:
    """The generator named by ``settings.llm_backend`` and ``settings.llm_model``."""
    backend, model = settings.llm_backend, settings.llm_model
    if backend == "llama-cpp":
        return LlamaCppGenerator(_local_model(settings), threads=settings.threads, model_id=model)
    if backend == "transformers":
        return TransformersGenerator(_local_model(settings), threads=settings.threads, model_id=model)
    if backend == "openai":
        return OpenAIGenerator(settings.llm_base_url, model, settings.llm_api_key)
    if backend == "fake:scripted":
        from rag.models.fakes import ScriptedGenerator

        return ScriptedGenerator.from_setting(model)
    raise ModelError(f"unknown LLM backend {backend!r}; choose one of: {', '.join(BACKENDS)}")


def _local_model(settings: Settings) -> str | Path:
    """The bundled GGUF (joined on first use) for :data:`BUNDLED_LLM`, else the setting as given."""
    if settings.llm_model == BUNDLED_LLM:
        from rag.models.llm_weights import ensure_bundled_gguf

        return ensure_bundled_gguf(settings.data_dir)
    if settings.llm_backend == "llama-cpp" and Path(settings.llm_model).suffix.lower() != ".gguf":
        raise ModelError(f"the llama-cpp backend needs a .gguf file, got {settings.llm_model!r}")
    return settings.llm_model
