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
    assert form_flaw("2019-04-23 09:30发布的消息说新馆开馆[1]", "2019-04-23 09:30发布的消息说了什么？") is None


def test_non_answers_are_flaws():
    assert form_flaw("[1]。", "新馆什么时候开馆？") == "only citation markers and punctuation"
    for answer, question in [
        ("主演是[1]，[2]，[3?]。", "电影《搜救》的主演是谁？"),  # the slot after 是 left empty
        ("C919商业首飞路线和航班号：[1]", "C919商业首飞的路线和航班号是什么？"),
        ("CBA和NBA2021-2022赛季总冠军[1]和[2]", "CBA和NBA2021-2022赛季总冠军分别是谁？"),  # an item is only a marker
        ("CBA和NBA2021-2022赛季总冠军[1]。", "CBA和NBA2021-2022赛季总冠军分别是谁？"),  # nothing the question lacks
    ]:
        assert form_flaw(answer, question), answer


def test_answers_with_content_are_no_non_answers():
    for answer, question in [
        ("根据资料，甘肃省上半年地区生产总值5539.1亿元，[1]", "甘肃省上半年地区生产总值是多少？"),
        ("增长8.4%[1][2]。", "比上年同期增长多少？"),
        ("主演是张译[1]，王一博[2]。", "电影《搜救》的主演是谁？"),
        ("上海GDP更高[1]", "北京和上海哪个GDP更高？"),  # either/or: the answer repeats one option
        ("1. 河南[1]\n2. 广西[2]", "哪些省份设立了基金？"),
    ]:
        assert form_flaw(answer, question) is None, answer


def test_an_answer_of_the_wrong_type_is_a_flaw():
    assert form_flaw("该基金规模很大[1]。", "河南的基金规模是多少？") == "the question asks for a number and the answer has none"
    assert form_flaw("影片已经上映[1]。", "《封神第一部》是哪天上映的？") == "the question asks for a date or time and the answer has none"
    assert form_flaw("中国队获得第五名[1]。", "中国男篮最终获得第几名？") is None
    assert form_flaw("影片于7月20日上映[1]。", "《封神第一部》是哪天上映的？") is None


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        ("赫姓可以追溯到金朝[1]。", "赫姓可以追溯到什么时候？"),  # an era
        ("武穴酥糖一般只在春节时期生产销售[1]。", "武穴酥糖一般只在什么时候生产销售？"),
        ("榅桲在晚春或初夏开花[1]。", "榅桲什么时候开花？"),  # a season
        ("出征陈友谅时，他当了骠骑卫指挥使[1]。", "他什么时候当了骠骑卫指挥使？"),  # a time told by an event
        ("汉沟镇、曹子里、崔黄口[1]", "津蓟铁路沿线设置了哪几个站点？"),  # 哪几个 asks for a list, not a count
        ("辅币单位是分[1]。", "几内亚法郎的辅币单位是什么？"),  # 几内亚 is a name
    ],
)
def test_times_without_digits_and_questions_that_ask_no_count_are_of_the_right_kind(answer, question):
    assert form_flaw(answer, question) is None


def test_a_question_of_several_asks_needs_the_kind_of_one_of_them():
    two_asks = "鹤哈高速的伊绥段是哪天通车的？集双高速的通梅高速公路总投资多少？"
    assert form_flaw("伊绥段是2011年12月1日通车的[1]。", two_asks) is None  # the left-out ask is answered on its own
    assert form_flaw("通梅高速公路总投资70.39亿元[1]。", two_asks) is None
    assert form_flaw("伊绥段已经通车[1]。", two_asks) == "the question asks for a date or time and the answer has none"


def test_a_marker_after_an_opener_is_no_empty_slot_when_the_text_before_it_answers():
    assert form_flaw("华为技术有限公司推出的三折叠屏手机是[1]", "那款能折成三段屏幕的手机是哪家公司推出的？") is None
    assert form_flaw("文章建议采取以下监管做法：[1]\n1. 强制安全评估[1]", "文章建议采取什么监管做法？") is None
