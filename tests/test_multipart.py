"""Questions in several parts through the real pipeline (real FAISS index, fake models): each part
retrieved and answered on its own, markers renumbered into one passage list, a missing part said
in one clause, and the streamed text always a prefix of the final answer."""

from __future__ import annotations

import pytest
from conftest import index_of

from rag.index.ingest import ingest
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.qa.multipart import TokenRenumberer, not_found, renumber, tidy_ending, union_passages
from rag.qa.pipeline import QAPipeline
from rag.qa.prompts import REFUSAL
from rag.qa.retriever import Retriever

HENAN = "河南省支持人工智能产业发展\n\n8月9日，河南省人民政府发布政策措施，设立总规模30亿元的人工智能产业基金。\n"
ANHUI = "安徽省打造通用人工智能产业高地\n\n安徽省加快运营总规模不低于200亿元的省人工智能产业主题基金。\n"
QUESTION = "河南和安徽的人工智能产业基金规模分别是多少？"


@pytest.fixture()
def index_dir(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "henan.txt").write_text(HENAN, encoding="utf-8")
    (corpus / "anhui.txt").write_text(ANHUI, encoding="utf-8")
    ingest([corpus], tmp_path / "index", HashingEmbedder())
    return tmp_path / "index"


def asked(messages) -> str:
    """The question in the user message the pipeline built."""
    return messages[-1]["content"].split("问题：")[1].split("\n")[0]


def by_region(henan: str, anhui: str):
    def reply(messages) -> str:
        question = asked(messages)
        return henan if "河南" in question else anhui

    return reply


def run(index_dir, replies):
    generator = ScriptedGenerator(replies)
    pipeline = QAPipeline(Retriever(index_dir, HashingEmbedder()), generator, top_k=1)
    events = list(pipeline.stream(QUESTION))
    return events, events[-1].answer, generator


def cited_text(answer, n: int) -> str:
    return answer.passages[n - 1].chunk.text


def test_each_part_is_asked_on_its_own_and_cited_in_one_passage_list(index_dir):
    events, answer, generator = run(index_dir, by_region("河南基金规模为30亿元[1]。", "安徽基金规模不低于200亿元[1]。"))
    assert [asked(call) for call in generator.calls] == ["河南的人工智能产业基金规模是多少？", "安徽的人工智能产业基金规模是多少？"]
    assert not answer.refused
    assert answer.answer == "河南基金规模为30亿元[1]。\n安徽基金规模不低于200亿元[2]。"
    assert "30亿元" in cited_text(answer, 1) and "200亿元" in cited_text(answer, 2)
    assert [(c.n, c.verified) for c in answer.citations] == [(1, True), (2, True)]
    assert [hit.parts for hit in answer.passages] == [("河南的人工智能产业基金规模是多少？",), ("安徽的人工智能产业基金规模是多少？",)]
    payload = answer.to_dict()
    assert [part["passages"] for part in payload["parts"]] == [[1], [2]]
    assert payload["passages"][1]["parts"] == ["安徽的人工智能产业基金规模是多少？"]
    assert "".join(e.text for e in events if e.kind == "text") == answer.answer
    assert events[0].kind == "passages" and events[0].passages == answer.passages


def test_a_part_the_passages_do_not_support_is_one_clause_and_the_rest_stands(index_dir):
    events, answer, _ = run(index_dir, by_region("资料中没有提到。", "安徽基金规模不低于200亿元[1]。"))
    assert not answer.refused
    assert answer.answer == f"{not_found('河南')}\n安徽基金规模不低于200亿元[2]。"
    assert [part.refused for part in answer.parts] == [True, False]
    assert "".join(e.text for e in events if e.kind == "text") == answer.answer


def test_a_missing_last_part_is_sent_too(index_dir):
    events, answer, _ = run(index_dir, by_region("河南基金规模为30亿元[1]。", "安徽基金规模为500亿元[1]。"))  # 500 is invented
    assert answer.answer == f"河南基金规模为30亿元[1]。\n{not_found('安徽')}"
    assert "".join(e.text for e in events if e.kind == "text") == answer.answer


