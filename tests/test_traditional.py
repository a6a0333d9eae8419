"""Traditional Chinese with fakes: script detection, lexical matching across scripts on both
stores, the citation check across scripts, and answers in the script of the question."""

from __future__ import annotations

import json

import pytest
from conftest import FUND_ARTICLE, manifest_of

from rag.api.chat import ChunkStream
from rag.errors import IndexStoreError
from rag.evaluation.metrics import all_parts_found
from rag.index.ingest import ingest
from rag.index.lexical import LEXICAL_SCHEME, _jieba, tokenize
from rag.index.locations import milvus_target, open_store
from rag.index.milvus_store import _write_meta, client_for
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.qa.citations import check_answer
from rag.qa.pipeline import Event, QAPipeline, needs_rewrite
from rag.qa.prompts import REFUSAL
from rag.qa.retriever import Retriever
from rag.text_script import detect_script, in_script, to_simplified, to_traditional

# Written by hand in Taiwan-standard Traditional characters (not produced by the converter under test).
TRAFFIC_ARTICLE = """臺北市推動智慧號誌

臺北市政府交通局宣布，將在2025年底前完成三百個路口的號誌更新，總經費約為12億元。
新系統會根據車流自動調整燈號，預計尖峰時段的平均等候時間縮短兩成。
"""
TRAD_QUESTION_ON_SIMPLIFIED = "河南設立的人工智能產業基金規模是多少？"
SIMPLIFIED_QUESTION_ON_TRAD = "台北市号志更新的总经费是多少？"
# Queries whose every word is written differently in the two scripts: only normalisation matches them.
SIMPLIFIED_WORDS = "台北号志总经费"
TRADITIONAL_WORDS = "設立總規模"


@pytest.fixture()
def mixed_corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "henan.txt").write_text(FUND_ARTICLE, encoding="utf-8")
    (folder / "taipei.txt").write_text(TRAFFIC_ARTICLE, encoding="utf-8")
    return folder


# --------------------------------------------------------------------------- detection and conversion


def test_script_is_detected_by_the_characters_only_one_script_has():
    assert detect_script(TRAFFIC_ARTICLE) == "traditional"
    assert detect_script(TRAD_QUESTION_ON_SIMPLIFIED) == "traditional"
    assert detect_script(FUND_ARTICLE) == "simplified"
    assert detect_script(SIMPLIFIED_QUESTION_ON_TRAD) == "simplified"
    assert detect_script("2025年GDP增长了多少") == "simplified"  # only shared characters
    assert detect_script("") == "simplified"


def test_conversion_keeps_markers_digits_and_latin():
    assert to_traditional("河南设立了总规模30亿元的基金[1]，其中[2?]来自AI。") == "河南設立了總規模30億元的基金[1]，其中[2?]來自AI。"
    assert to_simplified("總經費約為12億元[1]。") == "总经费约为12亿元[1]。"
    assert in_script("这里", "traditional") == "這裡"  # Taiwan standard forms (s2tw), not OpenCC's 這裏
    assert in_script(REFUSAL, "simplified") == REFUSAL


def test_tokens_of_both_scripts_are_the_same():
    assert tokenize(TRAFFIC_ARTICLE) == tokenize(to_simplified(TRAFFIC_ARTICLE))
    assert tokenize(TRAD_QUESTION_ON_SIMPLIFIED) == tokenize("河南设立的人工智能产业基金规模是多少？")
    assert "台北市" in tokenize("臺北市")


# --------------------------------------------------------------------------- both stores


@pytest.fixture(params=["faiss", "milvus-lite"])
def mixed_index(request, tmp_path, mixed_corpus) -> str:
    location = str(tmp_path / "index") if request.param == "faiss" else f"milvus-lite://{tmp_path}/kb.db"
    ingest([mixed_corpus], location, HashingEmbedder())
    return location


