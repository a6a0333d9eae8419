"""The HTTP API and the MCP server, served for real (uvicorn on loopback) with the fake models.

The official ``openai`` client and the official ``mcp`` client SDK talk to them; the embedder
is the hashing fake and the LLM the scripted fake (extractive replies, optionally slow).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import uvicorn
from conftest import FAKE_MODEL_ID
from fastapi import FastAPI

from rag.api.app import create_app
from rag.api.chat import FOOTNOTE_RULE, ChunkStream
from rag.components import Components
from rag.config import Settings
from rag.index.uploads import uploads_dir
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.qa.pipeline import Event
from rag.qa.prompts import REFUSAL

HENAN = "河南设立的人工智能产业基金规模是多少？"
KEY = "test-key-0123456789abcdef"


class Server:
    """A uvicorn server on a free loopback port, in a thread; ``serve_as`` is the host the app is
    built for (``rag api --host``), to test the rules for a server exposed on purpose; ``app``, when
    given, is served instead of the API alone (``rag serve``'s, around ``components``)."""

    def __init__(
        self, components: Components, keys: set[str] | None = None, serve_as: str = "127.0.0.1", app: FastAPI | None = None
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.components = components
        self.app = app or create_app(components, keys, host=serve_as)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        while not httpx.get(f"{self.url}/health").json()["models_loaded"] and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or "none", max_retries=0, timeout=60)


def components_for(index: Path, generator: ScriptedGenerator | None = None, capacity: int = 8) -> Components:
    settings = replace(
        Settings(),
        index_dir=index,
        db_file=index.parent / "rag.db",  # its own: module-scoped servers start before the per-test RAG_DB
        embed_model=FAKE_MODEL_ID,
        llm_backend="fake:scripted",
        queue_capacity=capacity,
    )
    return Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), generator or ScriptedGenerator())


@pytest.fixture
def server(sample_index) -> Iterator[Server]:
    with Server(components_for(sample_index)) as running:
        yield running


# --------------------------------------------------------------------------- OpenAI client


def test_models_list_the_knowledge_base_and_the_embedder(server):
    ids = [model.id for model in server.client().models.list()]
    assert ids == ["rag-zh", "rag-zh:default", FAKE_MODEL_ID]


