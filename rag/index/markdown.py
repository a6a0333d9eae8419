"""Markdown as plain text, through a real parser (markdown-it-py, CommonMark with tables).

Regular expressions over Markdown went quadratic on hostile input (100 KB of ``[`` took 42 s, 1 MB
over an hour). markdown-it-py parses in time linear in the input and caps nesting (20 levels), so a file
of a million ``>`` or ``[`` is bounded; its constant is that of pure Python: about 12 s of CPU
for 1 MB of ``[``, where prose costs milliseconds (the worker's timeout bounds the rest,
:mod:`rag.index.isolation`). The token stream is flat, so walking it never recurses.
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

from rag.index.tables import table_markdown

_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_VERBATIM = ("fence", "code_block", "html_block")  # blocks whose text is kept as written


def markdown_text(source: str) -> tuple[str, str]:
    """The title (the first ``# `` heading, "" without one) and the text of a Markdown document.

    Headings become plain lines, links keep their label, images go, emphasis and code markers
    go, list items keep their text (ordered ones their number), tables become ``| a | b |`` rows,
    code and HTML blocks stay as written. Blocks are separated as in the source: by a line break
    where they were on adjacent lines, by a blank line otherwise.
    """
    tokens = _PARSER.parse(source)
    title, blocks = "", []
    rows: list[list[str]] = []
    table_lines: list[int] | None = None
    number = ""  # an ordered list item's "3. ", for its first line
    for n, token in enumerate(tokens):
        if token.type == "list_item_open":
            number = f"{token.info}{token.markup} " if token.info else ""
        elif token.type == "table_open":
            rows, table_lines = [], token.map
        elif token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and tokens[n - 1].type in ("th_open", "td_open"):
            rows[-1].append(_inline_text(token.children or []))
        elif token.type == "inline":
            text, number = number + _inline_text(token.children or []), ""
            title = title or (text if _is_title(tokens[n - 1]) else "")
            blocks.append((token.map, text))
        elif token.type == "table_close":
            blocks.append((table_lines, table_markdown(rows)))
        elif token.type in _VERBATIM:
            blocks.append((token.map, token.content.rstrip("\n")))
    return title.strip(), _join(blocks)


def _inline_text(children: Sequence[Token]) -> str:
    """The text of one paragraph, heading or cell: markers dropped, images and inline HTML too."""
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
    return "".join(parts)


def _is_title(opener: Token) -> bool:
    return opener.type == "heading_open" and opener.tag == "h1" and opener.markup == "#"


def _join(blocks: Sequence[tuple[list[int] | None, str]]) -> str:
    """Blocks (with their source lines) joined by a line break where they were on adjacent lines,
    by a blank line otherwise."""
    text, end = "", -1
    for lines, block in blocks:
        if not block:
            continue
        start, stop = lines or (end, end)
        text += ("\n" if start == end else "\n\n") + block if text else block
        end = stop
    return text
