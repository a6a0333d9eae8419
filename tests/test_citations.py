"""The post-hoc citation check: markers, facts, quotes, refusals."""

import pytest

from rag.index.chunking import Chunk
from rag.qa.citations import check_answer, is_refusal, key_facts, mentions_subject, subject_names, supports
from rag.qa.prompts import REFUSAL

PASSAGES = [
    Chunk("c1", "d1", "河南", "s", "8月 9日，河南省人民政府发布政策。设立总规模 30亿元的人工智能产业基金。", 0),
    Chunk("c2", "d2", "广西", "s", "计划组建认缴总规模不低于 100亿元的广西人工智能产业基金。", 0),
    Chunk("c3", "d3", "算力", "s", "截至2025年一季度,八大算力枢纽节点总算力规模达215.5 EFLOPS。", 0),
]


def test_supported_citation_is_verified_with_quote():
    checked = check_answer("河南设立了总规模30亿元的人工智能产业基金[1]。", PASSAGES)
    assert not checked.refused
    assert [c.n for c in checked.verified] == [1]
    assert "30亿元" in checked.verified[0].quote
    assert checked.text.endswith("[1]。")


def test_sentence_with_a_wrong_number_is_dropped_and_its_citation_kept_as_unsupported():
    checked = check_answer("河南的基金是30亿元[1]。广西基金规模是300亿元[2]。", PASSAGES)
    assert [c.n for c in checked.verified] == [1]
    assert [c.n for c in checked.unsupported] == [2]
    assert checked.text == "河南的基金是30亿元[1]。"


def test_answer_without_any_verified_citation_is_withheld_as_refusal():
    checked = check_answer("浙江的基金规模是200亿元[1]。", PASSAGES)
    assert checked.refused and checked.text == REFUSAL
    assert [c.n for c in checked.unsupported] == [1]


def test_citation_of_passage_not_shown_is_dropped():
    checked = check_answer("河南的基金是30亿元[1]，详见[7]。", PASSAGES)
    assert "[7]" not in checked.text
    assert [c.n for c in checked.citations] == [1]


def test_wrong_passage_number_is_repointed_to_the_supporting_passage():
    checked = check_answer("河南设立了30亿元基金[2]。广西是100亿元[2]。", PASSAGES)
    assert checked.text == "河南设立了30亿元基金[1]。广西是100亿元[2]。"
    assert [c.n for c in checked.verified] == [1, 2]


def test_citation_past_the_passages_shown_is_repointed_to_the_supporting_passage():
    # asked again with one passage, the model still cites the [3] it saw in the first prompt
    checked = check_answer("河南设立了30亿元基金[3]。", PASSAGES[:1])
    assert not checked.refused and checked.text == "河南设立了30亿元基金[1]。"
    assert [c.n for c in checked.verified] == [1]
    assert check_answer("浙江设立了200亿元基金[3]。", PASSAGES[:1]).refused  # no passage supports it: still withheld


def test_unsupported_claim_is_dropped():
    checked = check_answer("河南设立了30亿元基金[1]。该基金由国务院管理[2]。", PASSAGES)
    assert checked.text == "河南设立了30亿元基金[1]。" and [c.n for c in checked.unsupported] == [2]


def test_unsupported_clause_is_dropped_and_the_sentence_still_ends():
    checked = check_answer("河南设立了30亿元基金[1]，该研究院的院长是张孝荣[2]。", PASSAGES)
    assert checked.text == "河南设立了30亿元基金[1]。"


def test_uncited_claim_no_passage_supports_is_dropped_but_plain_wording_stays():
    assert check_answer("河南设立了30亿元基金[1]。浙江设立了200亿元基金。", PASSAGES).text == "河南设立了30亿元基金[1]。"
    assert check_answer("据资料：河南设立了30亿元基金[1]。", PASSAGES).text == "据资料：河南设立了30亿元基金[1]。"


def test_nothing_left_after_dropping_is_a_refusal():
    assert check_answer("浙江设立了200亿元基金[1]，由国务院管理[2]。", PASSAGES).refused


def test_line_breaks_of_a_list_answer_stay_and_item_numbers_are_no_figures():
    answer = "1. 河南设立30亿元基金[1]\n2. 广西组建100亿元基金[2]\n3. 浙江设立200亿元基金[1]"
    checked = check_answer(answer, PASSAGES)
    assert checked.text == "1. 河南设立30亿元基金[1]\n2. 广西组建100亿元基金[2]"


