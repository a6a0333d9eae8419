"""Knowledge bases: the server's database (owner-only, versioned) and `rag kb`, `--kb` on the commands."""

from __future__ import annotations

import json
import sqlite3
import stat

import pytest
from conftest import FAKE_MODEL_ID
from typer.testing import CliRunner

from rag.accounts.db import SCHEMA_VERSION, Database
from rag.cli import app
from rag.errors import RagError

runner = CliRunner()


def run(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def test_the_database_is_created_owner_only_and_versioned(tmp_path, umask):
    db = Database(tmp_path / "state" / "rag.db")
    with db.transaction() as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "rag.db").stat().st_mode) == 0o600


def test_a_database_of_an_older_version_is_upgraded_and_one_of_a_newer_is_refused(tmp_path):
    old = tmp_path / "old.db"
    sqlite3.connect(old).close()  # version 0: no tables yet
    with Database(old).transaction() as conn:
        assert conn.execute("SELECT count(*) FROM kbs").fetchone() == (0,)
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RagError, match="newer rag-zh"):
        with Database(newer).transaction():
            pass


def test_a_failed_change_leaves_the_database_as_it_was(tmp_path):
    db = Database(tmp_path / "rag.db")
    with pytest.raises(sqlite3.IntegrityError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO kbs VALUES ('a', 'A', '/x', 'now')")
            conn.execute("INSERT INTO kbs VALUES ('a', 'A again', '/y', 'now')")
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM kbs").fetchone() == (0,)


def test_kb_create_list_remove(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_DB", str(tmp_path / "db" / "rag.db"))
    created = run("kb", "create", "hr", "--title", "人事制度")
    assert created.exit_code == 0, created.output
    assert run("kb", "create", "hr").exit_code == 1
    assert "cannot name" in run("kb", "create", "HR Docs").output
    elsewhere = tmp_path / "finance-index"
    assert run("kb", "create", "finance", "--index", elsewhere).exit_code == 0
    assert "another knowledge base" in run("kb", "create", "money", "--index", elsewhere).output
    listed = json.loads(run("kb", "list", "--json").stdout)
    assert [kb["name"] for kb in listed] == ["default", "finance", "hr"]
    assert listed[2]["title"] == "人事制度"
    assert listed[2]["location"] == str(tmp_path / "hr")  # beside the default index ($RAG_INDEX in the tests)
    assert listed[1]["location"] == str(elsewhere) and not listed[1]["exists"]
    assert run("kb", "remove", "default").exit_code == 1
    removed = run("kb", "remove", "finance")
    assert removed.exit_code == 0 and "stays at" in removed.output
    assert [kb["name"] for kb in json.loads(run("kb", "list", "--json").stdout)] == ["default", "hr"]
    assert run("kb", "remove", "finance").exit_code == 1


def test_kb_option_on_ingest_search_info_and_the_existing_index_is_default(tmp_path, corpus_dir, monkeypatch):
    default_index = tmp_path / "default-index"  # $RAG_INDEX in the fast tier
    assert run("ingest", corpus_dir / "henan.txt").exit_code == 0
    assert run("kb", "create", "tech").exit_code == 0
    ingested = run("ingest", corpus_dir / "compute.txt", "--kb", "tech")
    assert ingested.exit_code == 0, ingested.output
    tech = json.loads(run("info", "--kb", "tech", "--json").stdout)
    default = json.loads(run("info", "--kb", "default", "--json").stdout)
    assert (tech["documents"], tech["index"]) == (1, str(tmp_path / "tech"))
    assert (default["documents"], default["index"]) == (1, str(default_index))
    hits = json.loads(run("search", "算力规模", "--kb", "tech", "--json").stdout)
    assert {hit["title"] for hit in hits} == {"算力网络建设提速"}
    assert json.loads(run("info", "--json").stdout)["embedding_model"] == FAKE_MODEL_ID
    assert "not both" in run("info", "--kb", "tech", "--index", default_index).output
    assert "no knowledge base named 'nope'" in run("search", "算力", "--kb", "nope").output


def test_search_and_ask_over_several_kbs_merge_one_ranking_naming_each_passage_kb(tmp_path, corpus_dir, monkeypatch):
    monkeypatch.setenv("RAG_LLM_BACKEND", "fake:scripted")
    for name, file in (("funds", "henan.txt"), ("tech", "compute.txt"), ("robots", "robots.md")):
        assert run("kb", "create", name).exit_code == 0
        assert run("ingest", corpus_dir / file, "--kb", name).exit_code == 0
    assert run("kb", "create", "empty").exit_code == 0  # not written yet: nothing to find there
    hits = json.loads(run("search", "人工智能产业基金 算力 机器人", "--kb", "funds", "--kb", "tech", "--kb", "empty", "-k", "20", "--json").stdout)
    assert {hit["kb"] for hit in hits} == {"funds", "tech"}
    assert [hit["rank"] for hit in hits] == list(range(1, len(hits) + 1))
    assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:]))
    one = json.loads(run("search", "算力", "--kb", "tech", "--json").stdout)
    assert {hit["kb"] for hit in one} == {"tech"}
    answer = json.loads(run("ask", "河南设立的人工智能产业基金规模是多少？", "--kb", "tech", "--kb", "robots", "--json").stdout)
    assert {p["kb"] for p in answer["passages"]} <= {"tech", "robots"}  # funds was not asked: never shown
    assert "not both" in run("search", "算力", "--kb", "tech", "--index", tmp_path).output


