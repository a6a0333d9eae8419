"""Publication dates: read conservatively from a field or from the head of an article.

Only a full date (year, month, day) in a position that states publication counts: a line that is
just a date (``2025年9月1日 星期一``, ``发布时间：2025-09-01 10:30``, a page header ``证券日报 2025年9月1日``),
a dateline (``新华社北京2025年9月1日电``), or a date opening the text followed by a comma or space
(``2025年9月1日，...``). A date inside a sentence (``2025年12月11日闭幕的会议``) is an event, not
publication, and is ignored.
"""

from __future__ import annotations

import datetime as dt
import re

_DATE = r"((?:19|20)\d{2})\s*(?:年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日|([-/.])(\d{1,2})\4(\d{1,2})(?!\d))"
_WEEKDAY = r"(?:\s*[（(]?(?:星期|周)[一二三四五六日天][)）]?)?"
_TIME = r"(?:\s*T?\d{1,2}:\d{2}(?::\d{2})?)?"
_LABEL = r"(?:(?:发布|发表|出版|刊发|更新)?(?:时间|日期)\s*[:：]\s*)?"
_MASTHEAD = r"(?:[\u4e00-\u9fff]{2,10}(?:报|刊|网)\s+)?"
_PAGE = r"(?:\s+[A-Z]?\d{0,2}\s*版)?"
_PATTERNS = (
    re.compile(rf"^[\s(（【\[]*{_MASTHEAD}{_LABEL}{_DATE}{_WEEKDAY}{_TIME}{_PAGE}[\s)）】\]]*$"),
    re.compile(rf"^[(（]?[\u4e00-\u9fff]{{0,12}}?{_DATE}\s*[电讯]"),
    re.compile(rf"^{_DATE}(?:[，,\s])"),
)
HEAD_LINES = 3


def _iso(match: re.Match[str]) -> str:
    year, month, day = match.group(1), match.group(2) or match.group(5), match.group(3) or match.group(6)
    try:
        return dt.date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return ""


def parse_date(value: str) -> str:
    """A date field (``2025-09-01``, ``2025-09-01T10:00:00+08:00``, ``2025/9/1``, ``2025年9月1日``) as
    ISO ``yyyy-mm-dd``; "" when it is not one."""
    match = re.match(rf"\s*{_DATE}", value)
    return _iso(match) if match else ""


def date_in_head(text: str, header_only: bool = False) -> str:
    """The publication date stated in the first lines of ``text`` (see the module notes), or "".

    ``header_only``: only a line that is just a date (a page header, which dates every article
    of a newspaper page).
    """
    lines = [line.strip() for line in text.split("\n") if line.strip()][:HEAD_LINES]
    for line in lines:
        for pattern in _PATTERNS[:1] if header_only else _PATTERNS:
            match = pattern.match(line)
            if match and (found := _iso(match)):
                return found
    return ""
