"""The web page with users: logins against RAG_DB, the KB picker, and every tab scoped to what the
logged-in user may read or change (fake models, real FAISS indexes per KB, the real handlers)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from conftest import FAKE_MODEL_ID
from test_kb_access import TITLES, cli
from typer.testing import CliRunner

from rag.accounts.audit import audit_for
from rag.cli import app
from rag.components import Components
from rag.config import Settings
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.admin import audit_view
from rag.web.app import WebApp
from rag.web.library_tab import NO_EDITABLE_KB
from rag.web.logins import NOBODY, import_logins

PASSWORD = "correct horse"
NOTE = "上传测试\n\n这是网页上传的测试文章，写着青岚市设立了总规模77亿元的未来产业基金。\n"


def as_user(name: str | None) -> SimpleNamespace:
    """What Gradio passes as ``gr.Request`` for a session logged in as ``name``."""
    return SimpleNamespace(username=name)


@pytest.fixture
def web(tmp_path, corpus_dir) -> WebApp:
    """Four KBs of one article each (as in test_kb_access), users with passwords, and the page's handlers."""
    (corpus_dir / "library.txt").write_text(f"{TITLES['default']}\n\n市图书馆自9月起每天开放到晚上10点，周一照常开放。\n", encoding="utf-8")
    cli("ingest", corpus_dir / "library.txt")
    for kb, file in (("hr", "henan.txt"), ("finance", "compute.txt"), ("public", "robots.md")):
        cli("kb", "create", kb, "--title", kb.upper())
        cli("ingest", corpus_dir / file, "--kb", kb)
    for user, flags in (("alice", ["--group", "hr"]), ("bob", []), ("carol", ["--admin"]), ("dave", [])):
        cli("users", "add", user, *flags, "--password-stdin", input=PASSWORD + "\n")
    cli("kb", "grant", "hr", "--group", "hr", "--role", "reader")
    cli("kb", "grant", "public", "--user", "alice", "--role", "editor")
    cli("kb", "grant", "finance", "--user", "bob", "--role", "editor")
    cli("kb", "grant", "default", "--user", "bob", "--role", "reader")
    settings = Settings()
    models = Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator())
    return WebApp(settings, models, feedback_file=tmp_path / "feedback.jsonl")


def hidden_titles(user: str, readable: set[str]) -> list[str]:
    return [title for kb, title in TITLES.items() if kb not in readable]


def test_logins_check_the_users_scrypt_password_and_failures_are_audited(web):
    assert web.logins.required()
    assert web.logins.check("alice", PASSWORD)
    assert not web.logins.check("alice", "wrong password")
    assert not web.logins.check("mallory", PASSWORD)
    rows = audit_for(Settings()).rows()
    failures = [(row.actor, row.action, row.detail, row.outcome) for row in rows if row.action == "login failure"]
    assert failures == [
        ("alice", "login failure", "web login as alice", "denied"),
        ("?", "login failure", "web login (unknown user)", "denied"),
    ]
    assert web.principal(as_user("alice")).groups == {"hr"}
    assert web.principal(as_user(None)) == NOBODY  # a page served before the first user was added
    assert web.principal(as_user("ghost")) == NOBODY


def test_single_user_mode_needs_no_login(tmp_path, sample_index):
    settings = Settings().with_index(sample_index)
    app = WebApp(settings, Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator()))
    assert not app.logins.required()
    assert app.principal(None).admin
    picker, _, editing, audit_tab = app.kb_choices(None)
    assert picker["choices"] == [("默认知识库（default）", "default")] and not picker["visible"]  # one KB: no picker
    assert editing["value"] == "default" and audit_tab["visible"]


def test_the_pickers_offer_what_the_user_may_read_and_change(web):
    picker, probe, editing, audit_tab = web.kb_choices(as_user("alice"))
    assert [name for _, name in picker["choices"]] == ["hr", "public"] and picker["visible"] and probe == picker
    assert [name for _, name in editing["choices"]] == ["public"] and editing["value"] == "public"
    assert not audit_tab["visible"]
    picker, _, editing, audit_tab = web.kb_choices(as_user("carol"))
    assert [name for _, name in picker["choices"]] == ["default", "finance", "hr", "public"] and audit_tab["visible"]
    picker, _, editing, _ = web.kb_choices(as_user("dave"))
    assert picker["choices"] == [] and editing["choices"] == [] and not editing["visible"]


