"""Feedback on answers lives in RAG_DB (schema 3): an existing database is upgraded in place, an older
version's JSONL log is imported once, and the page records who voted."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

from conftest import FAKE_MODEL_ID
from test_web_access import as_user, web  # noqa: F401 - the shared fixture

from rag.accounts.db import MIGRATIONS, SCHEMA_VERSION, Database
from rag.components import Components
from rag.config import Settings
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.app import WebApp
from rag.web.feedback import FeedbackStore, import_feedback

OLD_LOG = [
    {"time": "2025-09-02T10:00:00+0800", "vote": "down", "comment": "数字不对", "user": "alice", "question": "基金多大？",
     "standalone_question": "河南基金多大？", "answer": "50亿元[1]。", "refused": False,
     "citations": [{"n": 1, "chunk_id": "c1", "doc_id": "d1", "verified": True}], "passage_chunk_ids": ["c1", "c2"]},
    {"time": "2025-09-03T10:00:00+0800", "vote": "up", "comment": "", "user": None, "question": "算力多少？",
     "standalone_question": "", "answer": "很多。", "refused": True, "citations": [], "passage_chunk_ids": []},
]


def write_old_log(path, records=OLD_LOG) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in records]
    path.write_text("".join(lines) + '[1, 2]\n{"vote": "down", "quest\n', encoding="utf-8")  # not a record; cut off


def test_a_database_of_schema_2_is_upgraded_and_keeps_its_rows(tmp_path):
    path = tmp_path / "rag.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        for script in MIGRATIONS[:2]:
            conn.executescript(script)
        conn.execute("INSERT INTO users VALUES ('alice', NULL, 0, 't0')")
        conn.execute("INSERT INTO conversations VALUES ('c1', 'alice', '标题', '[]', 't0', 't0')")
        conn.execute("PRAGMA user_version = 2")
    db = Database(path)
    with db.transaction() as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert conn.execute("SELECT name FROM users").fetchall() == [("alice",)]
        assert conn.execute("SELECT id FROM conversations").fetchall() == [("c1",)]
    assert FeedbackStore(db).records() == []


def test_an_old_feedback_log_is_imported_once_with_a_message(tmp_path, capsys):
    old = tmp_path / "feedback" / "feedback.jsonl"
    write_old_log(old)
    db = Database(tmp_path / "rag.db")
    assert import_feedback(db, old) == 2 and import_feedback(db, old) == 0
    assert import_feedback(db, tmp_path / "missing.jsonl") == 0
    assert capsys.readouterr().err.count(f"imported 2 feedback record(s) from {old}") == 1
    store = FeedbackStore(db)
    assert store.records() == OLD_LOG  # every field as the log had it
    assert [r["question"] for r in store.records(vote="down")] == ["基金多大？"]
    assert [r["question"] for r in store.records(since="2025-09-03")] == ["算力多少？"]
    assert old.exists()  # left for its owner to delete


def test_the_page_imports_the_old_log_on_open_and_records_who_voted(web, tmp_path, capsys):  # noqa: F811
    old = tmp_path / "older" / "feedback.jsonl"
    write_old_log(old)
    settings = Settings()
    models = Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator())
    app = WebApp(settings, models, feedback_file=old)
    WebApp(settings, models, feedback_file=old)  # a restart imports nothing again
    assert capsys.readouterr().err.count("imported 2 feedback record(s)") == 1
    *_, (_, turns, _, _) = web.ask("基金规模是多少？", [], request=as_user("alice"))
    assert turns[-1].answer is not None
    assert web.vote_down(turns, "没答到", request=as_user("alice")) == ("", "已记录你的反馈，谢谢！")
    records = app.feedback.records()
    assert len(records) == 3 and records[-1]["user"] == "alice" and records[-1]["vote"] == "down"
    assert records[-1]["comment"] == "没答到" and records[-1]["question"] == "基金规模是多少？"
