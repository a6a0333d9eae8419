"""Whether a supported sentence answers *this* question: the question's qualifiers at its evidence.

News articles on one subject differ in the year, the place or the measure, so a figure that a
passage does hold answers the question only when the passage sentence holding it (the evidence)
is about what was asked:

* time (2021年, 一季度, 上半年, 7月份, 8月3日, 截至6日8时): where the cited article (the cited passage and
  the passages shown from the same document, titles and date headers included) names a time of
  the asked kind, it names an asked value; and the last such time before the answer in the
  evidence sentence is an asked one (``8月1日发布……7月份运送旅客965万人次`` is about July;
  ``较2022年`` is a comparison, ``自6月21日至今`` a bound, ``2023年1月28日`` a report date);
* entity (宝马, 天津): the names the sentence repeats from the question are in the article, or,
  if it repeats none, one of the question's names is;
* measure (社会消费品零售总额): the noun phrase right before 多少/几, when the cited passage
  uses it verbatim somewhere, shares most of its wording with the evidence sentence itself.

Measured on the hard set's gold answers, each cited to the one passage holding it: a check of
times and names within a sentence of the evidence rejected 41 of 254; articles state the period
and the subject once and then write 全省, 该市, so presence is checked in the article and only the
period scoping the figure and the measure next to it. Conservative by design: what the passages
never write the question's way (经济总量 for 地区生产总值, 今年) is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache, partial

from rag.index.chunking import Chunk
from rag.qa.answer_form import ask_clauses
from rag.qa.citations import SentenceTest, bigrams, key_facts, names_in, passage_sentences, posseg, squash, subject_names

Time = tuple[str, object]  # (kind, value): ("y", 2023), ("q", 2), ("h", 1), ("m", 7), ("d", (8, 3)), ("t", 8): 8时

_CN_DIGITS = "零一二三四五六七八九"
_N = r"(\d{1,2}|十[一二]?|[一二三四五六七八九])"
_SPAN = r"[-—–~至到]"
_TIME_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})"), "header"),
    (re.compile(rf"(?<!\d)(\d{{4}})年(?:{_N}月(?:份)?(?:{_N}[日号])?)?"), "ymd"),
    (re.compile(rf"(?<!\d[-—–~至到])(?<!\d)1{_SPAN}{_N}月"), "through"),  # 1-6月 is the first half
    (re.compile(r"上半年|前(?:6|六)个月"), "h1"),
    (re.compile(r"下半年"), "h2"),
    (re.compile(r"前([三3])季度"), "q*"),
    (re.compile(r"第([一二三四1-4])财?季度?|(?<![前\d])([一二三四1-4])季度|(?<![a-z])q([1-4])(?!\d)"), "q"),
    (re.compile(rf"(?<!\d[-—–~至到])(?<!\d){_N}月(?:份)?{_N}[日号]"), "md"),
    (re.compile(rf"(?<!\d[-—–~至到])(?<!\d){_N}月(?:份)?(?![\d一二三四五六七八九十日号])"), "m"),
    # an hour of a day (截至6日8时, 8月6日上午6时, 截至当地时间16时), not a duration (14小时)
    (re.compile(rf"(?:(?<=[日号])|(?<=截至)|(?<=截止)|(?<=时间))(上午|早上|凌晨|中午|下午|晚上)?{_N}[时点]"), "hour"),
]
_SCOPED = {"y", "q", "h", "m", "t"}  # kinds whose other value in the evidence means another period
# a bound (1949年以来, 自6月21日至今), not the period asked about or answered
_SINCE = re.compile(r"(?:\d{4}年)?(?:\d{1,2}月(?:\d{1,2}[日号])?)?(?:以来|至今|之前|以前)")
_COMPARED = re.compile(r"(?:较|比|相比|与|同比)$")
_ASKED = re.compile(r"(?:是|为|有|达到了|达到|达|约|共|一共|总共|累计|分别|了|的)*(?:多少|几)")  # a figure
_ALIASES = {"gdp": "地区生产总值"}
_MEASURE_STOP = re.compile(r"^(?:的|在|和|与|及|是|为|了|截至|截止|其中|全国|全省|全市)+|(?:的|了)+$")
_TITLE = re.compile(r"《[^》]+》")


@dataclass(frozen=True)
class Qualifiers:
    """What a question pins its answer to: times, names and the measure asked for."""

    times: frozenset[Time]
    names: tuple[str, ...]
    measure: str
    one_subject: bool = True  # not a question of several parts (分别, two question marks)
    given: frozenset[str] = frozenset()  # the question's own numbers and names: not what the answer adds
    topic: tuple[str, ...] = ()  # name-like words of the subject it opens with (极氪; 五菱, 缤果), whatever jieba tags them

    def __bool__(self) -> bool:
        return bool(self.times or self.names or self.measure or self.topic)


@lru_cache(maxsize=256)  # a streamed answer re-checks every settled prefix against the same question
def qualifiers(question: str) -> Qualifiers:
    """The times, names (people, places, organisations) and measure ``question`` asks about.

    Not the words of a 《title》: jieba reads places into them (《巨齿鲨2：深渊》), and articles
    shorten titles (《封神》 for 《封神第一部》)."""
    plain = squash(question)
    names = tuple(dict.fromkeys(n for n in subject_names(_TITLE.sub("，", question)) if not _is_time(n)))
    one_subject = "分别" not in plain and len(re.findall(r"[?？]", plain)) <= 1
    times = frozenset(t for t, _ in _times(_SINCE.sub("", plain)) if one_subject or t[0] != "t")  # an hour pins one item
    numbers, facts = key_facts(question)
    given = frozenset([*numbers, *map(squash, facts)])
    topic = _topic(plain, names) if one_subject else ()
    return Qualifiers(times, names, _measure(question), one_subject, given, topic)


def answers_question(question: str, shown: Sequence[Chunk]) -> SentenceTest:
    """A test of whether a sentence, supported by the passages it cites, answers ``question``;
    ``shown`` are all the passages, whose parts of one article are read as its context.

    A question of several asks (clauses ending in ？) is answered by a sentence that answers one
    of them: ``邹游2011年加盟…几号球衣？`` pins no year on the answer to ``赵鹏的第一场国际A级赛…？``.
    A later ask with no time and no name beyond the first one's is about the first one's time
    (``截至6日8时共记录到余震多少次？其中3.0级以下的余震有多少次？``)."""
    asks = ask_clauses(question)
    if len(asks) < 2:
        return partial(meets, [qualifiers(question)], shown)
    asked = [replace(qualifiers(ask), one_subject=False, topic=()) for ask in asks]
    first = asked[0]
    asked = [replace(a, times=first.times) if not a.times and set(a.names) <= set(first.names) else a for a in asked]
    return partial(meets, asked, shown)


def meets(asks: Sequence[Qualifiers], shown: Sequence[Chunk], sentence: str, cited: Sequence[Chunk]) -> bool:
    """True when, for one of ``asks``, one of ``cited`` holds the evidence of ``sentence`` with that
    ask's qualifiers in its article (the passages of ``shown`` from the same document, titles included)."""
    return any(not asked or any(_meets_in(asked, sentence, passage, shown) for passage in cited) for asked in asks)