def test_kb_remove_keeps_the_files_unless_asked_and_deletes_only_its_own_folders(tmp_path, corpus_dir, monkeypatch):
    monkeypatch.setenv("RAG_DB", str(tmp_path / "db" / "rag.db"))
    hr, hr_uploads = tmp_path / "hr", tmp_path / "uploads" / "hr"  # beside the default index ($RAG_INDEX)
    assert run("kb", "create", "hr").exit_code == 0
    assert run("ingest", corpus_dir / "henan.txt", "--kb", "hr").exit_code == 0
    kept = run("kb", "remove", "hr")
    assert kept.exit_code == 0 and "stays at" in kept.output and (hr / "manifest.json").is_file()
    assert run("kb", "create", "hr").exit_code == 0  # the same folder again, with its index
    hr_uploads.mkdir(parents=True)
    (hr_uploads / "henan.txt").write_text("x", encoding="utf-8")
    deleted = run("kb", "remove", "hr", "--delete-files")
    assert deleted.exit_code == 0, deleted.output
    assert not hr.exists() and not hr_uploads.exists() and (tmp_path / "uploads").is_dir()
    assert "hr" not in [kb["name"] for kb in json.loads(run("kb", "list", "--json").stdout)]

    elsewhere = tmp_path / "shared" / "finance"
    refused = {
        "finance": ("--index", elsewhere, "delete its files yourself"),
        "lite": ("--index", f"milvus-lite://{tmp_path}/kb.db", "Milvus"),
        "uploads": ("--title", "uploads", "delete its files yourself"),  # index/uploads holds other KBs' uploads
    }
    for name, (option, value, _) in refused.items():
        assert run("kb", "create", name, option, value).exit_code == 0
    assert run("ingest", corpus_dir / "henan.txt", "--kb", "finance").exit_code == 0
    for name, (_, _, message) in refused.items():
        result = run("kb", "remove", name, "--delete-files")
        assert result.exit_code == 1 and message in " ".join(result.output.split()), result.output
    assert {"finance", "lite", "uploads"} <= {kb["name"] for kb in json.loads(run("kb", "list", "--json").stdout)}
    assert (elsewhere / "manifest.json").is_file()
    assert "cannot be removed" in run("kb", "remove", "default", "--delete-files").output
    assert run("kb", "create", "empty").exit_code == 0
    assert "no files yet" in run("kb", "remove", "empty", "--delete-files").output
    audit = json.loads(run("audit", "--json").stdout)
    assert [(r["action"], r["kbs"], r["detail"]) for r in audit if r["action"] == "kb remove"] == [
        ("kb remove", ["hr"], f"files kept at {hr}"),
        ("kb remove", ["hr"], "files deleted"),
        ("kb remove", ["empty"], "files deleted"),
    ]
