"""Questions with several required parts, split into standalone sub-questions by rules.

Two shapes are split:

* **Coordinated items with 分别 / 各 / 各自 / 依次** (or a count word after them, ``广东、湖南、海南三省``):
  ``河北和山西上半年的GDP分别是多少？`` becomes ``河北上半年的GDP是多少？`` and ``山西上半年的GDP是多少？``.
  Items are times and ordinals (``2022年和2023年``, ``截至7月31日和8月2日``, ``第20轮和第21轮``), or runs
  of names and nouns around 和 / 与 / 及 / 、 (jieba's tags). Several coordinations with as many
  items are zipped (``第20轮和第21轮 … 战胜天津津门虎和青岛海牛``).
* **Several asks**: clauses that each hold an interrogative (``黄振雷在哪家公司任职？担任什么职务？``).
  A later clause without a name of its own borrows the first clause's subject (``黄振雷担任什么职务？``);
  one that starts with a pronoun (``该研究院的院长是谁？``) is too unsure: the question stays whole.

Without 分别 or a count word, coordinated names stay together (``中国和美国的贸易额`` is one
fact). A question that is not split gives ``[]``. :func:`asks_for_list` tells list questions
(``有哪些``, ``哪三支球队``), which are answered whole from more passages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rag.qa.answer_form import without_markers
from rag.qa.citations import squash, subject_names
from rag.text_script import to_simplified

MAX_PARTS = 4

_CONJUNCTIONS = ("以及", "和", "与", "及", "跟", "、")
_TRIGGERS = ("分别", "各自", "依次", "各")
_TIME = (
    r"(?:截至|截止到?|到)?(?:"
    r"\d{4}年(?:\d{1,2}月(?:\d{1,2}[日号])?|上半年|下半年|第?[一二三四1-4]季度)?"
    r"|\d{1,2}月(?:份)?(?:\d{1,2}[日号])?(?:[早晚]|\d{1,2}时)?"
    r"|第[\d一二三四五六七八九十百]+[天轮届期季场次]"
    r"|第?[一二三四1-4]季度|上半年|下半年"
    r")"
)
_TIME_RUN = re.compile(rf"{_TIME}(?:(?:{'|'.join(_CONJUNCTIONS)}){_TIME})+")
_TIME_ITEM = re.compile(_TIME)
_TITLE_RUN = re.compile(rf"《[^》]+》(?:(?:{'|'.join(_CONJUNCTIONS)})《[^》]+》)+")
_COUNT_WORD = re.compile(r"^[两二三四五六七八九十\d]+(?:个)?(?:省市|省份|城市|地区|部门|公司|国家|省|市|地|国|家|方|队|区)")
_ITEM_FLAGS = {"n", "nr", "ns", "nt", "nz", "nrt", "nrfg", "eng", "j", "vn", "an", "nw", "h", "l"}
_ASK = re.compile(r"多少|几[个天年月日号家位名次条项款种岁]?|谁|什么|哪|何时|何地|怎样|如何|是否|还是|吗")
_LEANING_START = re.compile(r"^(?:该|其|他|她|它|这|那|此|上述|和|与|跟|同)")
_QUANTITY_START = re.compile(r"^(?:多少|几)")
_CLAUSE_END = re.compile(r"[，,；;？?！!]")
_VERB_FLAGS = {"v", "vd", "vg", "p", "d", "r"}
_STOCK = re.compile(r"根据(?:现有)?资料|资料(?:显示|中|里)|据此")
_FIGURE_ASK = re.compile(r"多少|几(?!乎)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TIME_WORD = re.compile(r"\d{4}年|\d{1,2}月(?:份)?|\d{1,2}[日号]|[上下]半年|今年|去年")
_ASK_FILLER = re.compile(r"是|为|有|的|了|在|和|与|及|分别|其中|共|一共|全|\d+(?:\.\d+)?")
# first letters of jieba's tags: nouns and names, verbs, adjectives, abbreviations, idioms
_CONTENT_FLAGS = {"n", "v", "a", "j", "l", "i"}


@dataclass(frozen=True)
class Part:
    """One required part: a standalone sub-question and what it asks about (for "not found").

    ``together``: one of several asks about one subject (``芯片是什么，起售价多少``), whose facts
    usually sit in one passage, rather than one of several coordinated items."""

    question: str
    label: str
    together: bool = False


def split_question(question: str) -> list[Part]:
    """The parts of a question that needs several facts, or ``[]`` for a single-part question."""
    plain = to_simplified(question).strip()
    parts = _split_coordination(plain) or _split_asks(plain)
    return parts if 2 <= len(parts) <= MAX_PARTS else []


def uncovered(parts: Sequence[Part], answer: str, others: Sequence[Part] = ()) -> list[int]:
    """The indexes of the asks that ``answer`` leaves out: none of the words that only that ask
    uses (``有线快充`` of ``支持多少瓦的有线快充``; numbers and interrogatives aside) is in it.
    ``others``: the question's asks, when ``parts`` is a share of them.

    An ask without words of its own is taken as covered: nothing tells."""
    plain = to_simplified(answer)
    missing = []
    for i, part in enumerate(parts):
        own = _own_words(part.label) - set().union(*(_own_words(other.label) for other in others or parts if other is not part))
        if own and not any(word in plain for word in own):
            missing.append(i)
    return missing


def adds_to(answer: str, extra: str, question: str) -> bool:
    """``extra`` says something that neither ``answer`` nor ``question`` says: one of its words (numbers
    included; stock phrases such as 根据资料 aside) is in neither."""
    known = to_simplified(answer + question)
    return any(word not in known for word in _own_words(_STOCK.sub("，", extra), numbers=True))


def asks_figure(part: Part) -> bool:
    """The part asks for a number (多少, 几)."""
    return bool(_FIGURE_ASK.search(part.label))


def figures_short(parts: Sequence[Part], answer: str, question: str) -> bool:
    """``answer`` holds fewer figures of its own (numbers ``question`` does not write) than
    ``parts`` ask for with 多少 / 几: one of those asks may be unanswered."""
    asked = sum(1 for part in parts if asks_figure(part))
    given = set(_NUMBER.findall(question))
    own = set(_NUMBER.findall(re.sub(r"[\[【]\d{1,2}\??[\]】]", "", to_simplified(answer)))) - given
    return len(own) < asked


def _own_words(text: str, numbers: bool = False) -> set[str]:
    """The content words of ``text``: names, nouns, verbs and adjectives of two characters or more
    (Latin words of any length), and numbers when ``numbers``; interrogatives aside."""
    return {
        word
        for word, flag in _tokens(to_simplified(text))
        if (flag[0] in _CONTENT_FLAGS or flag == "eng" or (numbers and flag == "m"))
        and (len(word) >= 2 or _latin((word, flag)))
        and (numbers or not word.isdigit())
        and not _ASK.search(word)
    }


def off_topic(sentence: str, parts: Sequence[Part], question: str) -> bool:
    """A sentence of the answer to several asks about one subject (``parts``) that names the
    subject but says nothing about any ask: none of the two-character pieces of an ask's words
    after its subject (of all its words, when the subject is the whole of it), times, numbers,
    interrogatives and function words aside. ``龙烟铁路全长123公里…`` answers neither
    ``龙烟铁路全线设多少个车站`` nor ``河茂铁路共设几座车站``; a bare ``13个车站`` names no subject."""
    plain = squash(without_markers(sentence))
    subjects, asked = _subjects_and_asks(tuple(part.label for part in parts), question)
    return any(word in plain for word in subjects) and not any(piece in plain for piece in asked)


@lru_cache(maxsize=64)  # a streamed answer re-checks every settled prefix against the same asks
def _subjects_and_asks(labels: tuple[str, ...], question: str) -> tuple[frozenset[str], frozenset[str]]:
    """For :func:`off_topic`: the squashed words that name the asks' subjects, and the pieces of what they ask."""
    names = subject_names(question)
    subjects, asked = set(names), set()
    for label in labels:
        subject = _subject(label)
        subjects.update(word for word, flag in _tokens(subject) if flag.startswith("n") and len(word) >= 2)
        asked |= _ask_pieces(label[len(subject) :]) or _ask_pieces(label, names)
    return frozenset(map(squash, subjects)), frozenset(asked)