def test_no_part_answered_is_the_refusal(index_dir):
    events, answer, _ = run(index_dir, "资料中没有提到。")
    assert answer.refused and answer.answer == REFUSAL and answer.citations == []
    assert "".join(e.text for e in events if e.kind == "text") == REFUSAL


def test_raw_tokens_are_renumbered_into_the_passage_list(index_dir):
    events, answer, _ = run(index_dir, by_region("河南30亿元[1]。", "安徽200亿元[1]。"))
    raw = "".join(e.text for e in events if e.kind == "token")
    assert "河南30亿元[1]。" in raw and "安徽200亿元[2]。" in raw


def test_a_marker_split_between_tokens_is_held_until_it_closes():
    renumberer = TokenRenumberer([4, 7])
    sent = [renumberer.feed(piece) for piece in ["甲[", "2", "]乙【1", "】"]] + [renumberer.flush()]
    assert "".join(sent) == "甲[7]乙【4】" and sent[0] == "甲"


def test_renumber_maps_every_number_of_a_marker():
    assert renumber("甲[1,2]乙[2?]丙[3]", [5, 6]) == "甲[5,6]乙[6?]丙[3]"


def test_a_passage_found_by_two_parts_is_listed_once_and_names_both(index_dir):
    hits = Retriever(index_dir, HashingEmbedder()).search("人工智能产业基金", k=2)
    union, numbers = union_passages([hits, hits[:1]], ["甲？", "乙？"])
    assert len(union) == 2 and numbers == [[1, 2], [1]]
    assert union[0].parts == ("甲？", "乙？") and union[1].parts == ("甲？",)


@pytest.mark.parametrize(
    ("text", "tidy"),
    [("南京8316.92亿元，[4]", "南京8316.92亿元[4]。"), ("河北20778.9亿元。[1]", "河北20778.9亿元[1]。"), ("甲[1][2?]", "甲[1][2?]。"), ("乙。", "乙。")],
)
def test_a_parts_last_sentence_is_closed_like_the_others(text, tidy):
    assert tidy_ending(text) == tidy


def test_several_asks_about_one_subject_are_answered_in_one_generation_listing_them(index_dir):
    generator = ScriptedGenerator("河南基金规模为30亿元[1]，政策8月9日发布[1]。")
    pipeline = QAPipeline(Retriever(index_dir, HashingEmbedder()), generator, top_k=1)
    answer = pipeline.ask("河南设立的人工智能产业基金规模是多少？河南的政策是哪天发布的？")
    [call] = generator.calls
    assert "请逐一回答：河南设立的人工智能产业基金规模是多少？；河南的政策是哪天发布的？" in asked(call)
    assert not answer.refused and "30亿元" in answer.answer and "8月9日" in answer.answer
    assert answer.parts == [] and all(hit.parts for hit in answer.passages)


TWO_ASKS = "河南设立的人工智能产业基金规模是多少？河南的政策是哪天发布的？"


def by_ask(joint: str, alone: dict[str, str]):
    """The joint answer for the listed asks, else the reply whose key the sub-question holds."""

    def reply(messages) -> str:
        question = asked(messages)
        if "请逐一回答" in question:
            return joint
        return next(text for key, text in alone.items() if key in question)

    return reply


def test_an_ask_the_joint_answer_leaves_out_is_answered_on_its_own_and_appended(index_dir):
    generator = ScriptedGenerator(by_ask("河南基金规模为30亿元[1]。", {"发布": "河南的政策是8月9日发布的[1]。"}))
    pipeline = QAPipeline(Retriever(index_dir, HashingEmbedder()), generator, top_k=1)
    events = list(pipeline.stream(TWO_ASKS))
    answer = events[-1].answer
    assert [asked(call) for call in generator.calls][1] == "河南的政策是哪天发布的？"
    assert answer.answer == "河南基金规模为30亿元[1]。\n河南的政策是8月9日发布的[1]。"
    assert [(c.n, c.verified) for c in answer.citations] == [(1, True)]
    assert "".join(e.text for e in events if e.kind == "text") == answer.answer