def _meets_in(asked: Qualifiers, sentence: str, passage: Chunk, shown: Sequence[Chunk]) -> bool:
    spans = passage_sentences(passage.text)
    if not spans:
        return True
    body = [squash(passage.text[start:end]) for start, end in spans]
    index, clause_end = _evidence(sentence, body, asked.given)
    same = [passage, *(p for p in shown if p.doc_id == passage.doc_id and p.chunk_id != passage.chunk_id)]
    article = "\n".join(squash(f"{p.title}\n{p.text}") for p in same)
    return (
        _times_met(asked.times, article, _SINCE.sub("", body[index][:clause_end]))
        and _names_met(asked, squash(sentence), article)
        and (not asked.topic or any(names_in(article, word) for word in asked.topic))
        and _measure_met(asked.measure, squash(passage.text), body[index])
    )


def _evidence(sentence: str, body: Sequence[str], given: frozenset[str]) -> tuple[int, int]:
    """The passage sentence holding the facts ``sentence`` adds to the question's (``given``):
    its numbers first, then names, then wording; and where the first of them ends there."""
    numbers, names = key_facts(sentence)
    facts = [*numbers, *(squash(n) for n in names)]
    facts = [f for f in facts if f not in given] or facts
    words = bigrams(sentence)

    def score(i: int) -> tuple[int, int, int]:
        found = [f for f in facts if f in body[i]]
        return len([f for f in found if f in numbers]), len(found), len(words & bigrams(body[i]))

    index = max(range(len(body)), key=score)
    text = body[index]
    spans = sorted((text.find(f), text.find(f) + len(f)) for f in facts if f in text)
    return index, spans[0][1] if spans else len(text)