def _ask_pieces(text: str, names: Sequence[str] = ()) -> set[str]:
    """The two-character pieces of ``text`` (``names`` left out) outside times, numbers, interrogatives and function words."""
    text = squash(text)
    for name in sorted(map(squash, names), key=len, reverse=True):
        text = text.replace(name, "|")
    text = _ASK_FILLER.sub("|", _ASK.sub("|", _TIME_WORD.sub("|", text)))
    return {run[i : i + 2] for run in re.split(r"[|\W]+", text) for i in range(len(run) - 1)}


def asks_for_list(question: str) -> bool:
    """The question asks for several items (``有哪些``, ``有谁``, ``哪三支球队``, ``哪几个``)."""
    return bool(
        re.search(r"哪些|哪几|有谁|都有|哪[两二三四五六七八九十\d]+[个位名支家座所项块部种条天省队]", to_simplified(question))
    )


@lru_cache(maxsize=1)
def _posseg() -> Any:
    from rag.qa.citations import posseg as load

    return load()


def _tokens(text: str) -> list[tuple[str, str]]:
    """jieba's (word, flag) pairs; Latin letters and digits glued together (``NBA2021``) come apart."""
    out: list[tuple[str, str]] = []
    for token in _posseg().cut(text):
        word, flag = token.word, token.flag
        pieces = re.findall(r"[A-Za-z]+|\d+|[^A-Za-z\d]+", word) if flag == "eng" else [word]
        out.extend((piece, "m" if piece.isdigit() else flag) for piece in pieces)
    return out


