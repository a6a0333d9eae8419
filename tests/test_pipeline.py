"""The answer pipeline with fakes: event order, refusal without the LLM, follow-up rewrite, JSON shape."""

from __future__ import annotations

import pytest

from rag.errors import InputError
from rag.index.ingest import ingest
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.qa.pipeline import QAPipeline, needs_rewrite, select_context
from rag.qa.prompts import REFUSAL, STRICT_REMINDER
from rag.qa.retriever import Retriever

ARTICLE = (
    "河南省支持人工智能产业发展\n\n"
    "8月 9日，河南省人民政府发布政策措施，设立总规模 30亿元的人工智能产业基金。\n\n"
    "安徽省加快运营总规模不低于 200亿元的省人工智能产业主题基金。\n"
)


@pytest.fixture()
def index_dir(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "fund.txt").write_text(ARTICLE, encoding="utf-8")
    ingest([corpus], tmp_path / "index", HashingEmbedder())
    return tmp_path / "index"


def make_pipeline(index_dir, replies) -> tuple[QAPipeline, ScriptedGenerator]:
    generator = ScriptedGenerator(replies)
    return QAPipeline(Retriever(index_dir, HashingEmbedder()), generator, top_k=3), generator


def test_stream_yields_passages_first_then_tokens_then_checked_answer(index_dir):
    pipeline, _ = make_pipeline(index_dir, "河南设立了总规模30亿元的人工智能产业基金[1]。")
    events = list(pipeline.stream("河南设立的人工智能产业基金规模是多少？"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "passages" and kinds[-1] == "done" and set(kinds[1:-2]) == {"token"} and kinds[-2] == "text"
    answer = events[-1].answer
    assert events[-2].text == answer.answer  # one sentence: verified and released once the model is done
    assert not answer.refused
    assert [c.n for c in answer.citations if c.verified] == [1]
    assert "30亿元" in answer.passages[0].chunk.text
    payload = answer.to_dict()
    assert set(payload) >= {"answer", "refused", "citations", "passages", "timings"}
    citation = payload["citations"][0]
    assert set(citation) == {"n", "chunk_id", "doc_id", "title", "quote", "start", "end"}
    assert payload["passages"][0]["text"][citation["start"] : citation["end"]] == citation["quote"]
    assert set(payload["timings"]) >= {"retrieve_ms", "first_token_ms", "total_ms", "prompt_tokens", "completion_tokens"}


def test_unrelated_question_is_refused_without_calling_the_llm(index_dir):
    pipeline, generator = make_pipeline(index_dir, "不应被调用")
    answer = pipeline.ask("今天天气怎么样？")
    assert answer.refused and answer.answer == REFUSAL
    assert generator.calls == []


def test_search_mode_and_top_k_travel_with_each_question(index_dir, monkeypatch):
    pipeline, _ = make_pipeline(index_dir, "河南设立了总规模30亿元的人工智能产业基金[1]。")
    searched, search = [], pipeline.retriever.search

    def spy(query, k=5, mode="hybrid", where=None):
        searched.append((k, mode))
        return search(query, k, mode, where)

    monkeypatch.setattr(pipeline.retriever, "search", spy)
    question = "河南设立的人工智能产业基金规模是多少？"
    pipeline.ask(question)
    pipeline.ask(question, top_k=1, mode="bm25")
    events = list(pipeline.stream(question, mode="dense"))
    assert searched == [(3, "hybrid"), (1, "bm25"), (3, "dense")]  # one pipeline serves every mode
    assert events[0].passages == select_context(search(question, 3, "dense"))


def test_model_refusal_is_normalised(index_dir):
    pipeline, _ = make_pipeline(index_dir, "资料中没有提到河南基金的管理人。")
    answer = pipeline.ask("河南的人工智能产业基金由谁管理？")
    assert answer.refused and answer.answer == REFUSAL and answer.citations == []
    assert answer.draft == "资料中没有提到河南基金的管理人。"  # what the model said is kept for evaluators


def test_unverifiable_answer_is_withheld_but_its_draft_kept(index_dir):
    made_up = "河南设立了总规模999亿元的人工智能产业基金[1]。"
    pipeline, _ = make_pipeline(index_dir, made_up)
    answer = pipeline.ask("河南设立的人工智能产业基金规模是多少？")
    assert answer.refused and answer.answer == REFUSAL
    assert answer.draft == made_up


def test_follow_up_is_rewritten_before_retrieval(index_dir):
    pipeline, generator = make_pipeline(index_dir, ["河南设立的人工智能产业基金规模是多少？", "30亿元[1]。"])
    history = [
        {"role": "user", "content": "安徽的人工智能产业基金规模是多少？"},
        {"role": "assistant", "content": "不低于200亿元[1]。"},
    ]
    answer = pipeline.ask("那河南呢？", history=history)
    assert answer.standalone_question == "河南设立的人工智能产业基金规模是多少？"
    assert "那河南呢？" in generator.calls[0][-1]["content"]  # the rewrite prompt saw the follow-up
    assert "河南设立的人工智能产业基金规模是多少？" in generator.calls[1][-1]["content"]


def test_standalone_question_is_not_rewritten():
    history = [{"role": "user", "content": "安徽的基金规模？"}]
    assert not needs_rewrite("广西计划组建的人工智能产业基金认缴总规模是多少？", history)
    assert needs_rewrite("那河南呢？", history)
    assert not needs_rewrite("那河南呢？", [])


def test_context_respects_the_character_budget(index_dir):
    hits = Retriever(index_dir, HashingEmbedder()).search("基金", k=5)
    assert len(select_context(hits, max_chars=1)) == 1
    assert len(select_context(hits, max_chars=100_000)) == len(hits)


def test_empty_question_is_rejected(index_dir):
    pipeline, _ = make_pipeline(index_dir, "x")
    with pytest.raises(InputError):
        pipeline.ask("   ")



def test_a_refusal_is_retried_from_the_first_passage_alone(two_article_index):
    pipeline, generator = make_pipeline(two_article_index, [REFUSAL, "河南设立了总规模30亿元的人工智能产业基金[1]。"])
    events = list(pipeline.stream("河南设立的人工智能产业基金规模是多少？"))
    kinds = [e.kind for e in events]
    assert kinds.count("retry") == 1 and "token" in kinds[: kinds.index("retry")] and "token" in kinds[kinds.index("retry") :]
    answer = events[-1].answer
    assert len(answer.passages) == 2  # both passages stay on show; [1] is the same passage in both prompts
    first, second = (call[-1]["content"] for call in generator.calls)
    assert "[2]" in first and "[2]" not in second and answer.passages[0].chunk.text.strip()[:10] in second
    assert not answer.refused and [c.n for c in answer.citations if c.verified] == [1]
    assert "30亿元" in answer.answer and answer.draft == "河南设立了总规模30亿元的人工智能产业基金[1]。"
    assert answer.timings["attempts"] == 2
    pieces = sum(-(-len(reply) // 2) for reply in (REFUSAL, answer.draft))  # the fake streams 2 characters a piece
    assert answer.timings["completion_tokens"] == pieces  # both attempts count


def test_a_second_refusal_keeps_the_first_attempt_and_records_the_second(two_article_index):
    pipeline, generator = make_pipeline(two_article_index, ["资料中没有提到河南的基金。", "河南的规模资料未提及。"])
    answer = pipeline.ask("河南的人工智能产业基金规模是多少？")
    assert len(generator.calls) == 2 and answer.refused and answer.answer == REFUSAL
    assert answer.draft == "资料中没有提到河南的基金。" and answer.retry == "refusal"
    assert answer.withheld == "河南的规模资料未提及。"


def test_a_refusal_is_not_retried_when_the_first_passage_names_nothing_asked_about(two_article_index):
    pipeline, generator = make_pipeline(two_article_index, ["资料中没有提到。", "安徽省基金规模不低于200亿元[1]。"])
    answer = pipeline.ask("河南运营的人工智能产业主题基金总规模不低于多少？")
    assert "河南" not in answer.passages[0].chunk.text and "河南" in answer.passages[1].chunk.text
    assert len(generator.calls) == 1 and answer.refused and answer.retry == ""
    assert "attempts" not in answer.timings


def test_a_retried_answer_records_the_withheld_first_draft(two_article_index):
    pipeline, _ = make_pipeline(two_article_index, ["资料中没有提到。", "河南设立了总规模30亿元的人工智能产业基金[1]。"])
    answer = pipeline.ask("河南设立的人工智能产业基金规模是多少？")
    assert not answer.refused and answer.retry == "refusal" and answer.withheld == "资料中没有提到。"


@pytest.fixture()
def stamped_index(tmp_path):
    corpus = tmp_path / "stamped"
    corpus.mkdir()
    text = "河南设立人工智能产业基金\n\n2025-08-09 15:21:57 来源：河南日报\n\n河南省设立总规模 30亿元的人工智能产业基金。\n"
    (corpus / "henan.txt").write_text(text, encoding="utf-8")
    (corpus / "anhui.txt").write_text("安徽人工智能产业主题基金\n\n安徽省运营总规模200亿元的基金。\n", encoding="utf-8")
    ingest([corpus], tmp_path / "index3", HashingEmbedder())
    return tmp_path / "index3"


def test_an_answer_copying_a_metadata_timestamp_is_retried_with_a_stricter_instruction(stamped_index):
    replies = ["2025-08-09 15:21:57[1]", "河南设立了总规模30亿元的人工智能产业基金[1]。"]
    pipeline, generator = make_pipeline(stamped_index, replies)
    events = list(pipeline.stream("河南设立的人工智能产业基金规模是多少？"))
    answer = events[-1].answer
    assert [e.kind for e in events].count("retry") == 1 and len(generator.calls) == 2
    assert STRICT_REMINDER not in generator.calls[0][-1]["content"] and STRICT_REMINDER in generator.calls[1][-1]["content"]
    assert "[2]" in generator.calls[1][-1]["content"]  # the stricter retry still sees every passage
    assert not answer.refused and "30亿元" in answer.answer
    assert answer.retry == "form" and answer.withheld == "2025-08-09 15:21:57[1]" and answer.timings["attempts"] == 2


def test_an_answer_of_the_wrong_form_twice_is_withheld(stamped_index):
    pipeline, _ = make_pipeline(stamped_index, "发布于2025-08-09 15:21[1]")
    answer = pipeline.ask("河南设立的人工智能产业基金规模是多少？")
    assert answer.refused and answer.answer == REFUSAL and answer.citations == []
    assert answer.draft == "发布于2025-08-09 15:21[1]" and answer.retry == "form"


def test_the_answer_is_repaired_before_the_check(two_article_index):
    pipeline, _ = make_pipeline(two_article_index, "[1]河南省设立的基金规模为30[2]河南省设立的基金规模为30")
    answer = pipeline.ask("河南设立的人工智能产业基金规模是多少？")
    assert answer.answer.count("河南省") == 1 and "30亿元" in answer.answer  # one span, its unit restored
    assert answer.draft == "[1]河南省设立的基金规模为30[2]河南省设立的基金规模为30"  # the model's own text is kept


def test_an_answer_is_not_retried(two_article_index):
    pipeline, generator = make_pipeline(two_article_index, "河南设立了总规模30亿元的人工智能产业基金[1]。")
    events = list(pipeline.stream("河南设立的人工智能产业基金规模是多少？"))
    assert "retry" not in [e.kind for e in events] and len(generator.calls) == 1
    assert "attempts" not in events[-1].answer.timings


def test_passages_that_name_nothing_the_question_names_are_refused_without_the_llm(two_article_index):
    pipeline, generator = make_pipeline(two_article_index, "不应被调用")
    answer = pipeline.ask("浙江省的人工智能产业基金规模是多少？")  # shares words, but no passage names 浙江
    assert answer.refused and answer.answer == REFUSAL and generator.calls == []
    assert len(answer.passages) == 2  # the passages are still shown
