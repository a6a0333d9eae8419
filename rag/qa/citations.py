"""Checking the ``[n]`` citations of a generated answer against the passages shown.

A citation is kept as verified only when the cited passage(s) contain the sentence's key
facts: every number (with dates; not a list's ``1.``) and every proper name found in the
sentence, each figure in the unit the passage gives it (``7499美元`` is not the passage's
``7499元``, nor ``30亿元`` its ``30万元``). Without such facts, the sentence must share enough wording with the passage. Given a
test of the question (:mod:`rag.qa.qualifiers`), the sentence must also answer it. Citations to
passages that were not shown are dropped. A sentence the model left without a marker, or cited
with a wrong number (one past the passages shown too), is attributed to the first shown passage
that supports it (small models often forget or misnumber the marker; asked again with one
passage, they still write ``[3]``). A sentence, or a clause ending in its own markers
(``突破200家[1]，该研究院的院长是张孝荣[2]。``), that no passage supports is dropped, and the
rest kept; a sentence with one supported and one unsupported citation keeps the second marked
``[n?]``. An answer with nothing verified left is withheld and becomes the refusal sentence: a
small model that invents a figure usually cannot cite it. Sentences and passages are compared
in Simplified form, so an answer in one script is checked against passages in the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from typing import Any

from rag.index.chunking import Chunk
from rag.qa.prompts import REFUSAL
from rag.text_script import to_simplified

# A marker: [1], [1,2], 【1】, and the [编号1] / [资料2] the model writes after a prompt that says "[编号]".
_LABEL = r"(?:编号|资料|来源|出处|段落|参考)?"
_MARKER_BODY = rf"{_LABEL}\s*\d{{1,2}}(?:\s*[,，、]\s*{_LABEL}\s*\d{{1,2}})*"
_MARKER = re.compile(rf"[\[【]\s*({_MARKER_BODY})\s*[\]】]")
_SENTENCE = re.compile(rf"[^。！？!?；;\n]+[。！？!?；;]*(?:\s*[\[【]\s*{_MARKER_BODY}\s*[\]】])*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MONTH_DAY = re.compile(r"(?<!\d)(\d{1,2})月(\d{1,2})[日号]")
_TIME_WORDS = re.compile(r"\d{4}年|\d{1,2}月(?:份)?|\d{1,2}[日号]|\d{1,2}[时点](?:\d{1,2}分)?")
_LEANS_BACK = re.compile(r"\s*(?:该|其|此|这|那|它|他|她|上述|同时|并且|而且|并|且|也)")
_COMMA = re.compile(r"，|,(?!\d)")  # not the thousands separator of 1,000
_CLAUSE_END = re.compile(rf"(?:[\[【]\s*{_MARKER_BODY}\s*[\]】])+\s*[，,]")
_ENUMERATOR = re.compile(r"^\s*(?:\d{1,2}|[一二三四五六七八九十])[.．、)）](?!\d)")  # "1." of a list is no figure
_NAME_FLAGS = {"nr", "ns", "nt", "nz", "nrt", "nrfg"}
_SUBJECT_FLAGS = _NAME_FLAGS - {"nz"}
_NAME_SUFFIXES = ("省", "市", "区", "县", "自治区", "公司", "集团")
_REFUSAL_HINTS = ("无法回答", "没有提到", "未提及", "没有提及", "没有相关信息", "未提供", "没有提供", "无法确定", "不包含")
_PASSAGE_SENTENCE = re.compile(r"[^。！？!?；;\s](?:[^。！？!?；;\n]*[^。！？!?；;\s])?[。！？!?；;]*")  # stripped
QUOTE_LIMIT = 160
SentenceTest = Callable[[str, Sequence[Chunk]], bool]  # does a sentence, supported by these passages, answer the question
MIN_OVERLAP = 0.35
_ASKED_FOR = r"(?:哪|什么|几|多少)[个种位家些座所条本部款类]?"
# units that make a figure another quantity: a currency, a scale before one, a length, area or
# weight, a percentage (7499美元 is not the passage's 7499元); counting words (人, 名, 辆) vary freely
# (squashed text: lower case)
_MEASURE_UNIT = re.compile(
    r"^[十百千万亿]*?(美元|港元|港币|欧元|日元|英镑|韩元|元|平方公里|平方千米|平方米|公里|千米|厘米|毫米|米"
    r"|公顷|亩|吨|千克|公斤|克|%|个百分点|英寸"
    r"|(?:mm|cm|km|kg|mah|kwh|kw|w|ghz|mhz|hz|tb|gb|mb|nit|ppi)(?![a-z]))"
)
_COUNTED = re.compile(r"^[十百千万亿]*(?:辆|人|名|位|个|家|座|所|次|届|场|架|艘|部|本|篇|首|种|条|户|台|只|头|张|票|枚|件|项|起)")
_SAME_UNIT = {
    "千米": "km",
    "公里": "km",
    "平方千米": "平方公里",
    "公斤": "kg",
    "千克": "kg",
    "毫米": "mm",
    "厘米": "cm",
    "港币": "港元",
}
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}


@dataclass(frozen=True)
class Citation:
    """A citation of passage ``n`` (1-based) with the passage sentence that supports it."""

    n: int
    chunk_id: str
    doc_id: str
    title: str
    quote: str
    verified: bool
    start: int = 0  # the quoted sentence is passage.text[start:end]
    end: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def evidence(self) -> dict:
        """The supporting sentence as ``{start, end, text}`` offsets into the passage text."""
        return {"start": self.start, "end": self.end, "text": self.quote}


@dataclass(frozen=True)
class CheckedAnswer:
    """The answer text after the check, its citations, and whether it is a refusal."""

    text: str
    citations: list[Citation]
    refused: bool

    @property
    def verified(self) -> list[Citation]:
        return [c for c in self.citations if c.verified]

    @property
    def unsupported(self) -> list[Citation]:
        return [c for c in self.citations if not c.verified]


# The check runs again on every sentence a streamed draft settles (rag.qa.release), over the same
# earlier sentences and passages: the pure text steps below are cached so that only new text costs.
_TEXT_CACHE = 1024  # entries per cache: the sentences and passages of a few answers


@lru_cache(maxsize=_TEXT_CACHE)
def squash(text: str) -> str:
    """Simplified script, lower-case, full-width digits/letters to ASCII, no whitespace."""
    text = to_simplified(text).translate(_FULL_WIDTH)
    return re.sub(r"\s+", "", text).lower()


@lru_cache(maxsize=1)
def posseg() -> Any:
    from rag.index.lexical import _jieba

    _jieba()
    import jieba.posseg

    return jieba.posseg


def key_facts(sentence: str) -> tuple[list[str], list[str]]:
    """Numbers and proper names that a supporting passage must contain."""
    numbers, names = _key_facts(sentence)
    return list(numbers), list(names)


@lru_cache(maxsize=_TEXT_CACHE)
def _key_facts(sentence: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    plain = to_simplified(_ENUMERATOR.sub("", _MARKER.sub("", sentence)))
    return tuple(_NUMBER.findall(squash(plain))), tuple(_proper_nouns(plain, _NAME_FLAGS))


def _proper_nouns(plain: str, flags: set[str]) -> list[str]:
    """Words of two or more characters that jieba tags with one of ``flags``."""
    return [w.word for w in posseg().cut(plain) if w.flag in flags and len(w.word) >= 2]


def _contains_number(text: str, number: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(number)}(?![\d]|\.\d)", text) is not None


def _contains_name(text: str, name: str) -> bool:
    name = squash(name)
    if name in text:
        return True
    stem = next((name[: -len(s)] for s in _NAME_SUFFIXES if name.endswith(s) and len(name) - len(s) >= 2), "")
    return bool(stem) and stem in text


def _without_implied_months(numbers: list[str], sentence: str, body: str) -> list[str]:
    """``numbers`` less the month of each ``M月D日`` of ``sentence`` that ``body`` writes as a bare
    ``D日``: news gives the month once (or only in its dateline) and then writes 28日."""
    numbers = list(numbers)
    for month, day in _MONTH_DAY.findall(squash(to_simplified(sentence))):
        if f"{month}月{day}" not in body and re.search(rf"(?<![\d月]){day}[日号]", body) and month in numbers:
            numbers.remove(month)
    return numbers


@lru_cache(maxsize=_TEXT_CACHE)
def bigrams(text: str) -> frozenset[str]:
    text = re.sub(r"[^\w]", "", squash(text))
    return frozenset(text[i : i + 2] for i in range(len(text) - 1))


def supports(sentence: str, passage: str) -> bool:
    """True when ``passage`` contains the key facts of ``sentence`` (or, lacking facts, its wording)."""
    body = squash(passage)
    numbers, names = key_facts(sentence)
    if numbers or names:
        numbers = _without_implied_months(numbers, sentence, body)
        return (
            all(_contains_number(body, n) for n in numbers)
            and all(_contains_name(body, n) for n in names)
            and _units_agree(squash(_MARKER.sub("", sentence)), body)
        )
    words = bigrams(_MARKER.sub("", sentence))
    return bool(words) and len(words & bigrams(passage)) / len(words) >= MIN_OVERLAP


def _units_agree(plain: str, body: str) -> bool:
    """Each figure of the squashed sentence ``plain`` written with a measure unit has that unit
    (scale included: 万元 is not 元) where the squashed ``body`` writes the number with one; a
    count (``11辆``) is not a number the body gives only as a measure (``11米``)."""
    for match in _NUMBER.finditer(plain):
        unit = _unit_at(plain, match.end())
        if unit is None and not _COUNTED.match(plain[match.end() :]):
            continue
        found = [_unit_at(body, m.end()) for m in re.finditer(rf"(?<![\d.]){re.escape(match.group())}(?![\d]|\.\d)", body)]
        measured = {u for u in found if u is not None}
        if unit is None and found and len(measured) == len(found) or unit is not None and measured and unit not in measured:
            return False
    return True


def _unit_at(text: str, end: int) -> str | None:
    """The measure unit (with its scale) written right after position ``end``, normalised; None if none."""
    unit = _MEASURE_UNIT.match(text[end:])
    if unit is None:
        return None
    scale = unit.group()[: unit.start(1)]
    return scale + _SAME_UNIT.get(unit.group(1), unit.group(1))


def passage_sentences(passage: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``passage``, surrounding spaces left out."""
    return [(m.start(), m.end()) for m in _PASSAGE_SENTENCE.finditer(passage)]


