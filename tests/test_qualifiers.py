"""Whether a supported sentence answers this question: times, names and the measure at its evidence."""

from rag.index.chunking import Chunk
from rag.qa.citations import check_answer
from rag.qa.qualifiers import answers_question, qualifiers

GANSU = Chunk(
    "g1",
    "gdp-gansu",
    "2023-07-24 16:05，正文：甘肃兰州市风光",
    "s",
    "7月24日，甘肃省统计局公布2023年上半年全省经济运行情况，上半年，全省地区生产总值5539.1亿元，按不变价格计算，"
    "同比增长6.8%。分产业看，第一产业增加值377.0亿元，同比增长6.0%；第二产业增加值1957.2亿元，增长6.5%。",
    0,
)
HARBIN = Chunk(
    "h1",
    "tr-harbin",
    "2023-08-01 14:22，正文：哈铁暑运首月",
    "s",
    "中国铁路哈尔滨局集团有限公司8月1日发布消息，7月份运送旅客965万人次，同比增长52.7%。",
    0,
)
KUNSHAN = Chunk(
    "k1",
    "gdp-kunshan",
    "2023-01-30 09:00，正文：昆山",
    "s",
    "2023年1月28日，昆山市统计局公布，2022年昆山完成地区生产总值5006.7亿元，比上年增长1.8%。",
    0,
)
FILM = Chunk("f1", "film", "2023-08-08，正文：暑期档", "s", "电影《巨齿鲨2:深渊》8月4日上映首日收获1.5亿票房。", 0)


def answered(question: str, answer: str, passages: list[Chunk]) -> bool:
    checked = check_answer(answer, passages, answers_question(question, passages))
    return not checked.refused


def test_the_question_s_times_names_and_measure():
    asked = qualifiers("甘肃今年一季度的地区生产总值是多少亿元？")
    assert asked.times == {("q", 1)} and asked.names == ("甘肃",) and asked.measure == "地区生产总值"
    assert qualifiers("哈尔滨局集团公司8月份运送旅客多少人次？").times == {("m", 8)}
    assert qualifiers("截至7月31日，长三角铁路暑运发送旅客超过了多少？").times == {("d", (7, 31))}
    assert qualifiers("1949年以来登陆福建的最强台风是哪一个？").times == frozenset()  # a bound, not the period
    assert qualifiers("理想L9在2023年第二季度交付了多少辆？").measure == ""  # a verb: what is delivered is asked


def test_a_figure_of_another_measure_does_not_answer():
    assert not answered("甘肃今年一季度的地区生产总值是多少亿元？", "甘肃一季度地区生产总值是377.0亿元[1]。", [GANSU])
    assert answered("甘肃上半年地区生产总值是多少？", "甘肃上半年地区生产总值5539.1亿元[1]。", [GANSU])


def test_a_figure_of_another_period_does_not_answer():
    assert not answered("哈尔滨局集团公司8月份运送旅客多少人次？", "965万人次[1]", [HARBIN])
    assert answered("哈尔滨局集团公司7月份运送旅客多少人次？", "965万人次[1]", [HARBIN])
    assert not answered("甘肃2022年上半年地区生产总值是多少？", "5539.1亿元[1]", [GANSU])  # the article says 2023
    # a report date before the figure does not scope it
    assert answered("昆山2022年全年完成的地区生产总值是多少？", "5006.7亿元[1]", [KUNSHAN])


def test_a_figure_about_another_place_does_not_answer():
    assert not answered("《巨齿鲨2：深渊》在北美的首周末票房是多少？", "首周末票房为1.5亿[1]", [FILM])
    assert answered("《巨齿鲨2：深渊》上映首日票房是多少？", "上映首日票房为1.5亿[1]", [FILM])


def test_the_article_s_other_passages_give_the_context():
    later = Chunk(
        "h2", "tr-harbin", "2023-08-01 14:22，正文：哈铁暑运首月", "s", "其中，管内旅客发送量增长五成以上，达到600万人次。", 1
    )
    other = Chunk("x1", "tr-other", "2023-08-01", "s", "武汉局集团公司暑运运送旅客1000万人次。", 0)
    question = "哈尔滨局集团公司7月份管内旅客发送量是多少？"
    assert answered(question, "600万人次[1]", [later, HARBIN])  # 哈尔滨 is named by its neighbour
    assert not answered(question, "600万人次[1]", [later, other])