def test_a_sentence_that_does_not_answer_the_question_is_dropped():
    checked = check_answer("河南设立了30亿元基金[1]。", PASSAGES, answers=lambda sentence, cited: False)
    assert checked.refused
    seen = []
    check_answer("河南设立了30亿元基金[1]。", PASSAGES, answers=lambda sentence, cited: seen.append(cited) or True)
    assert seen == [[PASSAGES[0]]]  # asked with the passages the sentence cites


def test_several_citations_in_one_sentence():
    checked = check_answer("河南和广西分别设立30亿元和100亿元的基金[1,2]。", PASSAGES)
    assert checked.text == "河南和广西分别设立30亿元和100亿元的基金[1][2]。"
    assert [c.n for c in checked.verified] == [1, 2]


def test_labelled_markers_the_model_copies_from_the_prompt_count_as_citations():
    # the prompt asks for "[编号]"; the 1.5B model sometimes writes [编号1] instead of [1]
    checked = check_answer("8月 9日[编号1]", PASSAGES)
    assert not checked.refused and checked.text == "8月 9日[1]"
    checked = check_answer("河南和广西分别设立30亿元和100亿元的基金【资料1、资料2】。", PASSAGES)
    assert checked.text == "河南和广西分别设立30亿元和100亿元的基金[1][2]。"
    assert check_answer("浙江的基金规模是200亿元[编号1]。", PASSAGES).refused  # still checked


def test_decimal_numbers_and_spaces_match():
    assert supports("总算力规模达215.5 EFLOPS[3]", PASSAGES[2].text)
    assert not supports("总算力规模达215 EFLOPS", PASSAGES[2].text)
    assert supports("8月9日发布", PASSAGES[0].text)


def test_key_facts_finds_numbers_and_places():
    numbers, names = key_facts("河南省设立了30亿元基金[1]")
    assert numbers == ["30"]
    assert "河南省" in names


def test_refusals_are_recognised_and_normalised():
    assert is_refusal(REFUSAL)
    assert is_refusal("资料中没有提到上海的基金规模。")
    assert not is_refusal("河南设立了30亿元基金[1]。")
    checked = check_answer("资料中未提及上海。", PASSAGES)
    assert checked.refused and checked.text == REFUSAL and checked.citations == []


def test_uncited_supported_sentence_is_attributed_to_its_passage():
    checked = check_answer("河南设立了总规模30亿元的人工智能产业基金。", PASSAGES)
    assert checked.text == "河南设立了总规模30亿元的人工智能产业基金[1]。"
    assert [c.n for c in checked.verified] == [1]


def test_uncited_unsupported_answer_is_withheld():
    checked = check_answer("上海设立了50亿元的基金。", PASSAGES)
    assert checked.refused and checked.citations == []


def test_evidence_offsets_point_at_the_supporting_sentence():
    checked = check_answer("河南设立了总规模30亿元的人工智能产业基金[1]。", PASSAGES)
    [citation] = checked.verified
    text = PASSAGES[0].text
    assert text[citation.start : citation.end] == "设立总规模 30亿元的人工智能产业基金。" == citation.quote
    assert citation.evidence() == {"start": citation.start, "end": citation.end, "text": citation.quote}


def test_a_passage_mentions_the_question_subject_when_it_names_one_of_its_names():
    assert mentions_subject("安徽省的人工智能基金规模是多少？", "安徽运营总规模200亿元的基金。")  # 省 may be left out
    assert not mentions_subject("浙江省的人工智能基金规模是多少？", "安徽运营总规模200亿元的基金。")
    assert mentions_subject("基金规模是多少？", "任何资料")  # no names asked about: nothing to check
    assert mentions_subject("星河镇隶属于哪个城市？", "星河镇隶属甲市。")


def test_subject_names_leave_out_common_words_jieba_tags_as_proper_nouns():
    assert subject_names("国务院的《意见》是哪一天印发的？") == ["国务院"]  # 印发 is "nz" in jieba's dictionary
    assert mentions_subject("《意见》提出要大力发展哪些新一代智能终端？", "推动人工智能手机和电脑等智能终端。")


