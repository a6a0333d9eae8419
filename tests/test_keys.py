"""Scoped API keys: `rag keys create/list/revoke`; a key acts as its user; only its hash is kept."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from rag.accounts.db import Database
from rag.accounts.keys import Keys
from rag.cli import app

runner = CliRunner()


def run(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def test_a_key_is_printed_once_stored_as_a_hash_acts_as_its_user_and_stops_when_revoked(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_DB", str(tmp_path / "rag.db"))
    run("users", "add", "alice", "--group", "hr")
    assert "no user named" in run("keys", "create", "--user", "bob").output
    created = run("keys", "create", "--user", "alice", "--name", "open-webui")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("rag-") and len(key) > 40
    raw = (tmp_path / "rag.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("rag.db-*"))
    assert key.encode() not in raw
    stored = sqlite3.connect(tmp_path / "rag.db").execute("SELECT sha256, prefix FROM api_keys").fetchone()
    assert stored[1] == key[:8] and len(stored[0]) == 64
    keys = Keys(Database(tmp_path / "rag.db"))
    principal = keys.principal(key)
    assert principal and (principal.name, principal.groups, principal.actor) == ("alice", frozenset({"hr"}), "alice (key open-webui)")
    assert keys.principal(key + "x") is None
    listed = json.loads(run("keys", "list", "--json").stdout)
    assert [(k["id"], k["user"], k["label"], k["active"]) for k in listed] == [(1, "alice", "open-webui", True)]
    assert key not in run("keys", "list").output
    assert run("keys", "revoke", "1").exit_code == 0
    assert keys.principal(key) is None and not keys.any()
    assert run("keys", "revoke", "7").exit_code == 1
