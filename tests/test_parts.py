"""Splitting questions that need several facts into standalone sub-questions (rules, no model)."""

from __future__ import annotations

import pytest

from rag.qa.parts import adds_to, asks_for_list, figures_short, off_topic, split_question, uncovered


def questions(text: str) -> list[str]:
    return [part.question for part in split_question(text)]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("上海和北京2021年的GDP分别是多少？", ["上海2021年的GDP是多少？", "北京2021年的GDP是多少？"]),
        (
            "2022年和2023年春节档票房冠军分别是哪部电影？",
            ["2022年春节档票房冠军是哪部电影？", "2023年春节档票房冠军是哪部电影？"],
        ),
        (
            "截至5月3日和6月9日，该省分别接待游客多少人次？",
            ["截至5月3日，该省接待游客多少人次？", "截至6月9日，该省接待游客多少人次？"],
        ),
        ("《流浪地球》和《满江红》的票房分别是多少？", ["《流浪地球》的票房是多少？", "《满江红》的票房是多少？"]),
        (
            "CBA和NBA2021-2022赛季总冠军分别是哪支球队？",
            ["CBA2021-2022赛季总冠军是哪支球队？", "NBA2021-2022赛季总冠军是哪支球队？"],
        ),
        ("金牌、银牌、铜牌各有多少枚？", ["金牌有多少枚？", "银牌有多少枚？", "铜牌有多少枚？"]),
        ("去年浙江、江苏两省的出口额是多少？", ["去年浙江的出口额是多少？", "去年江苏的出口额是多少？"]),
        ("8月份成都和重庆的房价分别是涨还是跌？", ["8月份成都的房价是涨还是跌？", "8月份重庆的房价是涨还是跌？"]),
        # what jieba cuts out of one name is one item: models, names with ·, numbered lines
        (
            "华为Mate 60和小米MIX Fold 3的电池容量分别是多少？",
            ["华为Mate 60的电池容量是多少？", "小米MIX Fold 3的电池容量是多少？"],
        ),
        (
            "厄尔·门罗（孟洛）和拉里·约翰逊分别是哪年入选名人堂的？",
            ["厄尔·门罗（孟洛）是哪年入选名人堂的？", "拉里·约翰逊是哪年入选名人堂的？"],
        ),
        ("九龙巴士7号线和86线分别使用多少辆巴士？", ["九龙巴士7号线使用多少辆巴士？", "九龙巴士86线使用多少辆巴士？"]),
    ],
)
def test_coordinated_items_with_a_distributive_word_become_one_question_each(question, expected):
    assert questions(question) == expected


def test_each_part_is_labelled_with_its_item():
    assert [part.label for part in split_question("上海和北京2021年的GDP分别是多少？")] == ["上海", "北京"]


def test_coordinated_items_are_answered_each_on_its_own_and_asks_about_one_subject_together():
    assert [part.together for part in split_question("上海和北京2021年的GDP分别是多少？")] == [False, False]
    assert [part.together for part in split_question("张明在哪家公司任职？担任什么职务？")] == [True, True]


def test_parallel_coordinations_are_zipped():
    assert questions("第3轮和第4轮，山东泰山分别以什么比分战胜武汉三镇和长春亚泰？") == [
        "第3轮，山东泰山以什么比分战胜武汉三镇？",
        "第4轮，山东泰山以什么比分战胜长春亚泰？",
    ]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("《心居》的主演有谁，导演是谁？", ["《心居》的主演有谁？", "《心居》的导演是谁？"]),
        ("张明在哪家公司任职？担任什么职务？", ["张明在哪家公司任职？", "张明担任什么职务？"]),
        (
            "截至6月末，全省新增了多少家企业、注销了多少家？",
            ["截至6月末，全省新增了多少家企业？", "截至6月末，全省注销了多少家？"],
        ),
        (
            "截至3月末，杭州境内上市公司有多少家？创业板上市公司有多少家？",
            ["截至3月末，杭州境内上市公司有多少家？", "截至3月末，杭州境内创业板上市公司有多少家？"],
        ),
        ("国足热身赛对阵越南，比分是多少？谁进了球？", ["国足热身赛对阵越南，比分是多少？", "国足热身赛对阵越南，谁进了球？"]),
    ],
)
def test_several_asks_become_one_question_each_and_borrow_the_subject(question, expected):
    assert questions(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "中国和美国的贸易额是多少？",  # coordinated names without 分别: one fact about both
        "河南设立的人工智能产业基金规模是多少？",
        "特斯拉第二季度生产和交付了多少辆电动车？",
        "发布报告的那家研究院统计了多少家企业？该研究院的院长是谁？",  # a pronoun leans on the first ask: too unsure
        "马英九访问大陆去了哪些城市？",
    ],
)
def test_single_facts_and_unsure_questions_stay_whole(question):
    assert split_question(question) == []