@pytest.mark.parametrize("user", ["alice", "bob", "dave"])
def test_answers_come_only_from_readable_kbs_and_name_them(web, user):
    readable = {"alice": {"hr", "public"}, "bob": {"finance", "default"}, "dave": set()}[user]
    generator = web.models.generator()
    asked_before = len(generator.calls)
    *_, last = web.ask("规模 开放 产业 算力 基金是多少？", [], request=as_user(user))
    if not readable:
        assert last == (gr.skip(),) * 4  # a notice, no answer
        assert len(generator.calls) == asked_before
        return
    chat, turns, sources, _ = last
    passages = turns[-1].passages
    assert passages and {hit.kb for hit in passages} <= readable
    assert 'class="rag-kb"' in sources
    prompts = json.dumps(generator.calls[asked_before:], ensure_ascii=False)
    for title in hidden_titles(user, readable):  # neither the LLM nor the page sees another KB's passage
        assert title not in prompts and title not in sources and title not in json.dumps(chat, ensure_ascii=False)
    rows = [row for row in audit_for(Settings()).rows(user=user) if row.action == "ask"]
    outcome = "refused" if turns[-1].answer.refused else "answered"  # the checks may refuse this keyword soup
    assert [(set(row.kbs), row.outcome) for row in rows] == [(readable, outcome)]


def test_a_picked_kb_narrows_the_answer_and_an_unreadable_one_is_refused_like_a_missing_one(web):
    *_, last = web.ask("基金规模是多少？", [], kbs=["hr"], request=as_user("alice"))
    assert {hit.kb for hit in last[1][-1].passages} == {"hr"}
    for kb in ("finance", "missing"):
        *_, last = web.ask("基金规模是多少？", [], kbs=[kb], request=as_user("alice"))
        assert last == (gr.skip(),) * 4


def test_the_retrieval_test_and_full_text_are_scoped(web):
    alice = as_user("alice")
    html = web.probe("规模 开放 产业 算力", 20, None, alice)
    assert TITLES["hr"] in html and TITLES["public"] in html
    assert not any(title in html for title in hidden_titles("alice", {"hr", "public"}))
    refused = web.probe("规模", 5, ["finance"], alice)
    assert refused == web.probe("规模", 5, ["missing"], alice) and "没有权限" in refused
    assert [row.kbs for row in audit_for(Settings()).rows(user="alice") if row.action == "search"] == [("hr", "public")]

    carol = as_user("carol")
    *_, last = web.ask("算力规模是多少？", [], kbs=["finance"], request=carol)
    hit = last[1][-1].passages[0]
    wanted = json.dumps({"key": "1", "kb": "finance", "doc": hit.chunk.doc_id, "chunk": hit.chunk.chunk_id})
    assert TITLES["finance"] in web.open_document(wanted, carol)
    for user in ("alice", "dave"):
        shown = web.open_document(wanted, as_user(user))
        assert TITLES["finance"] not in shown and "找不到这篇文章" in shown
    no_kb = json.dumps({"key": "2", "doc": hit.chunk.doc_id, "chunk": hit.chunk.chunk_id})  # a card saved before KBs
    assert TITLES["finance"] in web.open_document(no_kb, carol)
    assert "找不到这篇文章" in web.open_document(no_kb, as_user("alice"))


def test_filter_choices_list_only_readable_documents(web):
    _, files = web.filter_choices(None, as_user("alice"))
    assert sorted(name for name, _ in files["choices"]) == ["henan.txt", "robots.md"]
    _, files = web.filter_choices(["finance"], as_user("alice"))
    assert files["choices"] == []


