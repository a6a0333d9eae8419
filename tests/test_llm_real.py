"""The real LLM backends on the bundled Qwen2.5-Coder-1.5B GGUF: joining it, llama-cpp-python
in-process, llama.cpp's OpenAI-compatible server, and the transformers streaming path."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from rag.config import BUNDLED_LLM, Settings
from rag.models.generators import LlamaCppGenerator, Message, OpenAIGenerator, TransformersGenerator, make_generator
from rag.models.llm_weights import EXPECTED_SIZE, ensure_bundled_gguf

pytestmark = pytest.mark.real

SETTINGS = replace(Settings(), llm_backend="llama-cpp", llm_model=BUNDLED_LLM)
MESSAGES: list[Message] = [
    {"role": "system", "content": "你是问答助手，只根据资料用中文回答，并在句末用资料编号标注出处，例如[1]。"},
    {
        "role": "user",
        "content": "资料：\n[1] 河南省设立总规模30亿元的人工智能产业基金，重点投向算力基础设施。\n\n"
        "问题：河南的人工智能产业基金规模是多少？请只根据资料回答，并标注引用。",
    },
]
MAX_TOKENS = 40


@pytest.fixture(scope="module")
def gguf() -> Path:
    return ensure_bundled_gguf(SETTINGS.data_dir)


@pytest.fixture(scope="module")
def llama(gguf) -> LlamaCppGenerator:
    generator = make_generator(SETTINGS)
    assert isinstance(generator, LlamaCppGenerator)
    return generator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(gguf, tmp_path_factory) -> Iterator[str]:
    """A real ``llama_cpp.server`` on a free local port; yields its ``/v1`` base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "2048", "--n_threads", str(SETTINGS.threads),
    ]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_serving(server, base_url, log)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_serving(server: subprocess.Popen, base_url: str, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {server.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer within {timeout_s}s:\n{log.read_text(errors='replace')[-3000:]}")


def test_bundled_gguf_is_joined_verified_and_recorded(gguf):
    assert gguf.stat().st_size == EXPECTED_SIZE
    with gguf.open("rb") as model_file:
        assert model_file.read(4) == b"GGUF"
    started = time.perf_counter()
    assert ensure_bundled_gguf(SETTINGS.data_dir) == gguf
    assert time.perf_counter() - started < 1.0, "a verified file must not be hashed again"


def test_llama_cpp_streams_a_cited_chinese_answer_deterministically(llama):
    completion = llama.stream(MESSAGES, max_tokens=MAX_TOKENS)
    pieces = list(completion)
    answer = "".join(pieces)
    assert len(pieces) > 3, pieces
    assert "30亿" in answer and "[1]" in answer, answer
    usage = completion.usage
    assert 60 < usage["prompt_tokens"] < 200, usage
    assert 0 < usage["completion_tokens"] <= MAX_TOKENS, usage
    assert "".join(llama.stream(MESSAGES, max_tokens=MAX_TOKENS)) == answer  # greedy: same again


def test_llama_cpp_stops_at_max_tokens(llama):
    completion = llama.stream(MESSAGES, max_tokens=3)
    list(completion)
    assert completion.usage["completion_tokens"] == 3


def test_openai_backend_against_real_llama_cpp_server(llama_server):
    generator = make_generator(replace(SETTINGS, llm_backend="openai", llm_base_url=llama_server))
    assert isinstance(generator, OpenAIGenerator)
    completion = generator.stream(MESSAGES, max_tokens=MAX_TOKENS)
    pieces = list(completion)
    answer = "".join(pieces)
    assert len(pieces) > 3 and "30亿" in answer, answer
    assert 0 < completion.usage["completion_tokens"] <= MAX_TOKENS


@pytest.fixture(scope="module")
def tiny_hf_model(tmp_path_factory) -> Path:
    """A tiny randomly initialised Qwen2 causal LM with the bundled GGUF's real tokenizer."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    gguf = ensure_bundled_gguf(SETTINGS.data_dir)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-qwen2")
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_transformers_streams_greedily_and_counts_tokens(tiny_hf_model):
    generator = make_generator(replace(SETTINGS, llm_backend="transformers", llm_model=str(tiny_hf_model)))
    assert isinstance(generator, TransformersGenerator)
    completion = generator.stream(MESSAGES, max_tokens=6)
    answer = "".join(completion)
    usage = completion.usage
    assert 60 < usage["prompt_tokens"] < 200 and 0 < usage["completion_tokens"] <= 6, usage
    assert "".join(generator.stream(MESSAGES, max_tokens=6)) == answer  # greedy: same again
    stream = generator.stream(MESSAGES, max_tokens=200)
    next(stream)
    stream.close()  # the caller stops reading: generation stops and its thread ends
    assert stream.usage == {}  # an abandoned reply reports no usage
