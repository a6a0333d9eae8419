"""Simplified and Traditional Chinese: which script a text is written in, and conversion (OpenCC).

The OpenCC configurations are chosen deliberately:

- ``t2s`` normalises any Traditional text to Simplified for lexical search. It is character-level
  and covers the OpenCC standard, Taiwan and most Hong Kong forms (converting CMRC to Traditional
  with ``s2tw`` and back with ``t2s`` changes 136 of 474,502 characters; ``tw2s`` 216, ``hk2s`` 151).
- ``s2tw`` writes answers for Traditional readers: Taiwan standard characters (為, 裡, 著), the
  forms most Traditional text in use is written in, without rewriting vocabulary (``s2twp`` would
  turn 软件 into 軟體, which may misquote the passages). ``s2t`` (OpenCC's own 爲, 裏) reads as
  old-fashioned to most readers; ``s2hk`` suits Hong Kong only.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any, Literal

Script = Literal["simplified", "traditional"]
TO_SIMPLIFIED = "t2s"
TO_TRADITIONAL = "s2tw"


@cache
def _converter(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """``text`` with every Traditional character converted to Simplified (others unchanged)."""
    return str(_converter(TO_SIMPLIFIED).convert(text)) if text else text


def to_traditional(text: str) -> str:
    """``text`` with Simplified characters converted to Traditional (Taiwan standard forms)."""
    return str(_converter(TO_TRADITIONAL).convert(text)) if text else text


@lru_cache(maxsize=65536)
def _char_script(char: str) -> Script | None:
    """The script a single character belongs to only, or None (shared by both, or not Chinese)."""
    if _converter(TO_SIMPLIFIED).convert(char) != char:
        return "traditional"
    if _converter(TO_TRADITIONAL).convert(char) != char:
        return "simplified"
    return None


def detect_script(text: str) -> Script:
    """``traditional`` when more characters of ``text`` exist only in Traditional than only in
    Simplified; otherwise ``simplified`` (ties and text without Chinese included)."""
    traditional = simplified = 0
    for char in text:
        script = _char_script(char)
        if script == "traditional":
            traditional += 1
        elif script == "simplified":
            simplified += 1
    return "traditional" if traditional > simplified else "simplified"


def in_script(text: str, script: Script) -> str:
    """``text`` written in ``script``."""
    return to_traditional(text) if script == "traditional" else to_simplified(text)
