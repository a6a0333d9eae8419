"""Saved conversations: SQLite, per user, survive a new store object (a restart)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest
from conftest import modes

from rag.errors import InputError
from rag.index.chunking import Chunk
from rag.qa.citations import Citation
from rag.qa.pipeline import Answer
from rag.qa.retriever import SearchHit
from rag.web.conversations import ConversationStore, turn_from_dict, turn_to_dict
from rag.web.render import ChatTurn

CHUNK = Chunk("c1", "henan", "河南基金", "/src/henan.txt", "河南设立总规模30亿元的人工智能产业基金。", 0)


def answered(question: str = "河南基金多大？") -> ChatTurn:
    citation = Citation(1, "c1", "henan", "河南基金", CHUNK.text, True, 0, len(CHUNK.text))
    answer = Answer(question, question, "30亿元[1]。", False, [citation], [SearchHit(1, CHUNK, 0.5, True)], {"total_ms": 1.0})
    return ChatTurn(question, answer.answer, list(answer.passages), answer)


def test_a_turn_round_trips_through_json():
    turn = answered()
    again = turn_from_dict(turn_to_dict(turn))
    assert again.answer == turn.answer and again.passages == turn.passages and again.text == turn.text
    failed = turn_from_dict(turn_to_dict(ChatTurn("问", error="出错了")))
    assert failed.error == "出错了" and failed.answer is None and failed.finished


def test_saved_conversations_survive_a_restart_and_stay_per_user(tmp_path):
    path = tmp_path / "conv" / "conversations.db"
    first = ConversationStore(path).save("alice", None, [answered()])
    again = ConversationStore(path)  # a new process
    assert [t.answer for t in again.load("alice", first) or []] == [answered().answer]
    assert again.load("bob", first) is None and again.list("bob") == []
    assert ConversationStore(path).save("bob", first, [answered("别人的？")]) != first  # never overwrites alice's
    assert again.save("alice", first, [answered(), answered("还有呢？")]) == first
    [info] = again.list("alice")
    assert (info.id, info.title) == (first, "河南基金多大？")
    assert len(again.load("alice", first) or []) == 2
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rename_and_delete_check_the_owner_and_the_title(tmp_path):
    store = ConversationStore(tmp_path / "c.db")
    cid = store.save("", None, [answered()])
    store.rename("", cid, "  河南 基金  ")
    assert store.list("")[0].title == "河南 基金"
    with pytest.raises(InputError):
        store.rename("", cid, " ")
    with pytest.raises(InputError):
        store.rename("mallory", cid, "偷改")
    with pytest.raises(InputError):
        store.delete("mallory", cid)
    store.delete("", cid)
    assert store.list("") == [] and store.load("", cid) is None


def test_the_database_and_its_folder_are_owner_only_whatever_the_umask(tmp_path, umask):
    path = tmp_path / "conv" / "conversations.db"
    ConversationStore(path).save("alice", None, [answered()])
    with closing(sqlite3.connect(path)) as reader:  # keeps the -wal and -shm files open
        reader.execute("SELECT count(*) FROM conversations").fetchone()
        assert modes(path.parent) == {
            ".": 0o700,
            "conversations.db": 0o600,
            "conversations.db-wal": 0o600,
            "conversations.db-shm": 0o600,
        }


def test_an_older_conversations_file_is_imported_once(tmp_path, capsys):
    from rag.accounts.db import Database
    from rag.web.conversations import import_conversations

    old = tmp_path / "conversations" / "conversations.db"
    old.parent.mkdir()
    with closing(sqlite3.connect(old)) as conn, conn:
        conn.execute("CREATE TABLE conversations (id TEXT PRIMARY KEY, user TEXT NOT NULL, title TEXT NOT NULL, "
                     "turns TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)")
        body = json.dumps([turn_to_dict(answered())], ensure_ascii=False)
        conn.execute("INSERT INTO conversations VALUES ('c1', 'alice', '河南基金多大？', ?, 't0', 't0')", (body,))
    db = Database(tmp_path / "rag.db")
    assert import_conversations(db, old) == 1 and import_conversations(db, old) == 0
    assert capsys.readouterr().err.count("imported 1 saved conversation(s)") == 1
    store = ConversationStore(db)
    assert [info.id for info in store.list("alice")] == ["c1"] and store.list("bob") == []
    [exported] = store.export("alice")
    passage = exported["turns"][0]["passages"][0]
    assert passage["cited"] and passage["quote"] == CHUNK.text and exported["turns"][0]["answer"] == "30亿元[1]。"
    with pytest.raises(InputError):
        store.export("bob", "c1")