def _times_met(asked: frozenset[Time], article: str, scope: str) -> bool:
    """Each asked kind of time the article names is named with an asked value (a date counts for
    its month), and the last time of that kind before the answer in its sentence is an asked one
    (``8月1日发布：7月份运送旅客965万人次`` is about July)."""
    found = {t for t, _ in _times(article)}
    stated = [t for t, before in _times(scope) if not _COMPARED.search(before)]
    wanted = {_month_of(t) if t[0] == "d" else t for t in asked}
    for kind in {k for k, _ in wanted}:
        values = {v for k, v in wanted if k == kind}
        if any(k == kind for k, _ in found) and not any(_matches(kind, v, found) for v in values):
            return False
        last = [t for t in map(_month_of, stated) if t[0] == kind]
        if kind in _SCOPED and last and last[-1][1] not in values:
            return False
    return True


def _month_of(time: Time) -> Time:
    """A date as its month; any other time as it is."""
    kind, value = time
    return ("m", value[0]) if kind == "d" and isinstance(value, tuple) else time


def _matches(kind: str, value: object, found: set[Time]) -> bool:
    """``(kind, value)`` among ``found``; a month also counts as named by a date in that month."""
    return (kind, value) in found or (kind == "m" and any(k == "d" and v[0] == value for k, v in found if isinstance(v, tuple)))


def _measure_met(measure: str, passage: str, evidence: str) -> bool:
    """A measure the passage writes as asked shares most of its wording with the evidence sentence."""
    if not measure or measure not in passage:
        return True
    for short, long in _ALIASES.items():
        evidence = evidence.replace(short, long)
    words = bigrams(measure)
    return len(words & bigrams(evidence)) >= len(words) / 2


def _names_met(asked: Qualifiers, sentence: str, article: str) -> bool:
    """The asked names ``sentence`` repeats are all in ``article``; if it repeats none, one of them
    is (a question of several parts may ask about a subject it does not name the way jieba tags)."""
    repeated = [n for n in asked.names if names_in(sentence, n)]
    if repeated:
        return all(names_in(article, n) for n in repeated)
    return not asked.names or not asked.one_subject or any(names_in(article, n) for n in asked.names)


def _times(text: str) -> list[tuple[Time, str]]:
    """Every time in squashed ``text``, in order, with the 4 characters before it; spans are read once."""
    taken: list[tuple[int, int]] = []
    times: list[tuple[int, Time, str]] = []
    for pattern, shape in _TIME_PATTERNS:
        for match in pattern.finditer(text):
            if any(s < match.end() and match.start() < e for s, e in taken):
                continue
            taken.append(match.span())
            before = text[max(match.start() - 4, 0) : match.start()]
            times += [(match.start(), time, before) for time in _read(shape, match.groups())]
    return [(time, before) for _, time, before in sorted(times, key=lambda t: t[0])]


def _read(shape: str, groups: Sequence[str | None]) -> Iterator[Time]:
    """The times one match stands for."""
    if shape == "header":  # an article's date header: its year, and the day it was published
        yield "y", int(groups[0] or 0)
        yield "published", (_number(groups[1] or ""), _number(groups[2] or ""))
    elif shape == "ymd":
        year, month, day = groups
        if month and day:  # a dated event or report (2023年1月28日公布), not a year's figure
            yield "dated", int(year or 0)
            yield "d", (_number(month), _number(day))
            return
        yield "y", int(year or 0)
        if month:
            yield "m", _number(month)
    elif shape == "through":
        last = _number(groups[0] or "")
        yield {3: ("q", 1), 6: ("h", 1), 9: ("q*", 3)}.get(last, ("through", last))
    elif shape in ("h1", "h2"):
        yield "h", int(shape[1])
    elif shape == "q*":
        yield "q*", _number(groups[0] or "")
    elif shape == "q":
        yield "q", _number(next(g for g in groups if g))
    elif shape == "hour":
        hour = _number(groups[1] or "")
        yield "t", hour + 12 if groups[0] in ("下午", "晚上") and hour < 12 else hour
    elif shape == "md":
        yield "d", (_number(groups[0] or ""), _number(groups[1] or ""))
    else:
        yield "m", _number(groups[0] or "")


