"""The audit log: append-only rows, questions only with RAG_AUDIT_QUESTIONS=1, retention, `rag audit`."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from rag.accounts.audit import AuditLog
from rag.accounts.db import Database
from rag.cli import app

runner = CliRunner()


def run(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def test_questions_are_kept_only_when_asked_to_and_old_rows_go(tmp_path):
    db = Database(tmp_path / "rag.db")
    AuditLog(db).record("alice", "ask", ["hr"], "年假有几天？", "answered")
    AuditLog(db, keep_details=True).record("alice (key bot)", "ask", ["hr", "finance"], "报销流程？", "refused")
    AuditLog(db).record("local", "grant", ["hr"], "user alice reader", private=False)
    with sqlite3.connect(tmp_path / "rag.db") as conn:
        conn.execute("UPDATE audit SET time = '2001-01-01T00:00:00Z' WHERE id = 1")
    log = AuditLog(db, days=30)
    assert [(r.actor, r.detail, r.outcome) for r in log.rows()] == [
        ("alice", "", "answered"),
        ("alice (key bot)", "报销流程？", "refused"),
        ("local", "user alice reader", "ok"),
    ]
    log.record("bob", "search", ["finance"])
    rows = log.rows()
    assert [r.id for r in rows] == [2, 3, 4]  # the 2001 row is past the 30 days
    assert [r.id for r in log.rows(user="alice")] == [2]  # a key of alice's counts as alice
    assert [r.id for r in log.rows(kb="finance")] == [2, 4]
    assert [r.id for r in log.rows(kb="fin")] == []
    assert log.rows(since="2999-01-01") == []


def test_rag_audit_shows_the_cli_administration_with_filters(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_DB", str(tmp_path / "rag.db"))
    run("kb", "create", "hr")
    run("users", "add", "alice")
    run("kb", "grant", "hr", "--user", "alice", "--role", "reader")
    run("keys", "create", "--user", "alice", "--name", "bot")
    run("keys", "revoke", "1")
    run("kb", "revoke", "hr", "--user", "alice")
    rows = json.loads(run("audit", "--json").stdout)
    assert [(r["actor"], r["action"], r["kbs"], r["outcome"]) for r in rows] == [
        ("local", "kb create", ["hr"], "ok"),
        ("local", "user add", [], "ok"),  # adding a user is an administrator's change too
        ("local", "grant", ["hr"], "ok"),
        ("local", "key create", [], "ok"),
        ("local", "key revoke", [], "ok"),
        ("local", "revoke", ["hr"], "ok"),
    ]
    assert [r["action"] for r in json.loads(run("audit", "--kb", "hr", "--since", "2020-01-01", "--json").stdout)] == ["kb create", "grant", "revoke"]
    assert "not a date" in run("audit", "--since", "yesterday").output
    assert "grant" in run("audit").output


def test_cli_ingest_sync_and_remove_are_audited_without_file_names_unless_asked(tmp_path, corpus_dir, monkeypatch):
    monkeypatch.setenv("RAG_DB", str(tmp_path / "rag.db"))
    assert run("kb", "create", "tech").exit_code == 0
    assert run("ingest", corpus_dir / "compute.txt", "--kb", "tech").exit_code == 0
    assert run("ingest", corpus_dir / "henan.txt").exit_code == 0  # the index at $RAG_INDEX: KB default
    assert run("ingest", tmp_path / "missing.txt", "--kb", "tech").exit_code != 0
    elsewhere = tmp_path / "other-index"
    assert run("ingest", corpus_dir / "robots.md", "--index", elsewhere).exit_code == 0  # no KB of its own
    assert run("sync", corpus_dir, "--kb", "tech").exit_code == 0
    doc = json.loads(run("info", "--kb", "tech", "--docs", "--json").stdout)["document_list"][0]["doc_id"]
    monkeypatch.setenv("RAG_AUDIT_QUESTIONS", "1")
    assert run("remove", doc, "--kb", "tech").exit_code == 0
    rows = [r for r in json.loads(run("audit", "--json").stdout) if r["action"] != "kb create"]
    assert [(r["actor"], r["action"], r["kbs"], r["outcome"]) for r in rows] == [
        ("local", "ingest", ["tech"], "ok"),
        ("local", "ingest", ["default"], "ok"),
        ("local", "ingest", ["tech"], "error"),
        ("local", "ingest", [], "ok"),
        ("local", "sync", ["tech"], "ok"),
        ("local", "remove", ["tech"], "ok"),
    ]
    assert rows[0]["detail"] == "1 added, 0 replaced, 0 removed, 0 failed"  # counts only: no file name
    assert rows[3]["detail"].startswith(f"index {elsewhere}: 1 added")
    assert rows[4]["detail"] == "2 added, 0 replaced, 0 removed, 0 failed"
    assert rows[5]["detail"] == f"1 removed; {doc}, {doc}"  # RAG_AUDIT_QUESTIONS=1: what was named too
    assert not any("compute.txt" in r["detail"] for r in rows)
