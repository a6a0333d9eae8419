"""Security of the HTTP API and the MCP server, served for real (uvicorn on loopback) with the fake models.

Without keys only this machine's names and pages may use the API (DNS rebinding, cross-site
posts); searches and embeddings are limited in number; a body streamed past the limit is 413;
MCP filters are bounded like the API's; a Milvus password never appears in a message or a log.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import FAKE_MODEL_ID
from test_api import KEY, Server, _check_mcp_results, _use_mcp, components_for
from typer.testing import CliRunner

from rag.cli import app as cli_app
from rag.components import Components
from rag.config import Settings
from rag.errors import IndexStoreError
from rag.index.faiss_store import FaissStore
from rag.index.ingest import IngestReport
from rag.index.locations import milvus_target, redact
from rag.index.migrate import MigrateReport
from rag.models.embedders import TextKind
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.base import friendly_error

ARTICLE = ("qinglan.txt", "青岚市设立未来产业基金\n\n青岚市人民政府近日宣布，设立总规模77亿元的青岚未来产业基金。\n".encode(), "text/plain")
SEARCH = {"query": "人工智能产业基金", "top_k": 2}
PASSWORD = "s3cret-pw"


def settings_for(**changes: Any) -> Settings:
    return replace(Settings(), embed_model=FAKE_MODEL_ID, llm_backend="fake:scripted", **changes)


def titles(server: Server, headers: dict[str, str] | None = None) -> set[str]:
    return {d["title"] for d in httpx.get(f"{server.url}/v1/documents", headers=headers).json()["data"]}


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def server(sample_index) -> Iterator[Server]:
    with Server(components_for(sample_index)) as running:
        yield running


# --------------------------------------------------------------------------- Host and Origin without keys


def test_without_keys_only_loopback_host_names_are_answered(server):
    port = server.port
    foreign = ["evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", f"localhost.evil.example:{port}"]
    foreign += [f"0.0.0.0:{port}", "192.168.1.5", "evil.example@127.0.0.1", "127.1", ""]
    for host in foreign:
        for response in (
            httpx.get(f"{server.url}/v1/documents", headers={"Host": host}),
            httpx.post(f"{server.url}/v1/search", json=SEARCH, headers={"Host": host}),
        ):
            assert response.status_code == 403, (host, response.text)
            assert error_code(response) == "host_not_allowed" and response.json()["error"]["type"] == "invalid_request_error"
    for host in ["127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}", f"127.8.9.10:{port}"]:
        assert httpx.get(f"{server.url}/v1/documents", headers={"Host": host}).status_code == 200, host
        assert httpx.post(f"{server.url}/v1/search", json=SEARCH, headers={"Host": host}).status_code == 200, host


def test_a_cross_site_post_is_refused_and_nothing_is_uploaded(server):
    before = titles(server)
    doc_id = httpx.get(f"{server.url}/v1/documents").json()["data"][0]["doc_id"]
    for origin in ["http://evil.example", "null", f"http://evil.example:{server.port}", "https://127.0.0.1.evil.example", "file://"]:
        upload = httpx.post(f"{server.url}/v1/documents", files=[("files", ARTICLE)], headers={"Origin": origin})
        assert upload.status_code == 403 and error_code(upload) == "cross_site_request", (origin, upload.text)
        deleted = httpx.delete(f"{server.url}/v1/documents/{doc_id}", headers={"Origin": origin})
        assert deleted.status_code == 403 and error_code(deleted) == "cross_site_request"
    assert titles(server) == before
    assert titles(server, {"Origin": "http://evil.example"}) == before  # a read: the browser keeps it from that page
    same_machine = httpx.post(
        f"{server.url}/v1/documents", files=[("files", ARTICLE)], headers={"Origin": f"http://localhost:{server.port}"}
    )
    assert same_machine.status_code == 200 and same_machine.json()["added"]
    assert "青岚市设立未来产业基金" in titles(server)


def test_with_keys_a_browser_still_needs_the_key_and_any_host_name_is_answered(sample_index):
    with Server(components_for(sample_index), keys={KEY}) as running:
        same_origin = {"Origin": running.url}
        refused = httpx.post(f"{running.url}/v1/documents", files=[("files", ARTICLE)], headers=same_origin)
        assert refused.status_code == 401 and error_code(refused) == "invalid_api_key"
        exposed = {"Authorization": f"Bearer {KEY}", "Host": "kb.example.org"}  # served on 0.0.0.0 with keys
        assert httpx.get(f"{running.url}/v1/documents", headers=exposed).status_code == 200


def test_served_beyond_loopback_on_purpose_addresses_and_this_machines_name_are_answered(sample_index):
    with Server(components_for(sample_index), serve_as="0.0.0.0") as running:
        for host in ["192.168.1.5:8000", "[fe80::1]:8000", socket.gethostname(), "localhost"]:
            assert httpx.get(f"{running.url}/v1/documents", headers={"Host": host}).status_code == 200, host
        for host in ["evil.example", "kb.evil.example:8000"]:
            refused = httpx.get(f"{running.url}/v1/documents", headers={"Host": host})
            assert refused.status_code == 403 and error_code(refused) == "host_not_allowed", host
        lan = {"Host": "192.168.1.5:8000"}
        own_page = httpx.post(f"{running.url}/v1/search", json=SEARCH, headers={**lan, "Origin": "http://192.168.1.5:8000"})
        assert own_page.status_code == 200
        other = httpx.post(f"{running.url}/v1/search", json=SEARCH, headers={**lan, "Origin": "http://192.168.1.9"})
        assert other.status_code == 403 and error_code(other) == "cross_site_request"


# --------------------------------------------------------------------------- MCP without keys


async def _mcp_search(url: str, calls: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
    """The search tool's input schema, and the results of ``calls`` to it, over streamable HTTP."""
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    client = httpx2.AsyncClient(timeout=60)
    async with streamable_http_client(f"{url}/mcp/", http_client=client) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        schema = next(t.input_schema for t in (await session.list_tools()).tools if t.name == "search_knowledge_base")
        return schema, [await session.call_tool("search_knowledge_base", arguments) for arguments in calls]