def _has_trigger(text: str) -> bool:
    return any(word in _TRIGGERS for word, _ in _tokens(text))


def _split_coordination(question: str) -> list[Part]:
    """Parts for coordinated items with a trigger word or a count word after them."""
    groups = _time_groups(question) + _title_groups(question) + _noun_groups(question)
    if not groups:
        return []
    groups.sort(key=lambda g: g[0])
    size = len(groups[0][2])
    chosen = [g for g in groups if len(g[2]) == size]
    chosen = [g for i, g in enumerate(chosen) if i == 0 or g[0] >= chosen[i - 1][1]]  # no overlaps
    counted = any(_COUNT_WORD.match(question[end:]) for _, end, _ in chosen)
    if not (_has_trigger(question) or counted):
        return []
    parts = []
    for i in range(size):
        text, last = "", 0
        for start, end, items in chosen:
            text += question[last:start] + items[i]
            last = end
            if count := _COUNT_WORD.match(question[end:]):
                last = end + count.end()
        parts.append(Part(_drop_triggers(text + question[last:]), chosen[0][2][i]))
    return parts


def _time_groups(question: str) -> list[tuple[int, int, list[str]]]:
    """Coordinated times and ordinals: (start, end, items); ``截至`` carried to every item."""
    groups = []
    for run in _TIME_RUN.finditer(question):
        items = [m.group() for m in _TIME_ITEM.finditer(run.group()) if m.group()]
        prefix = re.match(r"截至|截止到?|到", items[0])
        if prefix:
            items = [item if item.startswith(prefix.group()) else prefix.group() + item for item in items]
        if len(items) >= 2:
            groups.append((run.start(), run.end(), items))
    return groups


def _title_groups(question: str) -> list[tuple[int, int, list[str]]]:
    """Coordinated book titles (``《八角笼中》和《封神第一部》``): (start, end, items)."""
    return [(run.start(), run.end(), re.findall(r"《[^》]+》", run.group())) for run in _TITLE_RUN.finditer(question)]


