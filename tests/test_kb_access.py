"""Who may read what, served for real: uvicorn on loopback, real FAISS indexes per KB, the official
``openai``/``mcp`` clients (fake models). A generated matrix of (user, KB, endpoint) cases checks
that nobody receives a passage, a document or a model id of a KB they may not read."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from test_api import Server, components_for
from typer.testing import CliRunner

from rag.cli import app

runner = CliRunner()
TITLES = {"default": "公共图书馆延长开放时间", "hr": "河南设立人工智能产业基金", "finance": "算力网络建设提速", "public": "人形机器人产业观察"}
KBS = [*TITLES, "missing"]
# what each user may do on each KB (absent: may not read)
ROLES = {
    "alice": {"hr": "reader", "public": "editor"},  # hr through group hr
    "bob": {"finance": "editor", "default": "reader"},
    "carol": {kb: "editor" for kb in TITLES},  # an administrator
    "dave": {},
}
HTTP_ENDPOINTS = ("models", "chat", "search", "documents", "upload", "delete", "stream")
MCP_TOOLS = ("search_knowledge_base", "ask_knowledge_base", "list_documents")


def cli(*args: object, **kwargs: object) -> str:
    result = runner.invoke(app, [str(a) for a in args], **kwargs)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def world(tmp_path, corpus_dir):
    """Four KBs of one article each (default at $RAG_INDEX), four users with keys: {user: key}."""
    (corpus_dir / "library.txt").write_text(f"{TITLES['default']}\n\n市图书馆自9月起每天开放到晚上10点，周一照常开放。\n", encoding="utf-8")
    cli("ingest", corpus_dir / "library.txt")
    for kb, file in (("hr", "henan.txt"), ("finance", "compute.txt"), ("public", "robots.md")):
        cli("kb", "create", kb)
        cli("ingest", corpus_dir / file, "--kb", kb)
    cli("users", "add", "alice", "--group", "hr")
    cli("users", "add", "bob")
    cli("users", "add", "carol", "--admin")
    cli("users", "add", "dave")
    cli("kb", "grant", "hr", "--group", "hr", "--role", "reader")
    cli("kb", "grant", "public", "--user", "alice", "--role", "editor")
    cli("kb", "grant", "finance", "--user", "bob", "--role", "editor")
    cli("kb", "grant", "default", "--user", "bob", "--role", "reader")
    keys = {user: cli("keys", "create", "--user", user).strip().splitlines()[-1] for user in ROLES}
    return tmp_path / "default-index", keys


def _http_case(http: httpx.Client, client: openai.OpenAI, endpoint: str, kb: str) -> tuple[int, str]:
    """(status, body text) of one endpoint for one KB."""
    if endpoint == "models":
        ids = [model.id for model in client.models.list()]
        return (200 if f"rag-zh:{kb}" in ids else 404), json.dumps(ids, ensure_ascii=False)
    if endpoint in ("chat", "stream"):
        body = {"model": f"rag-zh:{kb}", "messages": [{"role": "user", "content": "规模是多少？"}], "stream": endpoint == "stream"}
        response = http.post("/v1/chat/completions", json=body)
    elif endpoint == "search":
        response = http.post("/v1/search", json={"query": "规模 开放 产业", "kb": kb, "top_k": 10})
    elif endpoint == "documents":
        response = http.get("/v1/documents", params={"kb": kb})
    elif endpoint == "upload":
        files = {"files": ("note.txt", f"上传测试\n\n这是上传到{kb}的测试文章，内容用于检查编辑权限。\n".encode())}
        response = http.post("/v1/documents", files=files, data={"kb": kb})
    else:
        listed = http.get("/v1/documents", params={"kb": kb})
        doc = next((d["doc_id"] for d in listed.json().get("data", []) if d["doc_id"].startswith("note")), "note")
        response = http.delete(f"/v1/documents/{doc}", params={"kb": kb})
    return response.status_code, response.text


def _expected(user: str | None, kb: str, endpoint: str) -> int:
    if user is None:
        return 401
    role = ROLES[user].get(kb)
    if role is None:
        return 404
    if endpoint in ("upload", "delete") and role != "editor":
        return 403
    return 200


async def _mcp_cases(url: str, key: str, user: str) -> list[tuple[str, str, bool, str]]:
    """(kb, tool, answered, result text) for every KB and tool, over one MCP session."""
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    found = []
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    async with streamable_http_client(f"{url}/mcp/", http_client=client) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for kb in KBS:
            for tool in MCP_TOOLS:
                args = {"kb": kb, **({"query": "规模"} if tool == "search_knowledge_base" else {})}
                args |= {"question": "规模是多少？"} if tool == "ask_knowledge_base" else {}
                result = await session.call_tool(tool, args)
                text = json.dumps(result.structured_content, ensure_ascii=False) + "".join(getattr(c, "text", "") for c in result.content)
                found.append((kb, tool, not result.is_error, text))
    return found


def test_a_generated_matrix_of_users_kbs_and_endpoints(world):
    index, keys = world
    revoked = cli("keys", "create", "--user", "carol", "--name", "old").strip().splitlines()[-1]
    cli("keys", "revoke", "5")
    principals = {**{user: keys[user] for user in ROLES}, None: "", "revoked": revoked}
    cases = failures = 0
    problems: list[str] = []
    with Server(components_for(index)) as server:
        for user, key in principals.items():
            who = user if user in ROLES else None
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            http = httpx.Client(base_url=server.url, headers=headers, timeout=60)
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key or "none", max_retries=0)
            for kb in KBS:
                for endpoint in HTTP_ENDPOINTS:
                    cases += 1
                    try:
                        status, text = _http_case(http, client, endpoint, kb)
                    except openai.AuthenticationError:
                        status, text = 401, ""
                    hidden = [title for name, title in TITLES.items() if name not in ROLES.get(who or "", {})]
                    leaked = [title for title in hidden if title in text]
                    if status != _expected(who, kb, endpoint) or leaked:
                        failures += 1
                        problems.append(f"{user} {kb} {endpoint}: {status} (expected {_expected(who, kb, endpoint)}) leaked={leaked}")
                    if status == 200 and endpoint in ("search", "documents"):
                        named = {row["kb"] for row in json.loads(text)["data"]}
                        assert named <= {kb}, (user, kb, endpoint, named)
            if who is not None:
                for kb, tool, answered, text in asyncio.run(_mcp_cases(server.url, key, who)):
                    cases += 1
                    readable = kb in ROLES[who]
                    hidden = [title for name, title in TITLES.items() if name not in ROLES[who]]
                    if answered != readable or any(title in text for title in hidden):
                        failures += 1
                        problems.append(f"mcp {who} {kb} {tool}: answered={answered}")
    assert cases >= 200
    assert not problems, "\n".join(problems)


def test_all_kbs_means_the_readable_ones_and_revocations_hold_at_the_next_request(world):
    index, keys = world
    with Server(components_for(index)) as server:
        alice = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys['alice']}"}, timeout=60)
        found = alice.post("/v1/search", json={"query": "规模 开放 产业 算力", "top_k": 20}).json()["data"]
        assert {hit["kb"] for hit in found} == {"hr", "public"}
        answer = alice.post("/v1/chat/completions", json={"model": "rag-zh", "messages": [{"role": "user", "content": "基金规模是多少？"}]})
        assert {source["kb"] for source in answer.json()["sources"]} <= {"hr", "public"}
        uploaded = alice.post("/v1/documents", files={"files": ("机器人新闻.txt", "机器人新闻\n\n某公司发布了四足机器人新品，售价9999元。\n".encode())}, data={"kb": "public"})
        assert uploaded.status_code == 200 and uploaded.json()["added"]
        found = alice.post("/v1/search", json={"query": "四足机器人售价", "kb": "public", "top_k": 1}).json()["data"]
        assert "9999元" in found[0]["text"]  # an upload is found by the next search, no chat question needed
        cli("kb", "revoke", "hr", "--group", "hr")
        assert alice.post("/v1/search", json={"query": "基金", "kb": "hr"}).status_code == 404
        cli("keys", "revoke", "1")
        assert alice.get("/v1/models").status_code == 401
    rows = json.loads(cli("audit", "--user", "alice", "--json"))
    assert [(row["action"], row["kbs"], row["outcome"]) for row in rows] == [
        ("search", ["hr", "public"], "ok"),
        ("ask", ["hr", "public"], "answered"),
        ("upload", ["public"], "ok"),
        ("search", ["public"], "ok"),
    ]
    assert all(row["detail"] == "" and row["actor"] == "alice (key alice-key)" for row in rows)  # RAG_AUDIT_QUESTIONS unset
    assert [row["action"] for row in json.loads(cli("audit", "--json")) if row["outcome"] == "denied"] == ["login failure"]


def test_a_keys_file_is_imported_once_as_user_api(sample_index, capsys):
    key = "legacy-key-0123456789abcdef"
    with Server(components_for(sample_index), keys={key}) as server:
        assert httpx.get(f"{server.url}/v1/models").status_code == 401
        ids = [model.id for model in server.client(key).models.list()]
        assert ids[:2] == ["rag-zh", "rag-zh:default"]
    with Server(components_for(sample_index), keys={key}):
        pass
    assert capsys.readouterr().err.count("imported 1 API key(s)") == 1
    listed = json.loads(cli("keys", "list", "--json"))
    assert [(row["user"], row["active"]) for row in listed] == [("api", True)]
