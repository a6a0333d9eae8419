"""Verified streaming with the scripted model: what the pipeline releases, the API streams (official
``openai`` client against the real server), the web chat shows and ``rag ask`` prints is always a
prefix of the final checked answer, and the whole of it once done."""

from __future__ import annotations

import re

import pytest
from test_api import HENAN, Server, components_for
from test_web import is_skip, make_app

from rag.api.chat import FOOTNOTE_RULE
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.qa.citations import settled_end
from rag.qa.pipeline import Event, QAPipeline
from rag.qa.prompts import REFUSAL
from rag.qa.retriever import Retriever

GOOD = "河南设立了总规模30亿元的人工智能产业基金[1]。"
ANHUI = "安徽省加快运营总规模不低于200亿元的省人工智能产业基金[2]。"
OUR_MARKERS = re.compile(r"[\[【]\s*(?:编号|资料|来源|出处|段落|参考)|【\s*\d")  # [编号3], [编号], 【资料2】, 【2】

# (the model's replies, in order; the last one repeats)
DRAFTS = {
    "two supported sentences": [GOOD + ANHUI],
    "unsupported, then supported": ["浙江省设立了50亿元的人工智能产业基金[2]。" + GOOD],
    "unsupported only (the issue's example)": ["浙江省设立的人工智能产业基金总规模是30亿元[3]"],
    "refusal retried": [REFUSAL, GOOD],
    "hedged refusal retried": ["资料中没有提到河南的基金。", GOOD],
    "our marker forms": ["河南设立了总规模30亿元的人工智能产业基金[编号1]。安徽省基金总规模不低于200亿元【资料2】。8月9日[编号]发布。"],
    "placeholder markers, unsupported": ["8月21日[编号3]", "2021年3月[1] 2023年3月[编号]"],
    "marker after the full stop": ["河南设立了总规模30亿元的人工智能产业基金。[1]安徽省基金不低于200亿元。 [2]"],
    "a timestamp after a kept sentence": [GOOD + "发布时间2025-08-09 15:21[1]。"],
    "short enough to read as a refusal once done": ["河南设立30亿元基金[1]。资料没有提到其他。"],
    "a span repeated per passage": ["河南省设立的基金规模为30[1]。河南省设立的基金规模为30[2]。"],
    "lines without full stops": ["河南：30亿元[1]\n安徽：不低于200亿元[2]"],
}



def events_for(index, replies, question: str = HENAN) -> list[Event]:
    pipeline = QAPipeline(Retriever(index, HashingEmbedder()), ScriptedGenerator(replies), top_k=3)
    return list(pipeline.stream(question))


def assert_prefixes(pieces: list[str], final: str) -> None:
    """Every assembled text is a prefix of ``final`` and all of them together are ``final``."""
    shown = ""
    for piece in pieces:
        shown += piece
        assert final.startswith(shown), (shown, final)
    assert shown == final


# --------------------------------------------------------------------------- settled sentences


@pytest.mark.parametrize(
    ("text", "settled"),
    [
        ("甲[1]。", ""),  # the end of the draft may not be the end of the answer
        ("甲[1]。乙", "甲[1]。"),
        ("甲。[1]乙", "甲。[1]"),  # a marker after the full stop belongs to the sentence
        ("甲。[", ""),  # ... so a bracket after it waits for the marker
        ("甲。 [编号", ""),
        ("甲。[注]乙", "甲。"),  # a closed bracket that is no marker does not join it
        ("甲[1]\n", ""),
        ("甲[1]\n乙", "甲[1]"),  # a line end ends a sentence
        ("甲；乙！丙", "甲；乙！"),
    ],
)
def test_a_sentence_is_settled_once_something_follows_that_cannot_join_it(text, settled):
    assert text[: settled_end(text)] == settled


# --------------------------------------------------------------------------- pipeline


@pytest.mark.parametrize("replies", DRAFTS.values(), ids=DRAFTS.keys())
def test_released_text_is_always_a_prefix_of_the_final_answer(two_article_index, replies):
    events = events_for(two_article_index, replies)
    answer = events[-1].answer
    pieces = [e.text for e in events if e.kind == "text"]
    assert_prefixes(pieces, answer.answer)
    assert not OUR_MARKERS.search(answer.answer), answer.answer
    if "retry" in [e.kind for e in events]:  # nothing of the withdrawn attempt was released
        retry_at = [e.kind for e in events].index("retry")
        assert all(e.kind != "text" for e in events[:retry_at])


def test_a_traditional_question_gets_its_verified_text_in_traditional(two_article_index):
    events = events_for(two_article_index, [GOOD + ANHUI], question="河南和安徽設立的人工智慧產業基金規模分別是多少？")
    pieces = [e.text for e in events if e.kind == "text"]
    assert_prefixes(pieces, events[-1].answer.answer)
    assert "設立" in pieces[0] and len(pieces) == 2


def test_sentences_are_released_while_the_model_writes(two_article_index):
    events = events_for(two_article_index, [GOOD + ANHUI])
    kinds = [e.kind for e in events]
    first_text = kinds.index("text")
    assert events[first_text].text == GOOD  # whole and checked, as soon as the next sentence starts
    assert "token" in kinds[first_text:]  # the model was still writing the second sentence
    assert events[-1].answer.timings["first_text_ms"] <= events[-1].answer.timings["total_ms"]