def evidence_span(sentence: str, passage: str) -> tuple[int, int]:
    """``(start, end)`` of the passage sentence sharing the most wording with ``sentence``."""
    spans = passage_sentences(passage)
    if not spans:
        return 0, len(passage)
    target = bigrams(sentence)
    return max(spans, key=lambda span: len(target & bigrams(passage[span[0] : span[1]])))


def _clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def is_refusal(text: str) -> bool:
    """The fixed refusal sentence, or an answer that only says the passages do not tell."""
    plain = squash(_MARKER.sub("", text))
    if squash(REFUSAL) in plain:
        return True
    return len(plain) <= 60 and any(hint in plain for hint in _REFUSAL_HINTS)


def _numbers_in(marker_body: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", marker_body)]


def check_answer(
    text: str, passages: Sequence[Chunk], answers: SentenceTest | None = None, given: frozenset[str] = frozenset()
) -> CheckedAnswer:
    """Verify every ``[n]`` of ``text`` against ``passages`` (``[1]`` is ``passages[0]``).

    ``answers`` (:func:`rag.qa.qualifiers.answers_question`) also asks of each supported sentence
    whether it answers the question asked; ``given`` are the question's own numbers and squashed
    names (:attr:`rag.qa.qualifiers.Qualifiers.given`). A sentence, or a clause ending in its own
    markers, that no passage supports is dropped; line breaks between kept sentences stay.
    """
    text = text.strip()
    if not text or is_refusal(text):
        return CheckedAnswer(REFUSAL, [], True)
    citations: dict[int, Citation] = {}  # a passage counts as verified if any sentence verified it
    pieces: list[str] = []
    for sentence, gap in sentences(text):
        clauses = _clauses(sentence)
        results = [_check_clause(clause, passages, answers, citations, given) for clause in clauses]
        kept = [result for result in results if result is not None]
        if kept and results[-1] is None:
            kept[-1] = _ended_like(kept[-1], clauses[-1])
        if kept:
            pieces.append("".join(kept) + gap)
    checked_citations = [citations[n] for n in sorted(citations)]
    if not any(c.verified for c in checked_citations) or not "".join(pieces).strip():
        # nothing the model said could be traced to a passage: withhold it, as a refusal
        return CheckedAnswer(REFUSAL, checked_citations, True)
    return CheckedAnswer("".join(pieces).strip(), checked_citations, False)


def _check_clause(
    clause: str,
    passages: Sequence[Chunk],
    answers: SentenceTest | None,
    citations: dict[int, Citation],
    given: frozenset[str] = frozenset(),
) -> str | None:
    """``clause`` with its markers rewritten (recording their citations), or None to drop it."""
    cited = [n for m in _MARKER.finditer(clause) for n in _numbers_in(m.group(1))]
    shown = [n for n in dict.fromkeys(cited) if 1 <= n <= len(passages)]
    holds = partial(_holds, passages=passages, answers=answers)
    if not cited:
        clause, shown = _attribute(clause, passages, holds)
    together = bool(shown) and holds(clause, shown)
    if cited and not together:
        # a wrong passage number (or one past the passages shown): point the clause at a passage that supports it
        repaired, found = _attribute(_MARKER.sub("", clause), passages, holds)
        if found:
            clause, shown, together = repaired, found, True
    if not together and (cited or any(key_facts(clause))) and not _held_whole(clause, passages):
        # facts from different passages in one clause (甲为3700mAh，乙为4800mAh[1]): the pieces each passage supports
        if pieces := _supported_pieces(clause, passages, answers, citations, given):
            return pieces
    verdicts = {}
    for n in shown:
        passage = passages[n - 1]
        ok = together and (len(shown) == 1 or _shares_fact(clause, passage.text))
        verdicts[n] = ok
        if n not in citations or (ok and not citations[n].verified):
            start, end = evidence_span(clause, passage.text)
            quote = _clip(passage.text[start:end])
            citations[n] = Citation(n, passage.chunk_id, passage.doc_id, passage.title, quote, ok, start, end)
    if not any(verdicts.values()) and (cited or any(key_facts(clause))):
        return None  # a claim no passage supports
    return _MARKER.sub(partial(_rewrite_marker_match, verdicts=verdicts), clause)


def _supported_pieces(
    clause: str,
    passages: Sequence[Chunk],
    answers: SentenceTest | None,
    citations: dict[int, Citation],
    given: frozenset[str] = frozenset(),
) -> str | None:
    """A clause no passage supports as a whole, cut at its commas (``X为3700mAh，Y为4800mAh[1]``),
    each piece cited to the passage that supports it; None unless every piece that claims
    something is supported (keeping the rest would turn a withheld answer into one that leaves
    out what was asked: 昌雅妮获得了银牌 without her score). The pieces it opens with that only
    repeat the question's ``given`` names and numbers (``8月18日内江市市中区4.0级地震后，``) are its
    premise: they stay, uncited, and the question check (``answers``) holds the rest to them."""
    plain = _MARKER.sub("", clause)
    cuts = [m.end() for m in _COMMA.finditer(plain) if m.end() < len(plain.rstrip())]
    premise_end = _premise_end(plain, cuts, given)
    cuts = [cut for cut in cuts if cut > premise_end]
    if not cuts and not premise_end:
        return None
    premise, plain = plain[:premise_end], plain[premise_end:]
    cuts = [cut - premise_end for cut in cuts]
    pieces: list[str] = []
    lead = ""  # a piece that claims nothing (截至7月27日，) stays with the claim it qualifies
    for a, b in zip([0, *cuts], [*cuts, len(plain)], strict=True):
        if _claims(plain[a:b]) or b == len(plain):
            pieces.append(lead + plain[a:b])
            lead = ""
        else:
            lead += plain[a:b]
    if len(pieces) < 2 and not premise:
        return None
    results: list[str | None] = []
    previous = ""  # the last piece kept
    found: dict[int, Citation] = {}  # the pieces' citations, recorded only if the pieces stand
    for piece in pieces:
        result = _check_clause(piece, passages, answers, found, given)
        if result is not None and previous and not _continues(previous, result):
            result = None
        results.append(result)
        previous = result or previous
    if any(r is None and _claims(piece) for r, piece in zip(results, pieces, strict=True)):
        return None  # a claim no passage supports: the sentence goes, as a whole (its other pieces may answer nothing)
    merge_citations(citations, found.values())
    return premise + "".join(r for r in results if r is not None)


def _premise_end(plain: str, cuts: Sequence[int], given: frozenset[str]) -> int:
    """Where the opening pieces of ``plain`` (cut at ``cuts``) that only repeat the question end:
    each names one of its ``given`` names, and every number and name in it is given (0: none)."""
    end = start = 0
    for cut in cuts:
        numbers, names = key_facts(plain[start:cut])
        if names and {*numbers, *map(squash, names)} <= given:
            end = cut
        elif names or _claims(plain[start:cut]):
            break
        start = cut
    return end


def merge_citations(into: dict[int, Citation], citations: Iterable[Citation]) -> None:
    """Add ``citations`` to ``into`` by passage number; a verified citation of a passage wins over an unverified one."""
    for citation in citations:
        if citation.n not in into or (citation.verified and not into[citation.n].verified):
            into[citation.n] = citation


def _continues(previous: str, piece: str) -> bool:
    """A piece cited to another passage than the piece before it is a parallel statement about
    another subject only when it repeats that piece's wording (``甲的电池容量为…，乙的电池容量为…``);
    else it would read as about the first subject (``乙全长205公里[2]，起点位于呼兰县[1]``). One that
    points back (该研究院的院长是…) never is."""
    cited = {n for m in _MARKER.finditer(piece) for n in _numbers_in(m.group(1))}
    before = {n for m in _MARKER.finditer(previous) for n in _numbers_in(m.group(1))}
    if cited <= before:
        return True
    if _LEANS_BACK.match(_MARKER.sub("", piece)):
        return False  # 该研究院的院长是… is about the previous piece's subject, so from its passage
    shared = bigrams(re.sub(r"[\d.]+", "", _MARKER.sub("", piece))) & bigrams(re.sub(r"[\d.]+", "", _MARKER.sub("", previous)))
    return len(shared) >= 2


def _held_whole(clause: str, passages: Sequence[Chunk]) -> bool:
    """One passage holds every fact of ``clause`` (whether or not it answers the question)."""
    plain = _MARKER.sub("", clause)
    return any(supports(plain, passage.text) for passage in passages)


def _claims(piece: str) -> bool:
    """A piece of a sentence states something on its own: a figure (not a date or time), or a name
    with 是/为/有 (``Y为4800mAh``, ``对手是匈牙利队``), not only a subject or a time (``截至7月27日``)."""
    plain = _TIME_WORDS.sub("", squash(piece))
    numbers, names = key_facts(plain)
    return bool(numbers) or (bool(names) and re.search(r"是|为|有", plain) is not None)


def _holds(clause: str, shown: Sequence[int], passages: Sequence[Chunk], answers: SentenceTest | None) -> bool:
    """The passages numbered ``shown`` together support ``clause``, and it answers the question."""
    cited = [passages[n - 1] for n in shown]
    return supports(clause, "\n".join(p.text for p in cited)) and (answers is None or answers(clause, cited))


def sentences(text: str) -> list[tuple[str, str]]:
    """The sentences of ``text`` (:func:`settled_end`'s, markers included), each with the separator after it."""
    matches = list(_SENTENCE.finditer(text))
    if not matches:
        return [(text, "")]
    ends = [m.start() for m in matches[1:]] + [len(text)]
    return [(m.group(), text[m.end() : end]) for m, end in zip(matches, ends, strict=True)]


def _clauses(sentence: str) -> list[str]:
    """``sentence`` cut after each marker followed by a comma: ``甲[1]，乙[2]。`` -> ``甲[1]，`` ``乙[2]。``."""
    cuts = [m.end() for m in _CLAUSE_END.finditer(sentence) if m.end() < len(sentence.rstrip())]
    return [sentence[a:b] for a, b in zip([0, *cuts], [*cuts, len(sentence)], strict=True)]


def _ended_like(clause: str, last: str) -> str:
    """``clause`` (now the sentence's last kept one) ending as the dropped ``last`` ended, not in a comma."""
    end = re.search(r"[。！？!?；;]", last)
    return re.sub(r"\s*[，,]\s*$", end.group() if end else "。", clause)


def settled_end(text: str) -> int:
    """Where the last sentence of ``text`` that more text cannot change ends (0: none yet).

    Sentences are :func:`check_answer`'s: up to 。！？；, a line end, or the end, with the markers
    right after the punctuation. One is settled once a character follows that cannot join it:
    not a space, and not the bracket of a marker still being written (``。[`` may become ``。[1]``).
    """
    end = 0
    for match in _SENTENCE.finditer(text):
        rest = text[match.end() :].lstrip()
        if not rest or (rest[0] in "[【" and not re.search(r"[\]】]", rest)):
            break
        end = match.end()
    return end


def _attribute(sentence: str, passages: Sequence[Chunk], holds: Callable[[str, Sequence[int]], bool]) -> tuple[str, list[int]]:
    """A sentence the model left uncited gets the first passage that ``holds`` it, if any."""
    if not squash(sentence).strip("。！？!?；;，,"):
        return sentence, []
    for n in range(1, len(passages) + 1):
        if holds(sentence, [n]):
            stripped = sentence.rstrip()
            end = len(stripped.rstrip("。！？!?；;，,"))
            tail = stripped[end:]
            if re.search(r"[。！？!?；;]", tail):  # "试验，。" once the marker between them is gone
                tail = re.sub(r"[，,]", "", tail)
            return f"{stripped[:end]}[{n}]{tail}{sentence[len(stripped) :]}", [n]
    return sentence, []


def _shares_fact(sentence: str, passage: str) -> bool:
    """With several citations, each cited passage must carry at least part of the sentence."""
    numbers, names = key_facts(sentence)
    body = squash(passage)
    if any(_contains_number(body, n) for n in numbers) or any(_contains_name(body, n) for n in names):
        return True
    words = bigrams(_MARKER.sub("", sentence))
    return bool(words) and len(words & bigrams(passage)) / len(words) >= MIN_OVERLAP / 2


def _rewrite_marker_match(match: re.Match[str], verdicts: dict[int, bool]) -> str:
    """:func:`_rewrite_marker` for a marker found by ``_MARKER``."""
    return _rewrite_marker(match.group(1), verdicts)


def _rewrite_marker(body: str, verdicts: dict[int, bool]) -> str:
    """``[1,2]`` -> ``[1][2?]``: keep shown passages, mark unsupported ones, drop the rest."""
    return "".join(f"[{n}]" if verdicts[n] else f"[{n}?]" for n in _numbers_in(body) if n in verdicts)


def subject_names(question: str) -> list[str]:
    """The people, places and organisations ``question`` asks about (jieba's nr/ns/nt tags).

    Not jieba's ``nz`` ("other proper noun"): its dictionary gives it to common words (印发,
    普及率, 大力发展). A word right after 哪/什么/几 is what is asked for (哪个城市), not a subject.
    """
    question = to_simplified(_MARKER.sub("", question))  # either script names the same subject
    names = _proper_nouns(question, _SUBJECT_FLAGS)
    return [name for name in names if not re.search(_ASKED_FOR + re.escape(name), question)]


def mentions_subject(question: str, passage: str) -> bool:
    """True when ``passage`` holds one of the question's :func:`subject_names` (or the question names none).

    A passage that names none of the people, places or organisations asked about answers another
    question; asked to answer from it alone, a small model does so anyway. A name of three or more
    characters also counts with its first or last character left out: jieba's guess at an unknown
    word often takes in a neighbouring character (在整体市场中占比 gives the "place" 中占比).
    """
    body = squash(to_simplified(passage))
    return not (names := subject_names(question)) or any(names_in(body, name) for name in names)


def names_in(body: str, name: str) -> bool:
    """``name`` in the squashed ``body`` (:func:`_contains_name`), or, from three characters, without one end."""
    if _contains_name(body, name):
        return True
    name = squash(name)
    return len(name) >= 3 and (name[1:] in body or name[:-1] in body)
