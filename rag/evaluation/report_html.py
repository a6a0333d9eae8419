"""``report.html``: ``report.md`` as one self-contained page, its chart embedded.

Renders the few Markdown constructs ``report.md`` uses (headings, paragraphs, nested ``-`` lists,
pipe tables, ``**bold**`` and image lines), so no Markdown package is needed.
"""

from __future__ import annotations

import base64
import html
import itertools
import re
from collections.abc import Mapping, Sequence

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; line-height: 1.5; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; }
"""


def _kind(line: str) -> str:
    """What a line is part of: blank, heading, image, table, list or text."""
    stripped = line.strip()
    if not stripped:
        return "blank"
    if stripped.startswith("#"):
        return "heading"
    if _IMAGE.match(stripped):
        return "image"
    if stripped.startswith("|"):
        return "table"
    return "list" if stripped.startswith("- ") else "text"


def _inline(text: str) -> str:
    return _BOLD.sub(r"<strong>\1</strong>", html.escape(text, quote=False))


def _heading(line: str) -> str:
    level = min(len(line) - len(line.lstrip("#")), 6)
    return f"<h{level}>{_inline(line[level:].strip())}</h{level}>"


def _image(line: str, images: Mapping[str, bytes]) -> str:
    match = _IMAGE.match(line.strip())
    assert match is not None  # only image lines come here
    src = match["src"]
    if src in images:
        src = "data:image/png;base64," + base64.b64encode(images[src]).decode("ascii")
    return f'<p><img alt="{html.escape(match["alt"])}" src="{html.escape(src)}"></p>'


def _cells(line: str) -> list[str]:
    return [_inline(cell.strip().replace("\\|", "|")) for cell in _CELL_SPLIT.split(line.strip())[1:-1]]


def _table(lines: Sequence[str]) -> str:
    head, *body = [_cells(line) for line in lines if not set(line.strip()) <= set("|-: ")]
    rows = ["<tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>"]
    rows += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body]
    return "<table>" + "".join(rows) + "</table>"


def _list(lines: Sequence[str]) -> str:
    """Nested by indentation, two spaces a level (``</li>`` may be left out in HTML)."""
    parts, depth = [], 0
    for line in lines:
        level = (len(line) - len(line.lstrip(" "))) // 2 + 1
        parts += ["<ul>"] * (level - depth) + ["</ul>"] * (depth - level)
        depth = level
        parts.append(f"<li>{_inline(line.strip()[2:])}")
    return "".join(parts + ["</ul>"] * depth)


def _block(kind: str, lines: Sequence[str], images: Mapping[str, bytes]) -> list[str]:
    if kind == "heading":
        return [_heading(line) for line in lines]
    if kind == "image":
        return [_image(line, images) for line in lines]
    if kind == "table":
        return [_table(lines)]
    if kind == "list":
        return [_list(lines)]
    return ["<p>" + "<br>".join(_inline(line.strip()) for line in lines) + "</p>"] if kind == "text" else []


def render_html(markdown: str, title: str, images: Mapping[str, bytes]) -> str:
    """``markdown`` as a self-contained HTML page; images named in ``images`` are embedded."""
    groups = itertools.groupby(markdown.splitlines(), key=_kind)
    body = [block for kind, lines in groups for block in _block(kind, list(lines), images)]
    return (
        f'<!DOCTYPE html>\n<html lang="zh">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