def test_an_ask_the_passages_do_not_support_becomes_its_not_found_clause(index_dir):
    generator = ScriptedGenerator(by_ask("河南基金规模为30亿元[1]。", {"发布": "资料中没有提到。"}))
    answer = QAPipeline(Retriever(index_dir, HashingEmbedder()), generator, top_k=1).ask(TWO_ASKS)
    assert answer.answer == f"河南基金规模为30亿元[1]。\n{not_found('河南的政策是哪天发布的')}"


def test_an_appended_answer_that_does_not_name_its_ask_is_led_by_it(index_dir):
    generator = ScriptedGenerator(by_ask("河南基金规模为30亿元[1]。", {"发布": "8月9日[1]。"}))
    events = list(QAPipeline(Retriever(index_dir, HashingEmbedder()), generator, top_k=1).stream(TWO_ASKS))
    assert events[-1].answer.answer == "河南基金规模为30亿元[1]。\n河南的政策是哪天发布的：8月9日[1]。"
    assert "".join(e.text for e in events if e.kind == "text") == events[-1].answer.answer


def test_an_appended_answer_that_says_nothing_new_is_dropped(index_dir):
    # the joint answer holds the date without the ask's own words (政策, 发布), so the ask looks
    # left out; answered alone it repeats what the answer says
    joint = "河南基金规模为30亿元，8月9日设立[1]。"
    generator = ScriptedGenerator(by_ask(joint, {"发布": "河南的政策是8月9日发布的[1]。"}))
    events = list(QAPipeline(Retriever(index_dir, HashingEmbedder()), generator, top_k=1).stream(TWO_ASKS))
    assert len(generator.calls) == 2
    assert events[-1].answer.answer == joint
    assert "".join(e.text for e in events if e.kind == "text") == joint


def test_a_joint_answer_that_covers_every_ask_costs_no_second_generation(index_dir):
    generator = ScriptedGenerator("河南基金规模为30亿元[1]，政策8月9日发布[1]。")
    QAPipeline(Retriever(index_dir, HashingEmbedder()), generator, top_k=1).ask(TWO_ASKS)
    assert len(generator.calls) == 1


def test_a_declined_figure_ask_adds_no_not_found_clause_when_the_answer_holds_every_figure(index_dir):
    # two figures asked, two given, one of them without its ask's words: a "not found" would contradict it
    question = "河南设立的人工智能产业基金规模是多少？安徽的基金总规模不低于多少？"
    joint = "河南基金规模为30亿元[1]；200亿元[2]。"
    generator = ScriptedGenerator(by_ask(joint, {"安徽": "资料中没有提到。"}))
    answer = QAPipeline(Retriever(index_dir, HashingEmbedder()), generator, top_k=1).ask(question)
    assert len(generator.calls) >= 2 and answer.answer == joint


def test_a_sentence_of_the_joint_answer_that_answers_no_ask_is_left_out_before_the_check(tmp_path):
    railways = {
        "longyan.txt": "龙烟铁路\n\n龙烟铁路全长123公里，西起龙口西站。龙烟铁路全线设13个车站。\n",
        "hemao.txt": "河茂铁路\n\n河茂铁路全长61公里，共设7座车站。\n",
    }
    index = index_of(railways, tmp_path / "railways")
    question = "龙烟铁路全线设多少个车站？河茂铁路共设几座车站？"

    def reply(messages) -> str:
        if "请逐一回答" not in asked(messages):
            return "河茂铁路共设7座车站[1]。"
        shown = messages[-1]["content"]
        n = 1 if shown.find("龙烟铁路全长") < shown.find("河茂铁路全长") else 2  # the two railways' passages, in some order
        return f"龙烟铁路全线设13个车站[{n}]。龙烟铁路全长123公里[{n}]。"  # a supported fact nobody asked for

    generator = ScriptedGenerator(reply)
    events = list(QAPipeline(Retriever(index, HashingEmbedder()), generator, top_k=1).stream(question))
    answer = events[-1].answer
    assert "13个车站" in answer.answer and "全长" not in answer.answer
    assert all(c.verified for c in answer.citations)  # the left-out sentence leaves no citation behind
    assert "".join(e.text for e in events if e.kind == "text") == answer.answer
