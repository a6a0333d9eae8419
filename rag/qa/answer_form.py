"""The form of an answer: repairs that the passages make safe, and the flaws that withhold it.

Small models write answers that are right in substance but wrong in form. Repaired here,
before the citation check, because the passages show what was meant:

* an empty placeholder copied from the prompt (``[编号]``, ``【出处】``) is dropped;
* the same span repeated once per passage (``[1]甲县[2]甲县``) becomes one span with all its
  markers (``甲县[1][2]``);
* a bare number whose every occurrence in the passages carries the same unit (``119`` where the
  passages say ``119人``) gets that unit, and the same qualifier in front (``近``, ``约``, a
  year before ``M月D日``) is restored.

Not repairable, named by :func:`form_flaw` (the pipeline retries once with a stricter
instruction and withholds the answer if the flaw stays):

* a machine timestamp copied from an article's metadata (``2022-11-03 15:21:57``);
* a non-answer: only markers and punctuation, a slot left empty (``主演是[1]，[2]``,
  ``航班号：[1]``, ``总冠军[1]和[2]``), or the question's own words with nothing added;
* an answer of the wrong type: no number for 多少/几, no name for 谁, no place for 哪里, no date
  or time for 什么时候/哪天.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.index.chunking import Chunk

_LABELS = "编号|资料|来源|出处|段落|参考|n|N"
_PLACEHOLDER = re.compile(rf"[\[【]\s*(?:{_LABELS})\s*[\]】]")
_MARKER = re.compile(rf"[\[【]\s*(?:(?:{_LABELS})\s*)?\d{{1,2}}(?:\s*[,，、]\s*(?:(?:{_LABELS})\s*)?\d{{1,2}})*\s*\??[\]】]")
_CONTENT = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
_SLOT_OPEN = re.compile(r"(?:是|为|：|:)$")  # "主演是[1]": the marker stands where the answer should
_CONNECTIVES = re.compile(r"和|及|与|或|以及|、|，|,|；|;|\s")
_STOCK = re.compile(r"根据(?:现有)?资料|资料显示|来源是?|出处|分别|是|为|有|的|了|在")
_OPEN_QUESTION = re.compile(r"谁|什么|多少|几|哪里|哪儿|何时|哪天|哪年")
_CLOSED_QUESTION = re.compile(r"是否|是不是|吗|还是|有没有|能否|对不对")
_NUMBER_WORD = r"[0-9零一二三四五六七八九十百千万亿两半]"
_ASKED_TYPES = {
    # a count: 多少, or 几 with what it counts (not 哪几个, which asks for a list, nor 几经, 几内亚)
    re.compile(r"多少|(?<!哪)几(?=[个位名次年月天日号家条项种岁届场部座人块枚倍成点层十百千万])"): (
        "a number",
        re.compile(_NUMBER_WORD),
    ),
    re.compile(r"什么时候|何时|哪天|哪一天|哪年|哪一年|几月|几号"): (
        "a date or time",
        re.compile(
            rf"{_NUMBER_WORD}+\s*(?:年|月|日|号|时|点|分|世纪|岁)|今天|昨天|明天|今年|去年|上午|下午|晚上|凌晨|当天|当日|周[一二三四五六日末]|星期"
            # an era, a season, a part of the day, a festival, or a time told by an event (出征陈友谅时, 进入战国时代后)
            r"|时代|时期|年代|朝|[春夏秋冬]季?|[早晚]期|夜间|清晨|黄昏|节|[^，。]{2,}(?:时|之时|以后|之后|后|之前|以前|前|期间)(?:[\[【，。]|$)"
        ),
    ),
}
_TIMESTAMP = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\s*\d{1,2}:\d{2}")
_SPAN_KEY = re.compile(r"[\s，,。．.！!？?；;、：:“”\"'（）()]+")

_UNITS = (
    "平方公里|平方千米|平方米|公里|千米|厘米|毫米|米|公顷|亩|吨|千克|公斤|克|"
    "亿元|万元|美元|港元|欧元|日元|英镑|元|"
    "小时|分钟|秒|周年|年|个月|月|日|号|天|周|岁|"
    "人次|人|名|位|个|家|起|件|项|座|所|次|届|场|辆|架|艘|部|本|篇|首|种|条|层|户|台|只|头|张|票|枚|倍|%|％"
)
_UNIT_AFTER = re.compile(rf"^(?:[多余])?(?:[十百千万亿]+)?(?:{_UNITS})")
_QUALIFIER_BEFORE = re.compile(r"(?:将近|接近|大约|多达|超过|不到|不足|近|约|逾|超)$")
_YEAR_BEFORE = re.compile(r"\d{4}年$")
_NUMBER = re.compile(r"(?<![\d.A-Za-z])\d+(?:\.\d+)?(?![\d.A-Za-z])")
_DATE = re.compile(r"(?<![\d年])\d{1,2}月\d{1,2}[日号]")


def without_markers(text: str) -> str:
    """``text`` without its citation markers (``[1]``, ``[2?]``, ``[1,2]``, ``[编号3]``)."""
    return _MARKER.sub("", text)


def repair(text: str, passages: Sequence[Chunk]) -> str:
    """``text`` with placeholders dropped, repeated spans merged and units/qualifiers restored."""
    text = _PLACEHOLDER.sub("", text)
    text = merge_repeated_spans(text)
    bodies = [p.text for p in passages]
    return restore_context(text, bodies)


def form_flaw(text: str, question: str) -> str | None:
    """Why the answer cannot be shown as it is (a copied timestamp, a non-answer, the wrong type), or None."""
    for stamp in _TIMESTAMP.findall(text):
        if stamp not in question:
            return f"copied a metadata timestamp ({stamp}) instead of answering"
    return non_answer(text, question) or wrong_type(text, question)


def non_answer(text: str, question: str) -> str | None:
    """Why ``text`` says nothing: only markers; a marker right after 是/为/a colon, or after only a
    connective, where the text since the last marker adds nothing the question lacks
    (``主演是[1]``, ``总冠军[1]和[2]``; not ``华为推出的手机是[1]``, ``如下：[1]``); or nothing
    the question lacks at all (for a question asking 谁/什么/多少/几/哪里/何时, not a yes/no or
    either/or one)."""
    plain = without_markers(text)
    if not _CONTENT.search(plain):
        return "only citation markers and punctuation"
    pieces = _MARKER.split(text)
    for index, piece in enumerate(pieces[:-1]):
        body = piece.strip()
        opened = _SLOT_OPEN.search(body) or (index and body and not _CONTENT.search(_CONNECTIVES.sub("", body)))
        if opened and not _new_words(body, question):
            return f"left a slot empty before a marker ({body[-8:]}[…])"
    if _OPEN_QUESTION.search(question) and not _CLOSED_QUESTION.search(question) and not _new_words(plain, question):
        return "repeats the question without the asked content"
    return None


def ask_clauses(question: str) -> list[str]:
    """The asks of ``question``: its clauses ending in ？ (and any text after the last one), empty ones left out."""
    return [clause for clause in re.split(r"[？?]", question) if re.search(r"[\w\u4e00-\u9fff]", clause)]


def wrong_type(text: str, question: str) -> str | None:
    """The kind of answer the question asks for (a number, a time) that ``text`` lacks, or None.

    A question of several asks (clauses ending in ？) needs the kinds of one of them: an answer
    to the first ask alone has the right form, and the asks it leaves out are answered on their
    own (:mod:`rag.qa.pipeline`)."""
    plain = without_markers(text)
    flaw = None
    for clause in ask_clauses(question):
        lacking = [kind for asked, (kind, present) in _ASKED_TYPES.items() if asked.search(clause) and not present.search(plain)]
        if lacking:
            flaw = flaw or f"the question asks for {lacking[0]} and the answer has none"
        elif any(asked.search(clause) for asked in _ASKED_TYPES):
            return None
    return flaw


def _new_words(text: str, question: str) -> set[str]:
    """Chinese characters and Latin/number tokens of ``text`` that ``question`` lacks, stock phrases aside."""

    def units(part: str) -> set[str]:
        part = _STOCK.sub("，", part.lower())
        return set(re.findall(r"[\u4e00-\u9fff]|[a-z0-9.%]+", part))

    return units(text) - units(question)


def merge_repeated_spans(text: str) -> str:
    """One span with all its markers where the answer repeats it once per passage.

    Pieces are the texts between markers; markers belong to the text before them, or to the
    text after them when the answer opens with a marker. A piece equal to an earlier one
    (ignoring punctuation) is dropped and its markers join the earlier piece's.
    """
    parts = _MARKER.split(text)
    markers = _MARKER.findall(text)
    if len(markers) < 2:
        return text
    leading = not _SPAN_KEY.sub("", parts[0])
    if leading:  # "[1]X[2]X": each marker belongs to the text after it
        pieces = [(parts[i + 1], [markers[i]]) for i in range(len(markers))]
        head = parts[0]
    else:
        pieces = [(parts[i], [markers[i]] if i < len(markers) else []) for i in range(len(parts))]
        head = ""
    merged: list[tuple[str, list[str]]] = []
    seen: dict[str, int] = {}
    for piece, marks in pieces:
        key = _SPAN_KEY.sub("", piece)
        if key and key in seen:
            first = merged[seen[key]]
            first[1].extend(m for m in marks if m not in first[1])
            continue
        if key:
            seen[key] = len(merged)
        merged.append((piece, list(marks)))
    if len(merged) == len(pieces):
        return text
    return head.strip() + "".join(_attach(piece, marks) for piece, marks in merged)


def _attach(piece: str, marks: Sequence[str]) -> str:
    """``piece`` with ``marks`` before its closing punctuation, as the prompt asks."""
    body = piece.rstrip()
    end = len(body.rstrip("。！？!?；;"))
    return body[:end] + "".join(marks) + body[end:] + piece[len(body) :]


def restore_context(text: str, passages: Sequence[str]) -> str:
    """Units after bare numbers and qualifiers before numbers or dates, where every passage agrees."""
    pieces = _MARKER.split(text)
    markers = _MARKER.findall(text)
    fixed = [_restore_piece(piece, passages) for piece in pieces]
    return "".join(p + (markers[i] if i < len(markers) else "") for i, p in enumerate(fixed))


def _restore_piece(piece: str, passages: Sequence[str]) -> str:
    dates = list(_DATE.finditer(piece))
    numbers = [m for m in _NUMBER.finditer(piece) if not any(d.start() <= m.start() < d.end() for d in dates)]
    out: list[str] = []
    last = 0
    for match in sorted(dates + numbers, key=lambda m: m.start()):
        span, before, after = match.group(), piece[: match.start()], piece[match.end() :]
        is_date = match in dates
        own = _UNIT_AFTER.match(after)
        unit = "" if is_date or own or _is_part_of_date(before, after) else _agreed_unit(span, passages)
        shown_unit = own.group() if own else unit
        qualified = _QUALIFIER_BEFORE.search(before) or _YEAR_BEFORE.search(before)
        prefix = "" if qualified else _agreed_prefix(span, shown_unit, passages, is_date)
        out.append(piece[last : match.start()] + prefix + span + unit)
        last = match.end()
    return "".join(out) + piece[last:]


def _is_part_of_date(before: str, after: str) -> bool:
    return bool(re.match(r"^[-/.:]\d", after) or re.search(r"\d[-/.:]$", before))


def _occurrences(span: str, passages: Sequence[str]) -> list[tuple[str, str]]:
    """(text before, text after) of every occurrence of ``span`` as a whole number in the passages."""
    pattern = re.compile(rf"(?<![\d.]){re.escape(span)}(?![\d]|\.\d)")
    return [(body[: m.start()], body[m.end() :]) for body in passages for m in pattern.finditer(body)]


def _agreed_unit(number: str, passages: Sequence[str]) -> str:
    """The unit every occurrence of ``number`` carries in the passages ("" when none, or they differ)."""
    units = {_unit_of(after) for _, after in _occurrences(number, passages)}
    return units.pop() if len(units) == 1 else ""


def _agreed_prefix(span: str, unit: str, passages: Sequence[str], is_date: bool) -> str:
    """The qualifier (or, for a date, the year) in front of every occurrence of ``span`` + ``unit``."""
    pattern = _YEAR_BEFORE if is_date else _QUALIFIER_BEFORE
    found = {
        (m.group() if (m := pattern.search(before)) else "")
        for before, after in _occurrences(span, passages)
        if is_date or _unit_of(after) == unit
    }
    return found.pop() if len(found) == 1 else ""


def _unit_of(after: str) -> str:
    return m.group() if (m := _UNIT_AFTER.match(after)) else ""