def _number(text: str) -> int:
    """``7``, ``七``, ``十一`` as an int (the small numbers of months, days and quarters)."""
    if text.isdigit():
        return int(text)
    if text.startswith("十"):
        return 10 + (_CN_DIGITS.index(text[1]) if len(text) > 1 else 0)
    tens, _, units = text.partition("十")
    if _:
        return _CN_DIGITS.index(tens) * 10 + (_CN_DIGITS.index(units) if units else 0)
    return _CN_DIGITS.index(text)


def _is_time(word: str) -> bool:
    return bool(_times(squash(word)))


def _measure(question: str) -> str:
    """The noun phrase right before 多少/几, after the last time, name or 的
    (``地区生产总值``); "" when it is shorter than 4 characters (比分, 营收: too general) or ends
    in a verb (交付了多少: what follows the verb is asked, not measured)."""
    plain = squash(_TITLE.sub("，", question))
    asked = _ASKED.search(plain)
    if not asked:
        return ""
    head = plain[: asked.start()]
    cut = max([0, *(m.end() for m in re.finditer(r"[的，,：:？?、]", head))])
    ends = [m.end() for pattern, _ in _TIME_PATTERNS for m in pattern.finditer(head)]
    ends += [head.rfind(n) + len(n) for n in map(squash, subject_names(question)) if n in head]
    phrase = _MEASURE_STOP.sub("", head[max([cut, *ends]) :])
    words = list(posseg().cut(phrase))
    if len(phrase) < 4 or words[-1].flag.startswith("v") and words[-1].flag != "vn":
        return ""
    return phrase


_TOPIC_END = re.compile(r"在|的|是|有|于|第|今年|去年|前年|本年|当年|截至|截止|[，,：:？?、和与及《]")
_TOPIC_GENERIC = re.compile(r"(?:汽车|集团|品牌|公司|股份|控股|有限公司|队|省|市|县|区|自治区|政府)+$")
_TOPIC_ASKS = re.compile(r"哪|什么|谁|多少|几|怎么|如何|为什么|是否")
_NOT_IN_TOPIC = ("r", "p", "c", "u", "d", "f", "s", "t")  # pronouns, prepositions, 省里, 今年: not a subject's words
_TAGGED_ONLY_HERE = {"eng", "j"}  # Latin letters (s7, aws), abbreviations (日产)


def _topic(plain: str, names: Sequence[str]) -> tuple[str, ...]:
    """The name-like words, other than ``names``, of the subject a squashed one-subject question
    opens with (before its first time, 在/的/是 or comma): ``极氪`` of 极氪汽车7月份交付了多少辆新车,
    ``s7`` of 深蓝S7在7月…. Brands and products that jieba does not tag as names: Latin letters,
    abbreviations (日产) and words outside its dictionary, which it cuts into single characters
    (极/氪, 蔚/来). Not ``nz``, which it gives to events as well (中超, 大运会). None when the opening is not 2-8 characters, asks something, or
    holds a pronoun, preposition or place word (他建议, 据, 东北三个省里)."""
    ends = [m.start() for pattern, _ in _TIME_PATTERNS if (m := pattern.search(plain))]
    ends += [m.start() for m in [_TOPIC_END.search(plain)] if m]
    head = plain[: min(ends, default=0)]
    core = _TOPIC_GENERIC.sub("", head) or head
    if not 2 <= len(core) <= 8 or _TOPIC_ASKS.search(head):
        return ()
    words = _join_single_characters([(w.word, w.flag) for w in posseg().cut(core)])
    if any(flag.startswith(_NOT_IN_TOPIC) or (len(word) == 1 and flag.startswith("v")) for word, flag in words):
        return ()
    return tuple(
        word
        for word, flag in words
        if len(word) >= 2 and not word.isdigit() and word not in names and (flag in _TAGGED_ONLY_HERE or not _frequency(word))
    )


def _join_single_characters(words: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Runs of one-character Chinese words (not pronouns, prepositions or particles) as one word
    tagged ``x``: jieba's cut of a word it does not know (极/d 氪/g is 极氪)."""
    joined: list[tuple[str, str]] = []
    run: list[tuple[str, str]] = []
    for word, flag in [*words, ("", "")]:
        if len(word) == 1 and "\u4e00" <= word <= "\u9fff" and not flag.startswith(("r", "p", "c", "u", "f")):
            run.append((word, flag))
            continue
        if run:
            joined.append(("".join(w for w, _ in run), "x") if len(run) > 1 else run[0])
            run = []
        if word:
            joined.append((word, flag))
    return joined


def _frequency(word: str) -> int:
    import jieba

    return int(jieba.dt.FREQ.get(word) or 0)