def test_chat_completion_answers_with_citations_sources_and_usage(server):
    response = server.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": HENAN}])
    text = response.choices[0].message.content
    answer, _, footnote = text.partition(FOOTNOTE_RULE)
    assert "30亿元" in answer and "[1]" in answer
    assert footnote.startswith("\n[1] 《")  # the plain-client footnote names the cited passage
    extra = response.model_extra
    assert extra["refused"] is False
    sources = extra["sources"]
    assert [s["n"] for s in sources] == list(range(1, len(sources) + 1))
    assert sources[0]["cited"] and "30亿元" in sources[0]["quote"] and "30亿元" in sources[0]["text"]
    assert {"doc_id", "title", "chunk_id", "source"} <= set(sources[0])
    [evidence] = sources[0]["evidence"]  # the supporting sentence, as offsets into the passage text
    assert sources[0]["text"][evidence["start"] : evidence["end"]] == evidence["text"] == sources[0]["quote"]
    generator = server.components.generator()
    pieces = len(generator.calls[-1][-1]["content"])  # the scripted model counts prompt characters as tokens
    assert response.usage.prompt_tokens == pieces + len(generator.calls[-1][0]["content"])
    assert response.usage.completion_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_streaming_starts_with_sources_and_ends_with_the_checked_answer(server):
    stream = server.client().chat.completions.create(
        model="rag-zh", messages=[{"role": "user", "content": HENAN}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].model_extra["sources"] and chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    assert final.model_extra["answer"] in text and "30亿元" in final.model_extra["answer"]
    assert final.model_extra["sources"][0]["cited"] is True
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_a_retried_refusal_never_reaches_a_streaming_client(sample_index):
    generator = ScriptedGenerator([REFUSAL, "河南设立了总规模30亿元的人工智能产业基金[1]。"])
    with Server(components_for(sample_index, generator)) as running:
        chunks = list(
            running.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": HENAN}], stream=True)
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert REFUSAL not in text and text.startswith("河南设立了总规模30亿元")
    assert chunks[-1].model_extra["timings"]["attempts"] == 2


def test_a_refusal_is_a_normal_answer(sample_index):
    with Server(components_for(sample_index, ScriptedGenerator(REFUSAL))) as running:
        response = running.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": HENAN}])
    assert response.choices[0].message.content == REFUSAL and response.model_extra["refused"] is True


def test_follow_ups_use_the_conversation(server):
    messages = [
        {"role": "system", "content": "你是助手"},
        {"role": "user", "content": HENAN},
        {"role": "assistant", "content": "河南设立了总规模30亿元的人工智能产业基金[1]。" + FOOTNOTE_RULE + "\n[1] 《x》 y"},
        {"role": "user", "content": [{"type": "text", "text": "那广西呢？"}]},
    ]
    response = server.client().chat.completions.create(model="rag-zh", messages=messages)
    generator = server.components.generator()
    rewrite_prompt = generator.calls[-2][-1]["content"]
    assert "那广西呢" in rewrite_prompt and "河南设立了总规模30亿元" in rewrite_prompt and "来源" not in rewrite_prompt
    assert response.model_extra["standalone_question"]


def test_embeddings_match_the_local_model_in_both_encodings(server):
    texts = ["河南设立人工智能产业基金", "算力枢纽"]
    result = server.client().embeddings.create(model="any", input=texts)  # the client asks for base64
    expected = HashingEmbedder(model_id=FAKE_MODEL_ID).embed(texts, kind="raw")
    got = np.array([item.embedding for item in result.data], dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert result.model == FAKE_MODEL_ID and result.usage.prompt_tokens == sum(map(len, texts))
    floats = httpx.post(f"{server.url}/v1/embeddings", json={"model": "m", "input": "算力", "encoding_format": "float"}).json()
    assert len(floats["data"][0]["embedding"]) == expected.shape[1]
    raw = base64.b64encode(expected[0].astype("<f4").tobytes()).decode()
    b64 = httpx.post(f"{server.url}/v1/embeddings", json={"model": "m", "input": texts[0], "encoding_format": "base64"}).json()
    assert b64["data"][0]["embedding"] == raw


def test_search_returns_ranked_passages_with_scores(server):
    body = httpx.post(f"{server.url}/v1/search", json={"query": "八大算力枢纽节点总算力规模", "top_k": 3, "mode": "bm25"}).json()
    assert body["mode"] == "bm25" and len(body["data"]) == 3
    assert "215.5" in body["data"][0]["text"] and body["data"][0]["rank"] == 1
    assert body["data"][0]["score"] >= body["data"][1]["score"]


# --------------------------------------------------------------------------- knowledge base


def test_documents_list_upload_and_delete(server, tmp_path):
    article = "青岚市设立未来产业基金\n\n青岚市人民政府近日宣布，设立总规模77亿元的青岚未来产业基金。\n".encode()
    files = [("files", ("qinglan.txt", article, "text/plain")), ("files", ("virus.exe", b"MZ...", "application/octet-stream"))]
    uploaded = httpx.post(f"{server.url}/v1/documents", files=files, timeout=60).json()
    assert uploaded["added"] and uploaded["chunks_embedded"] >= 1
    assert [f["file"] for f in uploaded["failed"]] == ["virus.exe"]
    listed = httpx.get(f"{server.url}/v1/documents").json()["data"]
    doc_id = next(d["doc_id"] for d in listed if d["title"] == "青岚市设立未来产业基金")
    answer = server.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": "青岚未来产业基金规模多大？"}])
    assert "77亿元" in answer.choices[0].message.content
    assert httpx.delete(f"{server.url}/v1/documents/{doc_id}").json()["deleted"] == doc_id
    assert doc_id not in {d["doc_id"] for d in httpx.get(f"{server.url}/v1/documents").json()["data"]}
    missing = httpx.delete(f"{server.url}/v1/documents/{doc_id}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "document_not_found"


HOLD_LOCK = "import sys\nfrom rag.index.locations import write_lock\nwith write_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n"


def test_an_upload_while_another_process_writes_the_index_is_503_and_changes_nothing(server):
    url = f"{server.url}/v1/documents"
    old = "青岚市设立未来产业基金\n\n青岚市人民政府近日宣布，设立总规模77亿元的青岚未来产业基金。\n".encode()
    new = "青岚市设立未来产业基金\n\n青岚市人民政府近日宣布，设立总规模88亿元的青岚未来产业基金。\n".encode()

    def post(data: bytes) -> httpx.Response:
        return httpx.post(url, files=[("files", ("qinglan.txt", data, "text/plain"))], timeout=60)

    def served() -> str:
        answer = server.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": "青岚未来产业基金规模多大？"}])
        return answer.choices[0].message.content or ""

    stored = uploads_dir(server.components.settings.index_dir) / "qinglan.txt"
    assert post(old).json()["added"] == ["qinglan"]
    args = [sys.executable, "-c", HOLD_LOCK, str(server.components.settings.index)]
    with subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:  # a CLI ingest, say
        assert holder.stdout and holder.stdout.readline() == "held\n"
        busy = post(new)
        holder.communicate("")
    assert busy.status_code == 503 and "another process is writing" in busy.json()["error"]["message"]
    answer = served()
    assert stored.read_bytes() == old and "77亿元" in answer and "88亿元" not in answer
    assert [path.name for path in stored.parent.iterdir()] == ["qinglan.txt"]

    assert post(new).json()["replaced"] == ["qinglan"]
    answer = served()
    assert stored.read_bytes() == new and "88亿元" in answer and "77亿元" not in answer


# --------------------------------------------------------------------------- keys and errors


def test_keys_are_required_when_a_keys_file_is_given(sample_index):
    with Server(components_for(sample_index), keys={KEY}) as running:
        with pytest.raises(openai.AuthenticationError) as refused:
            running.client("wrong-key-0123456789").models.list()
        assert refused.value.status_code == 401 and refused.value.body["code"] == "invalid_api_key"
        assert [m.id for m in running.client(KEY).models.list()][0] == "rag-zh"
        assert httpx.get(f"{running.url}/health").status_code == 200  # health needs no key
        assert httpx.post(f"{running.url}/mcp/", json={}).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ('{"model": "rag-zh", "messages": [', 400, ""),
        ({"model": "rag-zh"}, 400, "messages"),
        ({"model": "rag-zh", "messages": []}, 400, "messages"),
        ({"model": "rag-zh", "messages": [{"role": "assistant", "content": "hi"}]}, 400, ""),
        ({"model": "rag-zh", "messages": [{"role": "user", "content": "  "}]}, 400, ""),
        ({"model": "rag-zh", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages"),
        ({"model": "rag-zh", "messages": [{"role": "user", "content": "问" * 2001}]}, 400, ""),
        ({"model": 5, "messages": [{"role": "user", "content": "hi"}]}, 400, "model"),
    ],
)
def test_bad_chat_requests_get_openai_errors(server, body, status, where):
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(f"{server.url}/v1/chat/completions", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert where in (error["param"] or "")


def test_a_huge_body_is_413(server):
    huge = json.dumps({"model": "rag-zh", "messages": [{"role": "user", "content": "问" * 3_000_000}]})
    response = httpx.post(f"{server.url}/v1/chat/completions", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def test_models_still_loading_is_503(sample_index):
    release = threading.Event()

    class SlowComponents(Components):
        def preload(self) -> None:
            release.wait(30)
            super().preload()

    settings = replace(Settings(), index_dir=sample_index, embed_model=FAKE_MODEL_ID, llm_backend="fake:scripted")
    server = Server(SlowComponents(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator()))
    server.thread.start()
    try:
        while not server.server.started:
            time.sleep(0.02)
        response = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "rag-zh", "messages": [{"role": "user", "content": HENAN}]})
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.json()["error"]["code"] == "model_not_ready"
    finally:
        release.set()
        server.__exit__()


# --------------------------------------------------------------------------- many users


def _stream_answer(server: Server, question: str, record: dict[str, object]) -> None:
    """One conversation: its positions while queued, its text, and the final answer."""
    positions: list[int] = []
    text = []
    for chunk in server.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": question}], stream=True):
        extra = chunk.model_extra or {}
        if "queue_position" in extra:
            positions.append(extra["queue_position"])
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if "answer" in extra:
            record["answer"] = extra["answer"]
    record.update(positions=positions, text="".join(text))


QUESTIONS = [
    "河南设立的人工智能产业基金规模是多少？",
    "八大算力枢纽节点总算力规模是多少？",
    "我国脑机接口企业总量已突破多少家？",
    "截至8月27日，今年脑机接口领域发生了多少起投融资事件？",
    "广西组建的人工智能产业基金规模是多少？",
    "人形机器人市场规模是多少？",
    "数据中心机架总规模是多少？",
    "东数西算工程进展如何？",
]


def test_eight_conversations_each_get_their_own_answer_in_queue_order_and_a_ninth_gets_429(sample_index):
    slow = ScriptedGenerator(piece_delay_s=0.03)
    with Server(components_for(sample_index, slow, capacity=8)) as running:
        alone = {q: running.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": q}]) for q in QUESTIONS}
        records: list[dict[str, object]] = [{} for _ in QUESTIONS]
        threads = [threading.Thread(target=_stream_answer, args=(running, q, r)) for q, r in zip(QUESTIONS, records)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while running.components.queue.waiting() < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running.components.queue.waiting() == 8
        ninth = httpx.post(f"{running.url}/v1/chat/completions", json={"model": "rag-zh", "messages": [{"role": "user", "content": HENAN}]})
        assert ninth.status_code == 429 and int(ninth.headers["Retry-After"]) >= 1
        assert ninth.json()["error"]["type"] == "rate_limit_error"
        for thread in threads:
            thread.join(timeout=120)
    for question, record in zip(QUESTIONS, records):
        expected = alone[question].model_extra["refused"], alone[question].choices[0].message.content.split(FOOTNOTE_RULE)[0]
        assert (REFUSAL == record["answer"], record["answer"]) == expected  # nothing lost or mixed between users
        positions = record["positions"]
        assert positions == sorted(positions, reverse=True), positions  # each caller moves forward, never back
    first_positions = sorted(r["positions"][0] for r in records if r["positions"])
    assert first_positions == list(range(1, len(first_positions) + 1)) and len(first_positions) >= 6


def test_a_client_that_disconnects_gives_up_its_place(sample_index):
    slow = ScriptedGenerator(piece_delay_s=0.2)
    with Server(components_for(sample_index, slow)) as running:
        holder: dict[str, object] = {}
        first = threading.Thread(target=_stream_answer, args=(running, HENAN, holder))
        first.start()
        while running.components.queue.waiting() < 1:
            time.sleep(0.01)
        with httpx.stream(
            "POST", f"{running.url}/v1/chat/completions",
            json={"model": "rag-zh", "stream": True, "messages": [{"role": "user", "content": QUESTIONS[1]}]},
        ) as response:  # fmt: skip
            lines = response.iter_lines()
            while "queue_position" not in next(lines):
                pass
            assert running.components.queue.waiting() == 2
        deadline = time.monotonic() + 10
        while running.components.queue.waiting() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running.components.queue.waiting() <= 1, "the abandoned request still holds its place"
        first.join(timeout=60)
    assert "30亿元" in str(holder["answer"])


# --------------------------------------------------------------------------- fuzz


def _bad_requests(count: int, seed: int = 7) -> Iterator[tuple[str, str, bytes]]:
    """(method, path, body) of generated malformed requests: wrong types, broken JSON, odd text."""
    rng = random.Random(seed)
    odd = ["", " ", "\x00", "\ud7ff", "🙂" * 50, "\u202e反转", "\ufeff", "null", "[]", "{}", "a" * 5000]
    values: list[object] = [None, True, -1, 0, 1.5, 10**30, "", "x", [], {}, [1, "a"], {"a": {"b": []}}, rng.choice(odd)]
    paths = ["/v1/chat/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/search", "/v1/documents", "/v1/models"]
    shapes = {
        "/v1/chat/completions": {"model": "rag-zh", "messages": [{"role": "user", "content": "问题"}], "stream": False},
        "/v1/embeddings": {"model": "m", "input": ["文本"]},
        "/v1/search": {"query": "算力", "top_k": 3, "mode": "hybrid"},
    }
    for _ in range(count):
        path = rng.choice(paths)
        base = json.loads(json.dumps(shapes.get(path, {"x": 1})))
        kind = rng.randrange(6)
        if kind == 0:  # broken JSON
            text = json.dumps(base)
            body = text[: rng.randrange(len(text))].encode() + rng.choice([b"", b"\xff\xfe", b"}}", b"\x00"])
        elif kind == 1:  # a field of the wrong type
            key = rng.choice(list(base) or ["x"])
            base[key] = rng.choice(values)
            body = json.dumps(base).encode()
        elif kind == 2:  # a required field missing, unknown fields added
            if base:
                base.pop(rng.choice(list(base)))
            base[rng.choice(odd) or "extra"] = rng.choice(values)
            body = json.dumps(base).encode()
        elif kind == 3:  # not an object at all
            body = json.dumps(rng.choice(values)).encode()
        elif kind == 4:  # nested garbage in the messages
            base["messages"] = [rng.choice(values) for _ in range(rng.randrange(3))]
            body = json.dumps(base).encode()
        else:  # odd unicode and surrogates in strings, or raw bytes
            body = rng.choice([json.dumps({"model": rng.choice(odd), "input": rng.choice(odd), "query": rng.choice(odd)}).encode(), os.urandom(64)])
        method = rng.choice(["POST"] * 9 + ["PUT", "DELETE"])
        yield method, path, body


def test_a_thousand_bad_requests_get_4xx_never_a_500(server):
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for method, path, body in _bad_requests(1200):
            response = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (method, path, body[:200], response.text[:300])
            if response.status_code >= 400:
                assert set(response.json()["error"]) >= {"message", "type"}, response.text
    print("fuzz statuses:", statuses)
    assert sum(n for status, n in statuses.items() if 400 <= status < 500) >= 1000, statuses
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"  # still serving


# --------------------------------------------------------------------------- MCP


async def _use_mcp(session_factory) -> dict[str, object]:
    from mcp import ClientSession

    async with session_factory() as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        found = await session.call_tool("search_knowledge_base", {"query": "八大算力枢纽节点总算力规模", "top_k": 2})
        answer = await session.call_tool("ask_knowledge_base", {"question": HENAN})
        documents = await session.call_tool("list_documents", {})
        return {
            "tools": {tool.name: tool.description for tool in tools.tools},
            "search": found.structured_content,
            "answer": answer.structured_content,
            "documents": documents.structured_content,
        }


def _check_mcp_results(results: dict[str, object]) -> None:
    tools = results["tools"]
    assert set(tools) == {"search_knowledge_base", "ask_knowledge_base", "list_documents"}
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in text) and "knowledge base" in text for text in tools.values())
    assert "215.5" in results["search"]["passages"][0]["text"]
    answer = results["answer"]
    assert "30亿元" in answer["answer"] and answer["citations"][0]["n"] == 1 and not answer["refused"]
    assert len(results["documents"]["documents"]) >= 2


def test_mcp_over_stdio(sample_index, session_data_dir):
    from mcp import StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {
        **os.environ,
        "RAG_EMBED_MODEL": FAKE_MODEL_ID,
        "RAG_LLM_BACKEND": "fake:scripted",
        "RAG_INDEX": str(sample_index),
        "RAG_DATA_DIR": str(session_data_dir),
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "rag", "mcp"], env=env)
    _check_mcp_results(asyncio.run(_use_mcp(lambda: stdio_client(params))))


def test_mcp_over_streamable_http_with_a_key(sample_index):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    with Server(components_for(sample_index), keys={KEY}) as running:

        def session():
            client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
            return streamable_http_client(f"{running.url}/mcp/", http_client=client)

        _check_mcp_results(asyncio.run(_use_mcp(session)))


# --------------------------------------------------------------------------- stream format


def test_chunk_stream_holds_back_only_what_could_still_be_a_refusal():
    stream = ChunkStream(include_usage=False, raw=True)
    assert stream.on_event(Event("text", text="甲[1]。")) == []  # raw: the model's tokens, not the verified text
    assert stream.on_event(Event("token", text=REFUSAL[:4])) == []
    [flushed] = stream.on_event(Event("token", text="不对"))
    assert flushed["choices"][0]["delta"]["content"] == REFUSAL[:4] + "不对"
    assert stream.on_event(Event("queued", position=2))[0]["queue_position"] == 2
    assert stream.on_event(Event("queued", position=2)) == []  # only changes are sent


def test_chunk_stream_sends_only_verified_text_by_default():
    stream = ChunkStream(include_usage=False)
    assert stream.on_event(Event("token", text="浙江")) == [] and stream.on_event(Event("retry")) == []
    [chunk] = stream.on_event(Event("text", text="甲[1]。"))
    assert chunk["choices"][0]["delta"]["content"] == "甲[1]。"


def test_rag_api_refuses_an_open_host_without_keys_before_loading_anything(monkeypatch, tmp_path):
    from rag.api import server as api_server
    from rag.errors import RagError

    monkeypatch.delenv("RAG_ALLOW_OPEN", raising=False)
    monkeypatch.setattr("rag.api.app.create_app", lambda *a, **k: pytest.fail("the app was built"))
    with pytest.raises(RagError, match="without API keys.*--keys-file.*RAG_ALLOW_OPEN=1"):
        api_server.serve_api(Settings(), host="0.0.0.0")
    short = tmp_path / "keys.txt"
    short.write_text("short\n", encoding="utf-8")
    with pytest.raises(RagError, match="at least 16 characters"):
        api_server.serve_api(Settings(), host="0.0.0.0", keys_file=short)


# --------------------------------------------------------------------------- filters


FILTER_QUESTION = "人工智能产业基金 算力规模 机器人"


def test_search_filters_are_applied_inside_retrieval(synced_index):
    with Server(components_for(synced_index)) as running:

        def doc_ids(**filters: object) -> set[str]:
            response = httpx.post(f"{running.url}/v1/search", json={"query": FILTER_QUESTION, "top_k": 10, **filters})
            assert response.status_code == 200, response.text
            return {hit["doc_id"] for hit in response.json()["data"]}

        assert doc_ids() == {"henan", "compute", "robots"}
        assert doc_ids(tags=["科技"]) == {"compute"}
        assert doc_ids(date_from="2025-08-01", date_to="2025-08-31") == {"henan"}
        robots = next(d["source"] for d in httpx.get(f"{running.url}/v1/documents").json()["data"] if d["doc_id"] == "robots")
        assert doc_ids(sources=[robots]) == {"robots"}
        dated = httpx.post(f"{running.url}/v1/search", json={"query": FILTER_QUESTION, "date_from": "2025-08-01"}).json()
        assert dated["filters"] == {"date_from": "2025-08-01"} and dated["data"][0]["date"] == "2025-08-09"
        bad = httpx.post(f"{running.url}/v1/search", json={"query": FILTER_QUESTION, "date_to": "昨天"})
        assert bad.status_code == 400 and "date_to '昨天' is not a date" in bad.json()["error"]["message"]


def test_chat_takes_filters_as_an_extra_field(synced_index):
    with Server(components_for(synced_index)) as running:
        client = running.client()
        completion = client.chat.completions.create(
            model="rag-zh",
            messages=[{"role": "user", "content": "人工智能产业基金的规模是多少？"}],
            extra_body={"filters": {"tags": ["科技"]}},
        )
        sources = completion.model_extra["sources"]
        assert sources and {s["doc_id"] for s in sources} == {"compute"} and sources[0]["tags"] == ["科技"]
        unknown = httpx.post(
            f"{running.url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "基金"}], "filters": {"tag": ["科技"]}},
        )
        assert unknown.status_code == 400 and "filters.tag" in unknown.json()["error"]["message"]


def test_mcp_search_takes_filters(synced_index):
    from rag.api.mcp_server import build_mcp

    server = build_mcp(components_for(synced_index))
    result = asyncio.run(server.call_tool("search_knowledge_base", {"query": FILTER_QUESTION, "top_k": 10, "tags": ["科技"]}))
    assert {p["doc_id"] for p in result.structured_content["passages"]} == {"compute"}


def test_sources_say_which_part_of_a_question_each_passage_served(sample_index):
    def reply(messages) -> str:
        asked = messages[-1]["content"].split("问题：")[1]
        return "河南基金总规模30亿元[1]。" if asked.startswith("河南") else "安徽基金总规模不低于200亿元[1]。"

    with Server(components_for(sample_index, ScriptedGenerator(reply))) as running:
        question = "河南和安徽的人工智能产业基金规模分别是多少？"
        response = running.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": question}])
    answer = response.choices[0].message.content.partition(FOOTNOTE_RULE)[0]
    assert "30亿元" in answer and "200亿元" in answer
    sources = response.model_extra["sources"]
    served = {part for source in sources for part in source["parts"]}
    assert served == {"河南的人工智能产业基金规模是多少？", "安徽的人工智能产业基金规模是多少？"}