def test_a_name_jieba_glued_to_a_neighbouring_character_still_matches():
    # jieba reads 在整体市场中占比 as 在/整体/市场/中占比, a "place" no passage contains
    assert subject_names("同比增长多少？在整体市场中占比多少？") == ["中占比"]
    assert mentions_subject("同比增长多少？在整体市场中占比多少？", "出货量同比增长59.8%，整体市场占比40.7%。")
    assert not mentions_subject("江苏省出台了哪些政策？", "江西省出台了政策。")  # only an end may be left out


def test_a_repointed_marker_does_not_leave_a_comma_before_the_full_stop():
    assert check_answer("河南设立了30亿元基金，[3]。", PASSAGES[:1]).text == "河南设立了30亿元基金[1]。"


def test_a_month_the_passage_leaves_to_its_dateline_is_not_required_but_the_day_is():
    passage = "据福建省防汛办透露，截至28日6时，福建全省463个景区景点已全部关闭，11624个施工工地已全部停工。"
    assert supports("截至7月28日6时，福建全省关闭了463个景区景点、停工了11624个施工工地。", passage)
    assert not supports("截至7月27日6时，福建全省关闭了463个景区景点。", passage)  # another day
    assert not supports("截至7月28日6时，福建全省关闭了463个景区景点。", "截至8月28日6时，福建全省463个景区景点已全部关闭。")


def test_key_facts_give_a_fresh_list_each_time():
    numbers, names = key_facts("河南省设立30亿元基金。")
    numbers.append("999")
    names.clear()
    assert key_facts("河南省设立30亿元基金。") == (["30"], ["河南省"])


def test_a_draft_checked_again_as_it_grows_tags_only_its_new_sentence(monkeypatch):
    """Verified streaming checks the whole draft each time a sentence settles: the sentences
    checked before cost nothing the second time (no jieba tagging again)."""
    from rag.qa import citations

    real = citations.posseg()
    tagged: list[str] = []

    class Counting:
        def cut(self, text):
            tagged.append(text)
            return real.cut(text)

    monkeypatch.setattr(citations, "posseg", lambda: Counting())
    citations._key_facts.cache_clear()
    first = "河南设立了总规模30亿元的人工智能产业基金[1]。"
    second = "广西计划组建不低于100亿元的基金[2]。"
    alone = check_answer(first, PASSAGES)
    before = len(tagged)
    grown = check_answer(first + second, PASSAGES)
    assert before and tagged[before:] and all(text in second.replace("[2]", "") for text in tagged[before:])
    assert grown.text.startswith(alone.text) and [c.n for c in grown.verified] == [1, 2]
    citations._key_facts.cache_clear()
    assert check_answer(first + second, PASSAGES) == grown  # the same answer without the cache


BATTERIES = [
    Chunk("b1", "flip5", "三星", "s", "三星Galaxy Z Flip 5内置3700mAh电池，支持25W有线快充。", 0),
    Chunk("b2", "fold3", "小米", "s", "小米MIX Fold 3内置4800mAh电池，支持67W有线快充。", 0),
]


def test_facts_of_two_passages_in_one_sentence_are_kept_each_cited_to_its_own():
    checked = check_answer("三星Galaxy Z Flip 5的电池容量为3700mAh，小米MIX Fold 3的电池容量为4800mAh。[1]", BATTERIES)
    assert checked.text == "三星Galaxy Z Flip 5的电池容量为3700mAh[1]，小米MIX Fold 3的电池容量为4800mAh[2]。"
    assert [c.n for c in checked.verified] == [1, 2]


def test_a_sentence_with_an_unsupported_piece_still_goes_whole():
    # keeping 4800mAh alone would hide that the model invented the 120W it was also asked for
    checked = check_answer("小米MIX Fold 3的电池容量为4800mAh，支持120W有线快充。[2]", BATTERIES)
    assert checked.refused


def test_a_time_piece_stays_with_the_figure_it_qualifies():
    passages = [
        Chunk("t1", "gz-0817", "广铁", "s", "截至8月17日，广铁暑运累计发送旅客9256.6万人次。", 0),
        Chunk("t2", "gz-0727", "广铁", "s", "7月27日，广铁暑运迎来客流高峰。", 0),
    ]
    # 截至7月27日 alone (passage 2) is no claim: it is not split from the figure of 8月17日
    checked = check_answer("广铁暑运截至7月27日，累计发送旅客9256.6万人次[1]。", passages)
    assert checked.refused