def test_the_cross_script_queries_share_no_word_with_their_article_without_normalisation():
    words = _jieba().lcut_for_search
    assert not set(words(SIMPLIFIED_WORDS)) & set(words(TRAFFIC_ARTICLE))
    assert not set(words(TRADITIONAL_WORDS)) & set(words(FUND_ARTICLE))


def test_bm25_finds_articles_across_scripts_and_shows_them_in_their_own(mixed_index):
    store = open_store(mixed_index)
    taipei = store.search_lexical(SIMPLIFIED_WORDS, 2)
    assert taipei and taipei[0].chunk.doc_id.endswith("taipei")
    assert "臺北市政府交通局" in taipei[0].chunk.text  # stored and displayed in its own script
    henan = store.search_lexical(TRADITIONAL_WORDS, 2)
    assert henan and henan[0].chunk.doc_id.endswith("henan")
    assert "设立总规模30亿元" in henan[0].chunk.text
    assert store.manifest.lexical == LEXICAL_SCHEME


def test_a_faiss_index_from_before_normalisation_is_retokenized_and_saved_by_the_next_ingest(tmp_path, mixed_corpus):
    index = tmp_path / "index"
    ingest([mixed_corpus / "taipei.txt"], index, HashingEmbedder())
    manifest = manifest_of(index)
    del manifest["lexical"]
    (index / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    segment = index / manifest["segments"][0]["name"] / "chunks.jsonl"
    rows = [json.loads(line) for line in segment.read_text(encoding="utf-8").splitlines()]
    old_tokens = [[t for t in row["tokens"] if t != "台北市"] + ["臺北市"] for row in rows]  # as jieba alone made them
    segment.write_text("".join(json.dumps({**r, "tokens": t}, ensure_ascii=False) + "\n" for r, t in zip(rows, old_tokens)), encoding="utf-8")

    assert open_store(index).search_lexical("台北市", 1)  # re-tokenized in memory
    report = ingest([mixed_corpus / "taipei.txt"], index, HashingEmbedder())  # nothing changed, but the writer upgrades it
    assert report.files_unchanged and report.chunks_embedded == 0
    upgraded = manifest_of(index)
    assert upgraded["lexical"] == LEXICAL_SCHEME
    stored = [json.loads(line)["tokens"] for s in upgraded["segments"] for line in (index / s["name"] / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any("台北市" in tokens for tokens in stored) and not any("臺北市" in tokens for tokens in stored)


def test_a_milvus_index_from_before_normalisation_is_refused_until_rebuilt(tmp_path, mixed_corpus):
    uri = f"milvus-lite://{tmp_path}/kb.db"
    ingest([mixed_corpus], uri, HashingEmbedder())
    target = milvus_target(uri)
    raw = dict(open_store(uri)._raw)  # type: ignore[attr-defined]
    del raw["lexical"]
    _write_meta(client_for(target.uri, target.token), target, raw)
    with pytest.raises(IndexStoreError, match="rebuild"):
        open_store(uri)
    ingest([mixed_corpus], uri, HashingEmbedder(), rebuild=True)
    assert open_store(uri).search_lexical(SIMPLIFIED_WORDS, 1)


# --------------------------------------------------------------------------- citations and answers


def test_citation_check_compares_an_answer_and_a_passage_in_different_scripts(mixed_corpus, tmp_path):
    ingest([mixed_corpus], tmp_path / "index", HashingEmbedder())
    chunks = open_store(tmp_path / "index").chunks  # type: ignore[attr-defined]
    taipei = next(c for c in chunks if c.doc_id.endswith("taipei"))
    henan = next(c for c in chunks if c.doc_id.endswith("henan"))
    simplified_answer = check_answer("台北市号志更新的总经费约为12亿元[1]。", [taipei])
    assert [c.verified for c in simplified_answer.citations] == [True] and "12億元" in simplified_answer.citations[0].quote
    traditional_answer = check_answer("河南設立了總規模30億元的人工智能產業基金[1]。", [henan])
    assert [c.verified for c in traditional_answer.citations] == [True]
    assert check_answer("臺北市總經費約為50億元[1]。", [taipei]).refused  # a wrong figure is still caught


def pipeline_for(index, reply: str) -> QAPipeline:
    return QAPipeline(Retriever(index, HashingEmbedder()), ScriptedGenerator([reply]), top_k=1)


def test_a_traditional_question_gets_a_traditional_answer_from_a_simplified_article(tmp_path, mixed_corpus):
    ingest([mixed_corpus], tmp_path / "index", HashingEmbedder())
    pipeline = pipeline_for(tmp_path / "index", "河南设立了总规模30亿元的人工智能产业基金[1]。")
    events = list(pipeline.stream(TRAD_QUESTION_ON_SIMPLIFIED))
    answer = events[-1].answer
    assert answer.answer == "河南設立了總規模30億元的人工智能產業基金[1]。"
    assert "".join(e.text for e in events if e.kind == "token") == answer.answer  # streamed in Traditional too
    assert "".join(e.text for e in events if e.kind == "text") == answer.answer  # and verified in Traditional
    assert [c.verified for c in answer.citations] == [True] and "设立总规模30亿元" in answer.citations[0].quote
    assert answer.draft == "河南设立了总规模30亿元的人工智能产业基金[1]。"


def test_a_simplified_question_gets_a_simplified_answer_from_a_traditional_article(tmp_path, mixed_corpus):
    ingest([mixed_corpus], tmp_path / "index", HashingEmbedder())
    pipeline = pipeline_for(tmp_path / "index", "臺北市號誌更新的總經費約為12億元[1]。")  # a model that copies the passage
    answer = pipeline.ask(SIMPLIFIED_QUESTION_ON_TRAD)
    assert answer.answer == "台北市号志更新的总经费约为12亿元[1]。"
    assert [c.verified for c in answer.citations] == [True] and "臺北市" in answer.citations[0].quote


def test_the_model_reads_traditional_passages_and_questions_in_simplified(tmp_path, mixed_corpus):
    ingest([mixed_corpus], tmp_path / "index", HashingEmbedder())
    pipeline = pipeline_for(tmp_path / "index", "台北市号志更新的总经费约为12亿元[1]。")
    answer = pipeline.ask("臺北市號誌更新的總經費是多少？")
    prompt = "".join(m["content"] for m in pipeline.generator.calls[0])  # type: ignore[attr-defined]
    assert "台北市号志更新的总经费是多少" in prompt and "台北市政府交通局宣布" in prompt
    assert detect_script(prompt) == "simplified" and "臺北" not in prompt
    assert answer.answer == "臺北市號誌更新的總經費約為12億元[1]。"  # back in the question's script
    citation = answer.citations[0]
    stored = answer.passages[0].chunk.text
    assert citation.verified and stored[citation.start : citation.end] == citation.quote and "12億元" in citation.quote


def test_a_traditional_question_is_refused_in_traditional(tmp_path, mixed_corpus):
    ingest([mixed_corpus], tmp_path / "index", HashingEmbedder())
    answer = pipeline_for(tmp_path / "index", REFUSAL).ask("高雄市的捷運票價是多少？")
    assert answer.refused and answer.answer == to_traditional(REFUSAL) == "根據現有資料，無法回答這個問題。"


def test_gold_answers_match_answers_in_the_other_script():
    assert all_parts_found("總經費約為12億元", [["12亿元"]])
    assert all_parts_found("总经费约为12亿元", [["12億元"]])


def test_the_api_holds_back_a_refusal_streamed_in_traditional():
    stream = ChunkStream(include_usage=False, raw=True)
    assert stream.on_event(Event("token", text="根據現有資料，")) == []  # could still be the refusal: held
    assert stream.on_event(Event("retry")) == []  # the retry replaces it before any client saw it


def test_a_traditional_follow_up_is_recognised():
    history = [{"role": "user", "content": "河南設立的人工智能產業基金規模是多少？"}, {"role": "assistant", "content": "30億元[1]。"}]
    assert needs_rewrite("這個基金主要投向哪些領域和哪些具體的產業方向？", history)
