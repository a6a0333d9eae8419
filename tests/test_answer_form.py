"""The answer-form repairs and flaws, with made-up Chinese answers and passages."""

from __future__ import annotations

import pytest

from rag.index.chunking import Chunk
from rag.qa.answer_form import form_flaw, merge_repeated_spans, repair, restore_context

PASSAGES = [
    "星河县图书馆新馆建筑面积近5.6万平方米，藏书约120万册，于2019年4月23日开馆。",
    "开馆当天共接待读者3412人次，其中少儿读者超过800人。",
]


def chunks(*texts: str) -> list[Chunk]:
    return [Chunk(chunk_id=f"c{n}", doc_id=f"d{n}", title="", text=text, source="x.txt", position=n) for n, text in enumerate(texts)]


@pytest.mark.parametrize(
    ("answer", "repaired"),
    [
        ("3412[2]", "3412人次[2]"),  # bare number: the unit every occurrence carries
        ("接待读者3412人次[2]。", "接待读者3412人次[2]。"),  # already whole: untouched
        ("建筑面积5.6万平方米[1]。", "建筑面积近5.6万平方米[1]。"),  # the qualifier in front comes back
        ("少儿读者800人[2]", "少儿读者超过800人[2]"),
        ("藏书120万册[1]", "藏书约120万册[1]"),
        ("4月23日开馆[1]", "2019年4月23日开馆[1]"),  # a date gets its year back
        ("2019年4月23日开馆[1]", "2019年4月23日开馆[1]"),
    ],
)
def test_units_qualifiers_and_years_are_restored_from_the_passages(answer, repaired):
    assert restore_context(answer, PASSAGES) == repaired


def test_nothing_is_restored_when_the_passages_disagree_or_lack_the_number():
    passages = ["甲厂有工人50名。", "乙厂占地50亩。"]
    assert restore_context("50[1]", passages) == "50[1]"  # 名 or 亩: unsafe to choose
    assert restore_context("70[1]", passages) == "70[1]"  # not in the passages
    assert restore_context("型号X50[1]", ["型号X50的工人50名。"]) == "型号X50[1]"  # part of a model name


def test_a_span_repeated_once_per_passage_becomes_one_span_with_all_markers():
    assert merge_repeated_spans("[1]星河县城关镇[2]星河县城关镇[3]星河县城关镇") == "星河县城关镇[1][2][3]"
    assert merge_repeated_spans("新馆位于城关镇[1]。新馆位于城关镇[2]。") == "新馆位于城关镇[1][2]。"
    assert merge_repeated_spans("新馆位于城关镇[1]，藏书约120万册[2]。") == "新馆位于城关镇[1]，藏书约120万册[2]。"


def test_empty_placeholders_are_dropped_and_markers_kept():
    assert repair("约120万册[编号][1]", chunks(*PASSAGES)) == "约120万册[1]"
    assert repair("3412【出处】[2]", chunks(*PASSAGES)) == "3412人次[2]"


def test_a_copied_metadata_timestamp_is_a_flaw_unless_the_question_asks_about_it():
    assert form_flaw("2019-04-23 09:30:00[1]", "新馆什么时候开馆？")
    assert form_flaw("开馆于2019年4月23日[1]。", "新馆什么时候开馆？") is None
    assert form_flaw("2019-04-23 09:30[1]", "2019-04-23 09:30发布的消息说了什么？") is None