def test_mcp_over_http_without_keys_bounds_filter_lists_like_the_api(sample_index):
    from mcp.client.streamable_http import streamable_http_client

    with Server(components_for(sample_index)) as running:
        _check_mcp_results(asyncio.run(_use_mcp(lambda: streamable_http_client(f"{running.url}/mcp/"))))
        query = {"query": "人工智能产业基金"}
        calls = [{**query, "tags": ["科技"] * 100}, {**query, "tags": ["科技"] * 101}, {**query, "sources": ["a.txt"] * 101}]
        schema, (hundred, too_many_tags, too_many_sources) = asyncio.run(_mcp_search(running.url, calls))
    assert not hundred.is_error
    for result in (too_many_tags, too_many_sources):
        assert result.is_error and "at most 100 items" in result.content[0].text, result.content
    tags = next(option for option in schema["properties"]["tags"]["anyOf"] if option.get("type") == "array")
    assert tags["maxItems"] == 100


# --------------------------------------------------------------------------- limits on work and bodies


class SlowEmbedder(HashingEmbedder):
    """Blocks on a text with 慢 in it until released: a long embedding that holds its slot."""

    def __init__(self) -> None:
        super().__init__(model_id=FAKE_MODEL_ID)
        self.entered, self.release = threading.Event(), threading.Event()

    def embed(self, texts: Sequence[str], kind: TextKind = "passage") -> np.ndarray:
        if any("慢" in text for text in texts):
            self.entered.set()
            self.release.wait(30)
        return super().embed(texts, kind)


def test_searches_and_embeddings_past_the_work_limit_get_429(sample_index):
    embedder = SlowEmbedder()
    components = Components(settings_for(index_dir=sample_index, max_concurrent_work=1), embedder, ScriptedGenerator())
    with Server(components) as running:
        slow: dict[str, httpx.Response] = {}

        def embed_slowly() -> None:
            slow["response"] = httpx.post(f"{running.url}/v1/embeddings", json={"model": "m", "input": "慢"}, timeout=60)

        worker = threading.Thread(target=embed_slowly)
        worker.start()
        try:
            assert embedder.entered.wait(30)
            for path, body in (("/v1/embeddings", {"model": "m", "input": "快"}), ("/v1/search", SEARCH)):
                busy = httpx.post(f"{running.url}{path}", json=body)
                assert busy.status_code == 429 and busy.headers["Retry-After"] == "1", busy.text
                assert busy.json()["error"]["type"] == "rate_limit_error" and error_code(busy) == "server_busy"
            _, [mcp_busy] = asyncio.run(_mcp_search(running.url, [{"query": "人工智能产业基金"}]))
            assert mcp_busy.is_error and "the server is busy" in mcp_busy.content[0].text
        finally:
            embedder.release.set()
            worker.join(60)
        assert slow["response"].status_code == 200
        assert httpx.post(f"{running.url}/v1/search", json=SEARCH).status_code == 200  # the slot is free again