def test_only_the_sentence_that_does_not_answer_is_dropped():
    answer = "甘肃上半年地区生产总值5539.1亿元[1]。一季度地区生产总值是377.0亿元[1]。"
    checked = check_answer(answer, [GANSU], answers_question("甘肃上半年地区生产总值是多少？", [GANSU]))
    assert checked.text == "甘肃上半年地区生产总值5539.1亿元[1]。"


LIXIANG = Chunk(
    "l1",
    "ev-lixiang",
    "2023-08-01 18:30，正文：理想汽车7月交付",
    "s",
    "理想汽车近日公布了2023年7月的交付数据，当月共计交付新车34134辆，同比增长227.5%。",
    0,
)


def test_a_brand_jieba_does_not_know_is_the_question_s_subject():
    # jieba cuts 极氪 into 极/d 氪/g and reads 蔚来 as 蔚/nr 来/v: neither is a tagged name
    assert qualifiers("极氪汽车7月份交付了多少辆新车？").topic == ("极氪",)
    assert qualifiers("蔚来今年1到7月一共交付了多少台？").topic == ("蔚来",)
    assert qualifiers("深蓝S7在7月交付了多少台？").topic == ("s7",)
    assert not answered("极氪汽车7月份交付了多少辆新车？", "极氪汽车7月份交付了34134辆新车[1]。", [LIXIANG])
    assert not answered("蔚来7月份交付了多少台新车？", "34134台[1]", [LIXIANG])
    assert answered("理想汽车7月交付了多少辆新车？", "34134辆[1]", [LIXIANG])


def test_an_opening_that_is_no_subject_is_not_checked():
    for question in (
        "他建议政府基金在风险分担上扮演什么角色？",
        "那到2030年呢？",
        "东北三个省里，今年前六个月经济总量唯一过万亿的是哪个省？",
        "中超第21轮海港5:0青岛海牛，第一个进球是哪名青岛球员的乌龙？",
        "河北和山西今年上半年的地区生产总值分别是多少？",  # several subjects
        "华中科技大学的黄华锋在大运会三级跳远里跳出了多远？",  # a tagged name: the names check has it
    ):
        assert qualifiers(question).topic == (), question


def test_a_question_of_several_asks_is_answered_by_a_sentence_that_answers_one_of_them():
    # the year of the second ask pins nothing on the answer to the first
    two_asks = "哈尔滨局集团公司7月份运送旅客多少人次？电影《巨齿鲨2：深渊》2022年上映首日票房是多少？"
    assert answered(two_asks, "哈尔滨局7月份运送旅客965万人次[1]。", [HARBIN])
    assert not answered(two_asks.replace("7月份", "8月份"), "哈尔滨局运送旅客965万人次[1]。", [HARBIN])


QUAKE_6AM = Chunk("e6", "quake-6", "平原地震", "s", "截至8月6日上午6时，山东平原5.5级地震共记录到余震56次，其中3.0级以下余震55次。", 0)
QUAKE_8AM = Chunk("e8", "quake-8", "平原地震", "s", "截至08月06日08时00分，共记录到余震59次，其中3.0级以下余震58次。", 0)


def test_a_figure_of_another_hour_does_not_answer():
    question = "截至8月6日8时，山东平原5.5级地震共记录到余震多少次？"
    assert not answered(question, "共记录到余震56次[1]。", [QUAKE_6AM])  # the 6 a.m. count
    assert answered(question, "共记录到余震59次[1]。", [QUAKE_8AM])
    assert answered("截至8月6日下午6时共记录到余震多少次？", "共记录到余震56次[1]。", [QUAKE_6AM]) is False
    assert answered("山东平原5.5级地震共记录到余震多少次？", "共记录到余震56次[1]。", [QUAKE_6AM])  # no hour asked


def test_a_later_ask_without_a_subject_of_its_own_keeps_the_first_ask_s_time():
    question = "截至8月6日8时，山东平原5.5级地震共记录到余震多少次？其中3.0级以下的余震有多少次？"
    assert not answered(question, "3.0级以下的余震有55次[1]。", [QUAKE_6AM])
    assert answered(question, "3.0级以下的余震有58次[1]。", [QUAKE_8AM])
