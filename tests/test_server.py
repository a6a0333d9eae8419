"""``rag serve``: the web page, the API and MCP in one process around one :class:`Components`.

Served for real (uvicorn on loopback, :class:`test_api.Server`) with the fake models; the page is
reached over HTTP with Gradio's own client, the API with the official ``openai`` client, MCP with
the official ``mcp`` client.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from conftest import FAKE_MODEL_ID
from gradio_client import Client
from starlette.testclient import TestClient
from test_api import HENAN, Server, _check_mcp_results, _use_mcp, components_for
from test_cli import run

from rag.accounts.keys import Keys
from rag.accounts.users import Users
from rag.api.app import create_app
from rag.api.auth import is_api_path
from rag.components import Components
from rag.config import Settings
from rag.errors import RagError
from rag.models import generators
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.server import create_server, serve
from rag.web.app import WebApp
from rag.web.logins import WebLogins

QUANTUM = "青岚量子通信干线开通\n\n青岚量子通信干线全长1234公里，连接六座城市，于本月正式开通。\n"
PASSWORD = "correct horse battery"


def one_server(index: Path, tmp_path: Path, made: list[ScriptedGenerator] | None = None, **page: object) -> Server:
    """``rag serve``'s app over ``index``; the LLM is built by the settings' factory, each one built
    added to ``made`` (when given)."""
    components = components_for(index)
    if made is not None:  # no injected LLM: Components asks the factory, as in `rag serve`
        components = Components(components.settings, HashingEmbedder(model_id=FAKE_MODEL_ID))
    web = WebApp(components.settings, components, feedback_file=tmp_path / "feedback.jsonl")
    server = Server(components, app=create_server(web, **page))  # type: ignore[arg-type]
    server.page = web  # type: ignore[attr-defined]
    return server


@pytest.fixture
def made(monkeypatch) -> list[ScriptedGenerator]:
    """Every LLM :func:`generators.make_generator` builds."""
    built: list[ScriptedGenerator] = []

    def make(settings: Settings) -> ScriptedGenerator:
        built.append(ScriptedGenerator())
        return built[-1]

    monkeypatch.setattr(generators, "make_generator", make)
    return built


def page_answer(client: Client, question: str) -> str:
    """The last chat message the page shows for ``question`` (its ``/ask`` event, as the browser sends it)."""
    chat, *_ = client.predict(question, "", "", api_name="/ask")
    return text_of(chat[-1])


def text_of(message: dict[str, object]) -> str:
    """The text of a chat message as Gradio's client returns it (a string or a list of text parts)."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)  # type: ignore[union-attr]