def test_a_chunked_body_over_the_limit_is_413(server):
    def too_large() -> Iterator[bytes]:
        yield b'{"model": "rag-zh", "messages": [{"role": "user", "content": "'
        for _ in range(5):
            yield b"a" * (1024 * 1024)
        yield b'"}]}'

    json_type = {"Content-Type": "application/json"}
    response = httpx.post(f"{server.url}/v1/chat/completions", content=too_large(), headers=json_type, timeout=60)
    assert response.status_code == 413 and error_code(response) == "body_too_large", response.text
    small = httpx.post(f"{server.url}/v1/search", content=iter([b'{"query": "', "算力".encode(), b'"}']), headers=json_type)
    assert small.status_code == 200  # a chunked body under the limit is read as before


# --------------------------------------------------------------------------- credentials in messages


def unreachable_milvus() -> str:
    """A Milvus server URI with a password, on a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"milvus://root:{PASSWORD}@127.0.0.1:{port}/kb"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("milvus://root:s3cret@db:19530/kb", "milvus://root:***@db:19530/kb"),
        ("at milvus://root:p@ss/w@db:1/kb: run `rag ingest --index milvus://root:p@ss/w@db:1/kb`", "at milvus://root:***@db:1/kb: run `rag ingest --index milvus://root:***@db:1/kb`"),
        ("milvus://API-TOKEN@db/kb", "milvus://***@db/kb"),
        ("http://db:19530/?token=abc&db=x and https://h/?password=p", "http://db:19530/?token=***&db=x and https://h/?password=***"),
        ("milvus-lite:///data/kb@2.db, milvus://db:19530/kb, mail@example.com", "milvus-lite:///data/kb@2.db, milvus://db:19530/kb, mail@example.com"),
    ],
)
def test_redact_hides_passwords_and_tokens(text, shown):
    assert redact(text) == shown


def test_a_malformed_milvus_uri_is_reported_without_its_password():
    for uri in (f"milvus://root:{PASSWORD}@db:19530/no-dashes", f"milvus://root:{PASSWORD}/x@db:19530/kb"):
        with pytest.raises(IndexStoreError) as caught:
            milvus_target(uri)
        assert "root:***@" in str(caught.value) and PASSWORD not in str(caught.value)
    assert PASSWORD not in milvus_target(f"milvus://root:{PASSWORD}@db:19530/kb").location


def test_an_unreachable_milvus_is_reported_without_its_password_by_the_api_and_its_log(caplog):
    uri = unreachable_milvus()
    components = Components(settings_for().with_index(uri), HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator())
    server = Server(components)
    caplog.set_level(logging.WARNING)
    server.thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.server.started or server.app.state.services.loader.error is None:
            assert time.monotonic() < deadline, "loading never failed"
            time.sleep(0.05)
        response = httpx.post(f"{server.url}/v1/search", json=SEARCH)
    finally:
        server.__exit__()
    assert response.status_code == 503 and error_code(response) == "model_not_ready"
    message = response.json()["error"]["message"]
    assert "cannot connect to Milvus at milvus://root:***@127.0.0.1" in message and PASSWORD not in message
    assert "root:***@" in caplog.text and PASSWORD not in caplog.text


def test_the_cli_and_the_web_page_hide_a_milvus_password(sample_index, monkeypatch):
    runner = CliRunner()
    uri = unreachable_milvus()
    failed = runner.invoke(cli_app, ["search", "基金", "--index", uri])
    assert failed.exit_code == 1 and "root:***@" in failed.output and PASSWORD not in failed.output
    monkeypatch.setattr(Components, "open_store", lambda self: FaissStore.load(sample_index))
    info = runner.invoke(cli_app, ["info", "--json", "--index", uri])
    assert info.exit_code == 0 and PASSWORD not in info.output and "root:***@" in info.output
    error = IndexStoreError(f"no index at {uri}")
    for exists in (True, False):
        assert PASSWORD not in friendly_error(error, exists)
    assert "root:***@" in friendly_error(error, True)

    def no_web_app(*args: object, **kwargs: object) -> None:
        raise error  # raw, as a library might: the CLI's error line hides it too

    monkeypatch.setattr("rag.index.ingest.ingest", lambda *args, **kwargs: IngestReport())
    monkeypatch.setattr("rag.index.migrate.migrate", lambda *args, **kwargs: MigrateReport(0, 0, 0, 0.0))
    for command in (["ingest", str(sample_index), "--index", uri], ["migrate", "--from", str(sample_index), "--to", uri]):
        reported = runner.invoke(cli_app, command)
        assert reported.exit_code == 0 and "root:***@" in reported.output and PASSWORD not in reported.output, reported.output
    monkeypatch.setattr("rag.server.WebApp", no_web_app)
    served = runner.invoke(cli_app, ["serve", "--index", uri])
    assert served.exit_code == 1 and PASSWORD not in served.output
    assert "loading models for milvus://root:***@" in served.output and f"no index at {redact(uri)}" in served.output
