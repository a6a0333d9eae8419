"""Passages cut to the sentences that match the question (rag.qa.focus), and what the model reads."""

from __future__ import annotations

from rag.config import Settings
from rag.index.chunking import Chunk
from rag.index.ingest import ingest
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.qa.focus import GAP, focus_passage
from rag.qa.pipeline import QAPipeline, shown_passages
from rag.qa.retriever import Retriever

PASSAGE = (
    "广茂铁路是中国广东省的一条铁路。"
    "线路经佛山、三水、肇庆、云浮、阳江至茂名市茂名站。"
    "全线于1991年建成通车，由三茂铁路股份有限公司管理运营。"
    "沿线设有多个车站，承担客货运输任务。"
    "2004年起原广三铁路并入，线路全长364.6公里。"
)


def test_a_passage_within_its_budget_is_shown_whole():
    assert focus_passage(PASSAGE, "广茂铁路全长多少公里？", len(PASSAGE)) == PASSAGE


def test_a_long_passage_keeps_the_sentences_that_match_the_question_in_order():
    shown = focus_passage(PASSAGE, "广茂铁路由哪家公司管理运营？", 60)
    assert "三茂铁路股份有限公司管理运营" in shown
    assert "沿线设有多个车站" not in shown and "全长364.6公里" not in shown
    assert len(shown.replace(GAP, "")) <= 60
    assert shown.index("广茂铁路是") < shown.index("三茂铁路股份")  # passage order, not score order


def test_left_out_text_is_marked_once_per_gap():
    shown = focus_passage(PASSAGE, "广茂铁路全长多少公里？", 60)
    assert shown.endswith("全长364.6公里。")
    assert GAP + GAP not in shown and GAP in shown


def test_the_best_sentence_is_kept_even_when_it_alone_exceeds_the_budget():
    shown = focus_passage(PASSAGE, "哪家公司管理运营？", 10)
    assert shown.strip(GAP) == "全线于1991年建成通车，由三茂铁路股份有限公司管理运营。"


def test_a_passage_sharing_no_word_with_the_question_keeps_its_beginning():
    shown = focus_passage(PASSAGE, "今天天气怎么样？", 20)
    assert shown == PASSAGE[:20] + GAP


def test_the_budget_is_shared_so_one_passage_alone_is_shown_whole():
    chunk = Chunk(chunk_id="c1", doc_id="d1", title="广茂铁路", text=PASSAGE, source="rail.txt", position=0)
    (alone,) = shown_passages("广茂铁路全长多少公里？", [chunk], budget=len(PASSAGE))
    assert alone.text == PASSAGE
    three = shown_passages("广茂铁路全长多少公里？", [chunk] * 3, budget=len(PASSAGE))
    assert all(len(c.text.replace(GAP, "")) < len(PASSAGE) and "364.6公里" in c.text for c in three)
    assert len(three[0].text) > len(three[1].text) == len(three[2].text)  # the best-ranked gets half


def test_the_best_ranked_passage_gets_half_the_budget():
    chunk = Chunk(chunk_id="c1", doc_id="d1", title="广茂铁路", text=PASSAGE, source="rail.txt", position=0)
    first, second, third = shown_passages("广茂铁路由哪家公司管理运营？", [chunk] * 3, budget=2 * (len(PASSAGE) - 1))
    assert len(first.text.replace(GAP, "")) > len(PASSAGE) - 30  # nearly whole: one short sentence left out
    assert len(second.text.replace(GAP, "")) <= len(PASSAGE) // 2 and second.text == third.text


def test_traditional_passages_are_shown_in_simplified_and_cut():
    chunk = Chunk(
        chunk_id="c1",
        doc_id="d1",
        title="廣茂鐵路",
        text="廣茂鐵路由三茂鐵路股份有限公司管理運營。沿線設有多個車站。",
        source="r.txt",
        position=0,
    )
    (shown,) = shown_passages("广茂铁路由哪家公司管理运营？", [chunk], budget=25)
    assert shown.title == "广茂铁路" and shown.text == "广茂铁路由三茂铁路股份有限公司管理运营。"


def test_a_budget_of_zero_shows_passages_whole():
    chunk = Chunk(chunk_id="c1", doc_id="d1", title="广茂铁路", text=PASSAGE, source="rail.txt", position=0)
    assert [c.text for c in shown_passages("广茂铁路全长多少公里？", [chunk] * 3, budget=0)] == [PASSAGE] * 3


def test_the_pipeline_prompt_holds_the_cut_passages_and_the_setting_reaches_it(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "rail.txt").write_text("广茂铁路\n\n" + PASSAGE, encoding="utf-8")
    ingest([corpus], tmp_path / "index", HashingEmbedder())
    question = "广茂铁路由哪家公司管理运营？"
    prompts = {}
    for chars in ("60", "0"):
        monkeypatch.setenv("RAG_PASSAGE_CHARS", chars)
        generator = ScriptedGenerator("广茂铁路由三茂铁路股份有限公司管理运营[1]。")
        shown_chars = Settings().passage_chars
        QAPipeline(Retriever(tmp_path / "index", HashingEmbedder()), generator, shown_chars=shown_chars).ask(question)
        prompts[chars] = generator.calls[0][-1]["content"]
    assert "三茂铁路股份有限公司管理运营" in prompts["60"] and "沿线设有多个车站" not in prompts["60"]
    assert "沿线设有多个车站" in prompts["0"]