def test_an_unsupported_sentence_is_never_released_and_the_verified_one_is(two_article_index):
    events = events_for(two_article_index, DRAFTS["unsupported, then supported"])
    [piece] = [e.text for e in events if e.kind == "text"]
    assert piece == events[-1].answer.answer == GOOD  # the unsupported sentence is dropped


def test_the_answer_stops_at_the_released_text_when_the_whole_draft_would_be_withheld(two_article_index):
    for replies in (DRAFTS["a timestamp after a kept sentence"], DRAFTS["short enough to read as a refusal once done"]):
        events = events_for(two_article_index, replies)
        answer = events[-1].answer
        assert not answer.refused and answer.retry == "" and answer.draft == replies[0]  # committed: no retry
        assert [e.text for e in events if e.kind == "text"] == [answer.answer]
        assert answer.answer.endswith("[1]。") and [c.n for c in answer.citations if c.verified] == [1]


def test_a_refusal_is_released_as_the_refusal_sentence(two_article_index):
    events = events_for(two_article_index, DRAFTS["unsupported only (the issue's example)"])
    assert [e.text for e in events if e.kind == "text"] == [REFUSAL] and events[-1].answer.refused


def test_a_refusal_without_the_llm_is_released_too(two_article_index):
    events = events_for(two_article_index, "不应被调用", question="浙江省的人工智能产业基金规模是多少？")
    assert [e.text for e in events if e.kind == "text"] == [REFUSAL]


# --------------------------------------------------------------------------- API (openai client)


API_DRAFTS = {
    "unsupported, then supported": ["河南省还设立了50亿元的人工智能风险基金[2]。" + GOOD],
    "unsupported only (the issue's example)": ["浙江省设立的人工智能产业基金总规模是30亿元[3]"],
    "refusal retried": [REFUSAL, GOOD],
    "our marker forms": ["8月9日[编号1]，河南省设立了总规模30亿元的人工智能产业基金【资料1】。广西计划组建认缴总规模不低于100亿元的人工智能产业基金[编号]。"],
    "a wrong marker repointed": ["8月21日[编号3]"],
    "placeholder markers, unsupported": ["2021年3月[1] 2023年3月[编号]"],
}


def stream_chat(server: Server, **extra) -> tuple[list[str], dict]:
    """The content deltas of a streamed answer to HENAN, and the last chunk's extra fields."""
    chunks = list(
        server.client().chat.completions.create(
            model="rag-zh", messages=[{"role": "user", "content": HENAN}], stream=True, extra_body=extra or None
        )
    )
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    return deltas, final.model_extra


@pytest.mark.parametrize("replies", API_DRAFTS.values(), ids=API_DRAFTS.keys())
def test_an_openai_client_streams_only_the_checked_answer(sample_index, replies):
    with Server(components_for(sample_index, ScriptedGenerator(replies))) as running:
        deltas, final = stream_chat(running)
    with Server(components_for(sample_index, ScriptedGenerator(replies))) as running:
        whole = running.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": HENAN}])
    streamed = "".join(deltas)
    text, _, footnote = streamed.partition(FOOTNOTE_RULE)
    assert_prefixes([d for d in deltas if FOOTNOTE_RULE not in d], text)  # the footnote comes last, alone
    assert text == final["answer"] and streamed == whole.choices[0].message.content
    assert set(re.findall(r"\d+", text)) <= set(re.findall(r"\d+", final["answer"]))  # no figure the answer lacks
    assert not OUR_MARKERS.search(streamed) and "\n\n" not in text
    assert (text == REFUSAL) == final["refused"] and (not footnote) == final["refused"]


def test_raw_streaming_is_an_explicit_choice(sample_index):
    with Server(components_for(sample_index, ScriptedGenerator(API_DRAFTS["our marker forms"]))) as running:
        raw, final = stream_chat(running, rag_raw_stream=True)
        verified, _ = stream_chat(running)
    assert "[编号1]" in "".join(raw) and "[编号1]" not in final["answer"]  # the model's own text, as written
    assert "".join(verified).startswith(final["answer"])


def test_a_raw_stream_starts_over_after_a_retry(sample_index):
    generator = ScriptedGenerator(["河南的基金没有提到规模。", GOOD])
    with Server(components_for(sample_index, generator)) as running:
        raw, final = stream_chat(running, rag_raw_stream=True)
    text = "".join(raw)
    assert text.startswith("河南的基金没有提到规模。\n\n" + final["answer"]) and final["timings"]["attempts"] == 2


# --------------------------------------------------------------------------- web chat


TAGS = re.compile(r"<[^>]+>")


@pytest.mark.parametrize("replies", API_DRAFTS.values(), ids=API_DRAFTS.keys())
def test_the_web_chat_shows_only_text_of_the_final_answer(tmp_path, sample_index, replies):
    app = make_app(tmp_path, sample_index, replies)
    steps = list(app.ask(HENAN, []))
    answer = steps[-1][1][-1].answer
    shown = [TAGS.sub("", step[0][-1]["content"]) for step in steps[:-1] if not is_skip(step[0]) and step[0]]
    texts = [text.replace("▍", "") for text in shown if "正在" not in text]  # not the 正在查找资料… placeholders
    assert texts and all(answer.answer.startswith(text) for text in texts), (texts, answer.answer)
    assert texts[-1] == answer.answer