def test_a_piece_about_another_passage_must_be_a_parallel_statement():
    passages = [
        Chunk("e1", "hh", "鹤哈", "s", "鹤哈高速伊春至绥化段主线全长224.58公里，起点位于呼兰县赵家屯黑大公路537公里处。", 0),
        Chunk("e2", "js", "集双", "s", "集双高速东丰县至双辽市段主线全长205.507公里。", 0),
    ]
    # 起点… is passage 1's, about 鹤哈高速: after a piece about 集双高速 it would read as 集双's start
    checked = check_answer("集双高速的东丰县至双辽市段主线全长205.507公里，起点位于呼兰县赵家屯黑大公路537公里处。[1]", passages)
    assert checked.refused


def test_a_piece_that_points_back_must_come_from_the_same_passage():
    passages = [
        Chunk("r1", "caict", "信通院", "s", "中国信息通信研究院统计，我国脑机接口企业总量已突破200家。", 0),
        Chunk("r2", "deep", "深度科技研究院", "s", "深度科技研究院院长张孝荣对记者表示，脑机接口是未来产业。", 0),
    ]
    checked = check_answer("中国信息通信研究院统计我国脑机接口企业总量已突破200家，该研究院的院长是张孝荣。[1]", passages)
    assert checked.refused  # not "…200家[1]，该研究院的院长是张孝荣[2]": 张孝荣 heads another institute


def test_pieces_of_a_withheld_sentence_leave_no_citation_behind():
    # the 4800mAh piece is supported by passage 2, but the sentence goes whole (120W is not): passage 2
    # must not be listed as verified for an answer that no longer quotes it
    checked = check_answer(
        "三星Galaxy Z Flip 5的电池容量为3700mAh[1]。小米MIX Fold 3的电池容量为4800mAh，支持120W有线快充。", BATTERIES
    )
    assert checked.text == "三星Galaxy Z Flip 5的电池容量为3700mAh[1]。"
    assert [c.n for c in checked.verified] == [1]


PRICES = [
    Chunk(
        "p1",
        "flip5",
        "三星",
        "s",
        "Galaxy Z Flip 5的8+256GB版本售价7499元，主线全长224.58公里，规模30万元，1-120Hz刷新率，厚度6.9mm，11米巴士。",
        0,
    )
]


@pytest.mark.parametrize(
    "answer",
    [
        "Galaxy Z Flip 5的售价是7499美元[1]。",
        "基金规模是30亿元[1]。",
        "规模是30元[1]。",
        "展开后厚度是120mm[1]。",
        "使用11辆巴士[1]。",
    ],
)
def test_a_figure_in_another_unit_than_the_passage_gives_it_is_not_supported(answer):
    assert check_answer(answer, PRICES).refused  # another currency, scale or measure: another figure; 11米 counts no buses


@pytest.mark.parametrize(
    "answer", ["主线全长224.58千米[1]。", "售价7499元[1]。", "售价为7499[1]。", "规模30万[1]。", "厚度6.9毫米[1]。"]
)
def test_the_same_unit_in_other_words_or_none_at_all_is_supported(answer):
    assert [c.n for c in check_answer(answer, PRICES).verified] == [1]


QUAKE = [
    Chunk("q1", "fire", "消防", "s", "四川省消防救援总队调度资中县消防救援大队前突分队赶往震中。", 0),
    Chunk("q2", "quake", "地震", "s", "8月18日，内江市市中区发生4.0级地震。", 0),
]
QUAKE_ANSWER = "8月18日内江市市中区4.0级地震后，总队调度了资中县消防救援大队前突分队赶往震中。[1]"


def test_an_opening_that_only_repeats_the_question_stays_uncited():
    given = frozenset({"8", "18", "4.0", "内江市"})  # the question's own numbers and names
    checked = check_answer(QUAKE_ANSWER, QUAKE, given=given)
    assert checked.text == "8月18日内江市市中区4.0级地震后，总队调度了资中县消防救援大队前突分队赶往震中[1]。"
    assert [c.n for c in checked.citations] == [1]
    # what the question does not give is a claim of its own, cited to the passage that holds it
    alone = check_answer(QUAKE_ANSWER, QUAKE, given=frozenset({"8", "18", "内江市"}))
    assert [c.n for c in alone.verified] == [1, 2]