def test_the_kb_tab_lets_editors_upload_and_delete_and_nobody_else(web, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text(NOTE, encoding="utf-8")
    alice = as_user("alice")
    for kb in ("hr", "finance", "missing"):  # a reader's KB, another's, none: the same refusal, nothing written
        status, summary, rows, _, _ = web.upload([str(note)], kb, alice)
        assert status == NO_EDITABLE_KB and summary == NO_EDITABLE_KB and rows == []
        assert web.delete("henan", kb, alice)[0] == NO_EDITABLE_KB
    assert "note" not in json.dumps(web.kb_view("hr", as_user("carol")), ensure_ascii=False)

    status, summary, rows, choice, _ = web.upload([str(note)], "public", alice)
    assert status.startswith("✅") and any(row[1] == "note.txt" for row in rows)
    assert TITLES["hr"] not in json.dumps(rows, ensure_ascii=False)
    probe = web.probe("青岚市未来产业基金", 3, ["public"], alice)
    assert "77亿元" in probe  # found at once
    doc = next(value for _, value in choice["choices"] if value.startswith("note"))
    status, *_ = web.delete(doc, "public", alice)
    assert status.startswith("🗑️")
    rows = audit_for(Settings()).rows(user="alice")
    assert [(row.action, row.kbs, row.outcome) for row in rows if row.action in ("upload", "delete")] == [
        ("upload", ("public",), "ok"),
        ("delete", ("public",), "ok"),
    ]


def test_the_audit_tab_is_for_administrators(web):
    list(web.ask("基金规模是多少？", [], request=as_user("alice")))
    assert audit_view(web.library, web.principal(as_user("alice"))) == ("只有管理员可以查看审计日志。", [])
    status, rows = audit_view(web.library, web.principal(as_user("carol")), user="alice")
    assert status == "共 1 条记录。" and rows[0][1:4] == ["alice", "ask", "hr, public"]
    assert [row[2] for row in audit_view(web.library, web.principal(as_user("carol")), kb="finance")[1]] == ["grant", "ingest", "kb create"]  # newest first; the CLI set-up is audited too
    assert audit_view(web.library, web.principal(as_user("carol")), since="2999-01-01")[1] == []
    assert "日期格式" in audit_view(web.library, web.principal(as_user("carol")), since="yesterday")[0]


def test_an_old_auth_file_is_imported_once_into_users(tmp_path, capsys):
    settings = Settings()
    models = Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator())
    logins = [("erin", "short"), ("frank", "pa:ss:word")]
    import_logins(models, logins, "/etc/rag/auth.txt")
    import_logins(models, logins, "/etc/rag/auth.txt")
    assert capsys.readouterr().err.count("imported 2 login(s) from /etc/rag/auth.txt") == 1
    app = WebApp(settings, models, feedback_file=tmp_path / "feedback.jsonl")
    assert app.logins.required() and app.logins.check("erin", "short") and app.logins.check("frank", "pa:ss:word")
    erin = app.principal(as_user("erin"))
    assert erin.groups == {"staff"} and app.library.permissions.role(erin, "default") == "editor"


def test_each_user_exports_only_their_own_conversations(web, tmp_path):
    alice, bob = as_user("alice"), as_user("bob")
    *_, (chat, turns, _, _) = web.ask("河南设立的人工智能产业基金总规模是多少？", [], request=alice)
    cid, _ = web.save_conversation(turns, "", alice)
    assert web.export_markdown(cid, bob) is None and web.export_json("", bob) is None  # bob has none, and not alice's
    markdown = Path(web.export_markdown(cid, alice)).read_text(encoding="utf-8")
    assert "## 问：河南设立的人工智能产业基金总规模是多少？" in markdown and "hr · henan.txt" in markdown
    [conversation] = json.loads(Path(web.export_json("", alice)).read_text(encoding="utf-8"))
    assert conversation["id"] == cid and conversation["user"] == "alice"
    assert any(p["cited"] and p["kb"] == "hr" for p in conversation["turns"][0]["passages"])

    runner_out = cli("conversations", "export", "--user", "alice", "--format", "json")
    assert [c["id"] for c in json.loads(runner_out)] == [cid]
    assert json.loads(cli("conversations", "export", "--user", "bob", "--format", "json")) == []
    result = CliRunner().invoke(app, ["conversations", "export", "--user", "bob", "--id", cid])
    assert result.exit_code == 1 and "no such conversation" in result.output
    out = tmp_path / "alice.md"
    cli("conversations", "export", "--user", "alice", "--out", out)
    assert out.read_text(encoding="utf-8") == markdown and stat.S_IMODE(out.stat().st_mode) == 0o600