def mcp_results(url: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    def session():
        client = httpx2.AsyncClient(headers=headers or {}, timeout=60)
        return streamable_http_client(f"{url}/mcp/", http_client=client)

    return asyncio.run(_use_mcp(session))


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --------------------------------------------------------------------------- one process, one model


def test_the_page_the_api_and_mcp_answer_on_one_port_with_one_llm(sample_index, tmp_path, made):
    with one_server(sample_index, tmp_path, made) as server:
        home = httpx.get(f"{server.url}/")
        assert home.status_code == 200 and "文章问答助手" in home.text
        assert "default-src 'self'" in home.headers["content-security-policy"]  # the page's content policy
        assert "30亿元" in page_answer(Client(server.url, verbose=False), HENAN)
        client = server.client()
        assert [model.id for model in client.models.list()] == ["rag-zh", "rag-zh:default", FAKE_MODEL_ID]
        reply = client.chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": HENAN}])
        assert "30亿元" in reply.choices[0].message.content
        _check_mcp_results(mcp_results(server.url))
        redirect = httpx.post(f"{server.url}/mcp", json={})
        assert redirect.status_code == 307 and redirect.headers["location"].endswith("/mcp/")  # not the page's 404
    [llm] = made  # built once, when the server started, for all three
    assert len(llm.calls) == 3  # the page's, the API's and MCP's answer
    assert server.page.models is server.components  # type: ignore[attr-defined]


def test_questions_from_the_page_and_the_api_wait_in_one_queue(sample_index, tmp_path):
    answers: list[str] = []
    with one_server(sample_index, tmp_path) as server:

        def ask_the_api() -> None:
            reply = server.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": HENAN}])
            answers.append(reply.choices[0].message.content)

        api = threading.Thread(target=ask_the_api)
        with server.components.queue.enter():  # someone's answer holds the model
            page = Client(server.url, verbose=False).submit(HENAN, "", "", api_name="/ask")
            wait_for(lambda: httpx.get(f"{server.url}/health").json()["queue"] == 2)  # the page's question waits behind it
            api.start()
            wait_for(lambda: httpx.get(f"{server.url}/health").json()["queue"] == 3)  # and the API's behind both
        chat, *_ = page.result(timeout=60)
        api.join(timeout=60)
    assert "30亿元" in text_of(chat[-1]) and answers and "30亿元" in answers[0]


def test_an_upload_through_the_api_is_found_at_once_by_the_api_and_the_page(sample_index, tmp_path):
    with one_server(sample_index, tmp_path) as server:
        page = Client(server.url, verbose=False)
        assert "1234公里" not in page.predict("量子通信干线全长多少公里", 3, api_name="/probe")
        sent = httpx.post(
            f"{server.url}/v1/documents", files={"files": ("quantum.txt", QUANTUM.encode(), "text/plain")}, timeout=60
        )
        assert sent.status_code == 200 and len(sent.json()["added"]) == 1
        found = httpx.post(f"{server.url}/v1/search", json={"query": "量子通信干线全长多少公里", "top_k": 1}).json()
        assert "1234公里" in found["data"][0]["text"]
        assert "1234公里" in page.predict("量子通信干线全长多少公里", 3, api_name="/probe")  # one open index for both


# --------------------------------------------------------------------------- logins, keys and the browser guard


def test_with_users_the_page_keeps_its_login_and_the_api_needs_a_key(sample_index, tmp_path):
    db = components_for(sample_index).database()  # the server's (beside the index)
    Users(db).add("alice", password=PASSWORD)
    Users(db).grant("default", "user", "alice", "reader")
    _, key = Keys(db).create("alice")
    with one_server(sample_index, tmp_path) as server:  # built with users: the page asks for a login
        assert httpx.get(f"{server.url}/config").status_code == 401  # the page: nothing before the login
        assert "auth_required" in httpx.get(f"{server.url}/").text
        assert httpx.post(f"{server.url}/login", data={"username": "alice", "password": "wrong"}).status_code == 400
        browser = httpx.Client(base_url=server.url)
        assert browser.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 200
        assert "文章问答助手" in browser.get("/config").text
        assert browser.get("/v1/models").status_code == 401  # the page's login is no API key
        assert httpx.post(f"{server.url}/mcp/", json={}).status_code == 401
        assert [model.id for model in server.client(key).models.list()] == ["rag-zh", "rag-zh:default", FAKE_MODEL_ID]
        found = Client(server.url, auth=("alice", PASSWORD), verbose=False).predict("算力枢纽", 3, api_name="/probe")
        assert "215.5" in found  # alice, logged in, searches the page
    rows = server.components.audit().rows(user="alice")
    assert any(row.action == "login failure" and row.detail == "web login as alice" for row in rows)


def test_without_logins_the_page_gets_the_apis_browser_guard(sample_index, tmp_path):
    with one_server(sample_index, tmp_path) as server:
        foreign = httpx.get(f"{server.url}/", headers={"Host": "rebind.example"})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "host_not_allowed"
        join = f"{server.url}/gradio_api/queue/join"
        cross_site = httpx.post(join, json={}, headers={"Origin": "https://evil.example"})
        assert cross_site.status_code == 403 and cross_site.json()["error"]["code"] == "cross_site_request"
        assert httpx.post(join, json={}, headers={"Origin": server.url}).status_code != 403
        assert httpx.get(f"{server.url}/v1/models", headers={"Host": "rebind.example"}).status_code == 403


def test_no_api_serves_the_page_alone(sample_index, tmp_path):
    components = components_for(sample_index)
    page = WebApp(components.settings, components, feedback_file=tmp_path / "feedback.jsonl")
    with TestClient(create_server(page, with_api=False), base_url="http://127.0.0.1") as client:
        assert "文章问答助手" in client.get("/").text
        for path in ("/v1/models", "/mcp/", "/health", "/docs"):
            assert client.get(path).status_code == 404, path
        assert client.get("/", headers={"Host": "rebind.example"}).status_code == 403


# --------------------------------------------------------------------------- rag serve


def test_serve_refuses_an_open_host_before_loading_models(tmp_path, monkeypatch):
    monkeypatch.delenv("RAG_AUTH", raising=False)
    monkeypatch.delenv("RAG_ALLOW_OPEN", raising=False)
    monkeypatch.setattr(Components, "preload", lambda self: pytest.fail("models loaded"))
    with pytest.raises(RagError, match="without a login"):
        serve(replace(Settings(), index_dir=tmp_path / "i"), host="0.0.0.0", port=7999)


def test_a_page_login_without_users_leaves_the_api_open_so_serve_needs_keys_or_no_api(tmp_path, monkeypatch):
    class Loaded(Exception):
        pass

    def preload(self: Components) -> None:
        raise Loaded

    monkeypatch.delenv("RAG_ALLOW_OPEN", raising=False)
    monkeypatch.setattr(WebLogins, "required", lambda self: True)  # an LDAP directory, no users in RAG_DB
    monkeypatch.setattr(Components, "preload", preload)
    settings = replace(Settings(), index_dir=tmp_path / "i", db_file=tmp_path / "rag.db")
    with pytest.raises(RagError, match="without API keys.*--no-api"):
        serve(settings, host="0.0.0.0", port=7999)
    with pytest.raises(Loaded):  # past the checks
        serve(settings, host="0.0.0.0", port=7999, with_api=False)


def test_every_route_of_the_api_is_guarded_by_its_gate(sample_index):
    """The gate guards the API's paths only (the rest is the page's): no API route may sit elsewhere."""
    app = create_app(components_for(sample_index))
    paths = set(app.openapi()["paths"]) | {route.path for route in app.routes if hasattr(route, "path")}
    assert {"/v1/chat/completions", "/v1/search", "/v1/documents", "/mcp", "/docs", "/openapi.json"} <= paths
    assert all(is_api_path(path) for path in paths - {"/health"}), sorted(paths)
    assert not any(is_api_path(path) for path in ("/", "/config", "/login", "/gradio_api/queue/join", "/v1x", "/mcpx"))


@pytest.mark.parametrize(("flags", "with_api"), [((), True), (("--no-api",), False)])
def test_rag_serve_runs_the_one_server_with_or_without_the_api(monkeypatch, flags, with_api):
    seen: dict[str, object] = {}
    monkeypatch.setattr("rag.server.serve", lambda settings, **options: seen.update(options))
    result = run("serve", "--port", "7999", *flags)
    assert result.exit_code == 0, result.output
    assert seen["with_api"] is with_api and seen["port"] == 7999 and seen["host"] == "127.0.0.1"