def _noun_groups(question: str) -> list[tuple[int, int, list[str]]]:
    """Runs of names and nouns joined by 和 / 与 / 及 / 、: (start, end, items).

    The item before the first conjunction is no longer than the one after it, in words or in
    characters (``7月份北京和西安``: 北京, not 月份北京; ``威拉弗龙和乌拉嘎龙``: jieba's 威/拉弗/龙 whole).
    When the first item is written in Latin letters and digits (a model, a variant), the common
    nouns that end the last item are a head noun they share (``8+256GB和8+512GB版本售价``: 8+256GB and 8+512GB, each with 版本售价)."""
    tokens = _item_units(_tokens(question))
    starts = [0]
    for word, _ in tokens:
        starts.append(starts[-1] + len(word))
    groups = []
    i = 0
    while i < len(tokens):
        if tokens[i][0] not in _CONJUNCTIONS or i == 0:
            i += 1
            continue
        rights: list[tuple[int, int]] = []  # token spans of the items after each conjunction
        j = i
        while j < len(tokens) and tokens[j][0] in _CONJUNCTIONS:
            end = j + 1
            while end < len(tokens) and _is_item(tokens[end]) and not _COUNT_WORD.fullmatch(tokens[end][0]):
                end += 1
            if end == j + 1:
                break
            rights.append((j + 1, end))
            j = end
        if not rights:
            i += 1
            continue
        first_chars = starts[rights[0][1]] - starts[rights[0][0]]
        left = i
        first_size = rights[0][1] - rights[0][0]
        while left > 0 and _is_item(tokens[left - 1]) and (i - left < first_size or starts[i] - starts[left - 1] <= first_chars):
            left -= 1
        while 0 < left < i and tokens[left - 1][1] in _PLACE_FLAGS and tokens[left][1] in _PLACE_FLAGS:
            left -= 1  # a place jieba cut in pieces (粤港澳/大湾/区) stays whole
        if left == i:
            i += 1
            continue
        last_start, last_end = rights[-1]
        bare = all(word.isascii() for word, _ in tokens[left:i])  # a model or a variant: 8+256GB, 5G
        while bare and last_end - last_start > 1 and tokens[last_end - 1][1] in _HEAD_NOUN_FLAGS:
            last_end -= 1
        rights[-1] = (last_start, last_end)
        items = ["".join(w for w, _ in tokens[left:i]), *("".join(w for w, _ in tokens[a:b]) for a, b in rights)]
        groups.append((starts[left], starts[last_end], items))
        i = max(j, i + 1)
    return groups


_GLUE = {" ", "+", "."}
_HEAD_NOUN_FLAGS = {"n", "vn"}
_PLACE_FLAGS = {"ns", "nt"}
_NAME_TAGS = {"nr", "nrt", "nrfg", "nz"}
_YEAR = re.compile(r"(?:19|20)\d\d")
_NOT_AFTER_NUMBER = re.compile(r"^(?:[年月日季时点分]|号(?!线))")