def test_traditional_questions_are_split_in_simplified():
    assert questions("上海和北京2021年的GDP分別是多少？") == ["上海2021年的GDP是多少？", "北京2021年的GDP是多少？"]


@pytest.mark.parametrize(
    ("question", "listing"),
    [
        ("马英九访问大陆去了哪些城市？", True),
        ("和中国队同组的是哪三支球队？", True),
        ("这部电影的主演有谁？", True),
        ("河南设立的人工智能产业基金规模是多少？", False),
    ],
)
def test_list_questions_are_recognised(question, listing):
    assert asks_for_list(question) is listing


def test_an_ask_is_uncovered_when_the_answer_lacks_every_word_only_that_ask_uses():
    parts = split_question("小米MIX Fold 3的电池容量是多少？支持多少瓦的有线快充？")
    assert uncovered(parts, "小米MIX Fold 3的电池容量是4800mAh。[1]") == [1]
    assert uncovered(parts, "电池容量是4800mAh[1]，支持67W有线快充[1]。") == []
    assert uncovered(parts, "支持67W有线快充[1]。") == [0]


def test_an_extra_answer_adds_something_only_with_a_word_or_number_the_answer_and_question_lack():
    question = "河南设立的人工智能产业基金规模是多少？河南的政策是哪天发布的？"
    assert adds_to("基金规模为30亿元[1]。", "河南的政策是8月9日发布的[1]。", question)
    assert not adds_to("基金规模为30亿元，政策日期为8月9日[1]。", "河南的政策是8月9日发布的[1]。", question)


@pytest.mark.parametrize(
    ("question", "subquestions"),
    [
        # a head noun written once after the last item belongs to every item
        ("华为Mate 60的12+512GB和16+1TB版本售价分别是多少？", ["华为Mate 60的12+512GB版本售价是多少？", "华为Mate 60的16+1TB版本售价是多少？"]),
        # a name jieba cuts into pieces stays whole (威/拉弗/龙)
        ("威拉弗龙和乌拉嘎龙分别生存于多少万年前？", ["威拉弗龙生存于多少万年前？", "乌拉嘎龙生存于多少万年前？"]),
        # and so does a place (粤港澳/大湾/区)
        (
            "文章建议在粤港澳大湾区、长三角和京津冀分别开展什么试点？",
            ["文章建议在粤港澳大湾区开展什么试点？", "文章建议在长三角开展什么试点？", "文章建议在京津冀开展什么试点？"],
        ),
        # the first item's words still bound it: 月份 is no part of 北京
        ("7月份北京和西安的新房价格分别涨了多少？", ["7月份北京的新房价格涨了多少？", "7月份西安的新房价格涨了多少？"]),
    ],
)
def test_coordinated_items_keep_their_whole_names_and_share_a_head_noun(question, subquestions):
    assert [part.question for part in split_question(question)] == subquestions


def test_stock_phrases_are_nothing_new_and_figures_are_counted_against_the_asks():
    question = "群智咨询预计AI PC出货量超过多少台？占总出货量的比例是多少？"
    answer = "AI PC出货量将超5000万台，占总出货量的28%[1]。"
    assert not adds_to(answer, "根据资料，AI PC占总出货量的比例是28%[1]。", question)
    parts = split_question(question)
    assert not figures_short(parts, answer, question)
    assert figures_short(parts, "AI PC出货量将超5000万台[1]。", question)
    assert not figures_short(parts[:1], "出货量将超5000万台[1]。", question)


@pytest.mark.parametrize(
    ("question", "sentence", "off"),
    [
        ("龙烟铁路全线设多少个车站？河茂铁路共设几座车站？", "龙烟铁路全长123公里，西起龙口西站[3]。", True),
        ("龙烟铁路全线设多少个车站？河茂铁路共设几座车站？", "龙烟铁路全线设13个车站[1]。", False),
        ("龙烟铁路全线设多少个车站？河茂铁路共设几座车站？", "13个车站[1]。", False),  # names no subject: a bare answer
        ("昂塞尔德执教华盛顿子弹队的总战绩是多少？门罗职业生涯每场平均得多少分？", "1980年，门罗因膝盖受伤退役[4]。", True),
        ("昂塞尔德执教华盛顿子弹队的总战绩是多少？门罗职业生涯每场平均得多少分？", "门罗的职业生涯每场平均取得18.8分[4]。", False),
        # an ask that is all subject (上年同期亏损多少): its own words are what an answer repeats
        ("牧原股份上半年的净利润是多少？上年同期亏损多少？", "牧原股份上年同期亏损66.84亿元[1]。", False),
    ],
)
def test_a_sentence_about_the_subject_that_answers_no_ask_is_off_topic(question, sentence, off):
    parts = split_question(question)
    assert parts and parts[0].together
    assert off_topic(sentence, parts, question) is off