def _item_units(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """jieba's words with what it cuts out of one name put back together, as one item word
    (tagged ``nz``): Latin letters, digits and the spaces or ``+`` between them, with the word
    they are written onto (``小米MIX Fold 3``, ``16GB+1TB``); a number and the noun it counts
    (``7号线``, ``86线``, but not ``7月``); names joined by ``·`` and a name's ``（…）`` (``厄尔·门罗（孟洛）``)."""
    units: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        word, flag = tokens[i]
        j = i + 1
        if _latin(tokens[i]) or (flag in _ITEM_FLAGS and j < len(tokens) and _latin(tokens[j]) and not tokens[j][0].isdigit()):
            while j < len(tokens) and (
                _latin(tokens[j]) or (tokens[j][0] in _GLUE and j + 1 < len(tokens) and _latin(tokens[j + 1]))
            ):
                if _YEAR.fullmatch(tokens[j][0]):
                    break  # NBA2021: the season is no part of the league's name
                j += 1
            if (
                flag == "m"
                and j == i + 1
                and j < len(tokens)
                and tokens[j][1] in _ITEM_FLAGS
                and not _NOT_AFTER_NUMBER.match(tokens[j][0])
            ):
                j += 1  # 7号线, 86线
        elif flag in _NAME_TAGS:
            while j < len(tokens) and (
                tokens[j][1] in _NAME_TAGS or (tokens[j][0] == "·" and j + 1 < len(tokens) and tokens[j + 1][1] in _NAME_TAGS)
            ):
                j += 2 if tokens[j][0] == "·" else 1
            if j < len(tokens) and tokens[j][0] == "（":
                close = next((k for k in range(j, min(j + 6, len(tokens))) if tokens[k][0] == "）"), None)
                j = close + 1 if close is not None else j
        units.append((word, flag) if j == i + 1 else ("".join(w for w, _ in tokens[i:j]), "nz"))
        i = j
    return units


def _latin(token: tuple[str, str]) -> bool:
    """Latin letters or digits (``MIX``, ``Z``, ``3``)."""
    return token[0].isascii() and token[0].isalnum()


def _is_item(token: tuple[str, str]) -> bool:
    word, flag = token
    return flag in _ITEM_FLAGS and word not in _TRIGGERS and not re.search(r"[《》]", word)


def _drop_triggers(text: str) -> str:
    """``text`` without 分别 / 各 / 各自 / 依次 used as adverbs."""
    return "".join(word for word, _ in _tokens(text) if word not in _TRIGGERS)


def _split_asks(question: str) -> list[Part]:
    """Parts for clauses that each hold an interrogative; ``[]`` when a later one leans on a pronoun."""
    clauses = [c for c in _clauses(question) if c.strip()]
    context = ""
    asks: list[str] = []
    for clause in clauses:
        if _ASK.search(clause):
            asks.append(clause)
        elif not asks:
            context += clause + "，"
        else:
            asks[-1] += "，" + clause
    if len(asks) < 2:
        return []
    first = asks[0]
    subject = _subject(first)
    if context and not _names(first) and re.match(rf"(?:是|为|有)?(?:{_ASK.pattern})", first[len(subject) :]):
        subject = ""  # 比分是多少 after a context: 比分 is what is asked, the context names the subject
    parts = [Part(f"{context}{first}？", first, together=True)]
    for ask in asks[1:]:
        ask = re.sub(r"^(?:以及|并且|而且|又|还有|另外)", "", ask)
        if _LEANING_START.match(ask):
            return []
        first_ask = _ASK.search(first)
        if _QUANTITY_START.match(ask) and first_ask:  # 多少枚奖牌 after 获得了多少枚金牌: the first ask's words before its own
            own_subject = first[: first_ask.start()]
        elif _has_own_subject(ask) or (subject and all(name in ask for name in _names(subject) or [subject.rstrip("的")])):
            own_subject = ""
        elif subject or context:
            own_subject = _before_shared(subject, ask)
        else:
            return []
        parts.append(Part(f"{context}{own_subject}{ask}？", ask, together=True))
    return parts


def _clauses(question: str) -> list[str]:
    """The question cut at ，；？！, and at 、 between two clauses that both ask something."""
    out: list[str] = []
    for clause in _CLAUSE_END.split(question):
        pieces = clause.split("、")
        if len(pieces) > 1 and all(_ASK.search(p) for p in pieces):
            out.extend(pieces)
        else:
            out.append(clause)
    return out


def _subject(clause: str) -> str:
    """What the clause is about: its words before the first verb, cut after its last 的."""
    words = []
    for word, flag in _tokens(clause):
        if flag in _VERB_FLAGS or _ASK.match(word):
            break
        words.append(word)
    subject = "".join(words)
    return subject[: subject.rfind("的") + 1] if "的" in subject else subject


def _has_own_subject(clause: str) -> bool:
    """The clause names its own subject: a book title or a person."""
    return "《" in clause or any(f in {"nr", "nrt", "nrfg"} and len(w) >= 2 for w, f in _tokens(clause))


def _names(text: str) -> list[str]:
    """The people, places and organisations ``text`` names (two characters or more)."""
    return [w for w, f in _tokens(text) if f in {"nr", "ns", "nt", "nrt", "nrfg"} and len(w) >= 2]


def _before_shared(subject: str, clause: str) -> str:
    """``subject`` cut before the first word it shares with ``clause`` (``苏州境内上市公司`` before
    ``科创板上市公司`` gives ``苏州境内``), or whole when they share none."""
    for i in range(len(subject) - 1):
        if subject[i : i + 2] in clause and i > 0:
            return subject[:i]
    return subject
