"""Loading articles from files and cleaning Chinese text.

Every loader returns :class:`Document` objects. Newspaper text extracted from PDF is
hard-wrapped mid-word and may hold several articles per file; :func:`split_articles` and
:func:`reflow` undo that.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import os
import re
import statistics
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import InputError
from rag.index.dates import date_in_head, parse_date
from rag.index.limits import ParseLimits
from rag.index.pages import PAGE_MARK, last_page, strip_pages, take_pages
from rag.index.tables import is_table_row, table_markdown
from rag.progress import ProgressCallback

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl", *IMAGE_SUFFIXES)
MAX_FILE_BYTES = 200 * 1024 * 1024

_CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff00-\uffef\u201c\u201d\u2018\u2019\u2014\u2026\u00b7"
)
_CJK_CHAR = re.compile(f"[{_CJK}]")
_SENTENCE_END = tuple("。！？!?；;…”’」』)）")
# A byline is "本报记者 X" or "记者 X": names, no sentence or clause punctuation, so a wrapped line
# such as "记者了解到，..." stays in its article.
_BYLINE = re.compile(
    rf"^\s*{PAGE_MARK.pattern}?(?:(?:本报(?:记者|通讯员|评论员|特约记者)|新华社记者)\s*|记者\s+)[^\s，。！？；][^，。！？；]{{0,30}}$"
)  # a page marker may stand in front: the byline opens a page
_MAX_TITLE_CHARS = 48


@dataclass(frozen=True)
class Document:
    """One article: ``doc_id`` is stable for the same source and position.

    ``date`` is the ISO publication date when the file states one (see :mod:`rag.index.dates`),
    ``tags`` come from a JSONL ``tags`` field and the folders the file sits in.
    """

    doc_id: str
    title: str
    text: str
    source: str
    meta: dict[str, str] = field(default_factory=dict)
    date: str = ""
    tags: tuple[str, ...] = ()
    pages: tuple[tuple[int, int], ...] = ()  # (offset in text, 1-based page) where each page starts

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.title}\n{self.text}".encode()).hexdigest()

    def page_at(self, offset: int) -> int | None:
        """The page holding character ``offset`` of the text; None for files without pages."""
        row = bisect.bisect_right(self.pages, (offset, float("inf"))) - 1
        return self.pages[row][1] if row >= 0 else None


def file_sha256(path: Path) -> str:
    """Hash of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class FolderScan:
    """What a look at a named file or folder found.

    ``files``: the supported files, sorted; ``unreadable``: folders that could not be read, with
    why; ``links_outside``: symbolic links not followed whose target lies outside the folder, with
    that target.
    """

    files: list[Path] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    links_outside: list[tuple[Path, str]] = field(default_factory=list)


def scan_input(raw: str | Path) -> FolderScan:
    """A named file (checked: a known type, not empty) or a folder walked recursively.

    Inside a folder, unsupported and hidden files are skipped, and symbolic links are never
    followed: a link outside the folder would index a file nobody put there (and record its
    source out of the folder's reach), a link inside it names a file read where it lies anyway,
    and a link loop cannot hang the walk. A folder that cannot be read is listed, not skipped in
    silence. A missing path is an :class:`InputError`.
    """
    path = Path(raw).expanduser()
    if path.is_dir():
        return _walk(path)
    if path.is_file():
        check_supported(path)
        return FolderScan(files=[path])
    raise InputError(f"{path}: no such file or folder")


def iter_input_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The supported files of the named files and folders (see :func:`scan_input`)."""
    for raw in paths:
        yield from scan_input(raw).files


def _walk(root: Path) -> FolderScan:
    """Every folder under ``root`` with ``os.scandir``: unlike ``Path.rglob`` it cannot skip an
    unreadable folder without saying so."""
    scan, top, folders = FolderScan(), Path(os.path.realpath(root)), [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    _visit(entry, top, scan, folders)
        except OSError as exc:
            scan.unreadable.append((folder, exc.strerror or str(exc)))
    scan.files.sort()
    scan.unreadable.sort()
    scan.links_outside.sort()
    return scan


def _visit(entry: os.DirEntry[str], top: Path, scan: FolderScan, folders: list[Path]) -> None:
    """Sort one folder entry into ``scan`` (a file), ``folders`` (a subfolder to walk) or neither."""
    path, hidden = Path(entry.path), entry.name.startswith(".")
    if entry.is_symlink():
        target = Path(os.path.realpath(path))
        if not hidden and not target.is_relative_to(top):
            scan.links_outside.append((path, str(target)))
    elif entry.is_dir(follow_symlinks=False):
        folders.append(path)
    elif not hidden and entry.is_file(follow_symlinks=False) and path.suffix.lower() in SUPPORTED_SUFFIXES:
        scan.files.append(path)


def check_supported(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` has a supported extension and a sane size."""
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"{path.name}: unsupported file type '{path.suffix or '(none)'}'; supported: {' '.join(SUPPORTED_SUFFIXES)}"
        )
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path.name}: {size / 1e6:.0f} MB is over the {MAX_FILE_BYTES / 1e6:.0f} MB limit")


# --------------------------------------------------------------------------- text cleaning


def decode_text(data: bytes, name: str) -> str:
    """Decode bytes as UTF-8 (or GB18030); binary data is an :class:`InputError`."""
    if b"\x00" in data[:8192]:
        raise InputError(f"{name}: looks like a binary file, not text")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{name}: not UTF-8 or GB18030 text")


def normalise_whitespace(text: str) -> str:
    """Unify line endings, drop zero-width and control characters, turn ideographic spaces into spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[\u200b-\u200d\ufeff\u00ad]", "", text)
    text = text.replace("\u3000", " ").replace("\u00a0", " ").replace("\t", " ")
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)


def _is_cjk(char: str) -> bool:
    return bool(_CJK_CHAR.match(char))


def _join_wrapped(left: str, right: str) -> str:
    """Join two pieces of one hard-wrapped paragraph: no space next to CJK, one space between Latin words."""
    left, right = left.rstrip(), right.lstrip()
    if not left or not right:
        return left + right
    if _is_cjk(left[-1]) or _is_cjk(right[0]):
        return left + right
    return f"{left} {right}"


def is_hard_wrapped(text: str) -> bool:
    """True when lines were broken at a fixed width (typical of text extracted from PDF)."""
    lengths = [len(line.strip()) for line in text.split("\n") if line.strip()]
    if len(lengths) < 8:
        return False
    return statistics.median(lengths) <= 40


def _is_row(line: str) -> bool:
    return is_table_row(strip_pages(line))


def reflow(text: str) -> str:
    """Rejoin hard-wrapped lines into paragraphs; paragraphs are separated by one blank line.

    In hard-wrapped text a line is joined to the next unless it is clearly shorter than the
    wrap width and ends a sentence. Text that is not hard-wrapped keeps its line breaks as
    paragraph breaks. Table rows (``| a | b |``) stay one per line, each table one paragraph.
    """
    text = normalise_whitespace(text)
    lines = text.split("\n")
    prose = "\n".join(line for line in lines if not _is_row(line))
    wrapped = is_hard_wrapped(prose)
    blocks = []
    for is_table, group in itertools.groupby(lines, key=_is_row):
        block = "\n".join(line.strip() for line in group)
        blocks.append(block if is_table else _reflow_prose(block, prose if wrapped else ""))
    return "\n\n".join(block for block in blocks if block.strip())


def _reflow_prose(text: str, wrapped_text: str) -> str:
    """:func:`reflow` for text without tables; ``wrapped_text`` (empty when not hard-wrapped) sets the width."""
    if not wrapped_text:
        lines = [line.strip() for line in text.split("\n")]
        return "\n\n".join(line for line in lines if line)
    width = statistics.median(len(line.strip()) for line in wrapped_text.split("\n") if line.strip())
    paragraphs: list[str] = []
    current = ""  # a paragraph still open: it may continue after a blank line (PDF artefact)
    for block in re.split(r"\n\s*\n", text):
        lines = [raw.strip() for raw in block.split("\n") if raw.strip()]
        for line in lines:
            current = _join_wrapped(current, line) if current else line
            if len(line) < 0.6 * width and line.endswith(_SENTENCE_END):
                paragraphs.append(current)
                current = ""
        if current and not _continues_after_break(lines, width):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return "\n\n".join(paragraphs)


def _continues_after_break(lines: list[str], width: float) -> bool:
    """A block cut mid-sentence: several wrapped lines, or one full-width line, without a sentence end."""
    if not lines or lines[-1].endswith(_SENTENCE_END):
        return False
    return len(lines) > 1 or len(lines[0]) >= 0.9 * width


def looks_like_title(text: str) -> bool:
    """A short line without sentence-ending punctuation."""
    text = text.strip()
    return 0 < len(text) <= _MAX_TITLE_CHARS and not text.endswith(_SENTENCE_END[:6]) and "，" not in text


# --------------------------------------------------------------------------- articles


@dataclass(frozen=True)
class Article:
    """A piece of a file before it becomes a :class:`Document`."""

    title: str
    text: str
    byline: str = ""


def _blocks(lines: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _trailing_title(lines: list[str], min_blocks: int = 2) -> tuple[list[str], str]:
    """Split off a headline block at the end of ``lines`` (headline-after-body layout).

    With the default ``min_blocks=2`` a lone block is body text, never a headline; the text
    before a file's first byline passes ``min_blocks=1``, since it may be just the headline.
    """
    blocks = _blocks(lines)
    if not blocks:
        return lines, ""
    last = blocks[-1]
    candidate = ""
    for line in last:
        candidate = _join_wrapped(candidate, line.strip())
    if len(blocks) >= min_blocks and looks_like_title(candidate):
        # drop the headline lines (and the blank lines after the body) from the body
        cut = len(lines)
        while cut and not lines[cut - 1].strip():
            cut -= 1
        return lines[: cut - len(last)], candidate
    return lines, ""


def _carry_marks(byline: str, body: list[str]) -> list[str]:
    """``body`` with the page markers of its ``byline`` line moved to its first line of text."""
    marks = "".join(PAGE_MARK.findall(byline))
    for n, line in enumerate(body):
        if marks and line.strip():
            return [*body[:n], marks + line.strip(), *body[n + 1 :]]
    return body


def split_articles(text: str) -> list[Article]:
    """Split a file holding several articles at bylines (``本报记者 X``).

    Two layouts are recognised: when the file starts with a byline, headlines follow their
    article's body (as in newspaper PDF extractions); otherwise a headline block just before
    a byline belongs to the article it introduces. Files without bylines are one article.
    """
    lines = normalise_whitespace(text).split("\n")
    byline_rows = [i for i, line in enumerate(lines) if _BYLINE.match(line) and len(line.strip()) <= 30]
    if not byline_rows:
        return [Article(title="", text=text)]
    first_content = next(i for i, line in enumerate(lines) if line.strip())
    headline_after = byline_rows[0] == first_content
    segments: list[tuple[str, list[str]]] = []  # (byline, body lines)
    preface = lines[: byline_rows[0]]
    for n, row in enumerate(byline_rows):
        end = byline_rows[n + 1] if n + 1 < len(byline_rows) else len(lines)
        segments.append((strip_pages(lines[row]).strip(), _carry_marks(lines[row], lines[row + 1 : end])))
    articles: list[Article] = []
    if headline_after:
        for byline, body in segments:
            body, title = _trailing_title(body)
            articles.append(Article(title=title, text="\n".join(body), byline=byline))
    else:
        pending_title = _trailing_title(preface, min_blocks=1)[1]
        if preface and not pending_title and "".join(preface).strip():
            articles.append(Article(title="", text="\n".join(preface)))
        for byline, body in segments:
            body_without, next_title = _trailing_title(body)
            articles.append(Article(title=pending_title, text="\n".join(body_without), byline=byline))
            pending_title = next_title
    return [a for a in articles if a.text.strip()]


def fallback_title(text: str, default: str) -> str:
    """The first line when it looks like a headline, else the first sentence clipped."""
    first = text.strip().split("\n", 1)[0].strip()
    if looks_like_title(first):
        return first
    sentence = re.split(r"(?<=[。！？!?])", first, maxsplit=1)[0]
    if not sentence:
        return default
    return sentence if len(sentence) <= 30 else sentence[:30] + "…"


# --------------------------------------------------------------------------- file formats


def _read_docx(path: Path, max_bytes: int) -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    _check_unpacked_size(path, max_bytes)
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise InputError(f"{path.name}: cannot read this Word file ({exc})") from exc
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise InputError(f"{path.name}: cannot read this Word file ({exc})") from exc
    blocks = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.append(table_markdown([[cell.text for cell in row.cells] for row in item.rows]))
        else:
            blocks.append(item.text)
    return "\n".join(blocks)


def _check_unpacked_size(path: Path, max_bytes: int) -> None:
    """Refuse a Word file whose parts unpack to more than ``max_bytes`` (a zip bomb), before they
    are unpacked. The sizes are the ones the archive declares, and they hold: zipfile stops each
    part at its declared size (a part that inflates further fails its CRC check)."""
    try:
        with zipfile.ZipFile(path) as archive:
            size = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path.name}: cannot read this Word file ({exc})") from exc
    if size > max_bytes:
        raise InputError(
            f"{path.name}: its parts unpack to {size / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB limit "
            "for Word files (RAG_DOCX_MAX_MB); the file was skipped"
        )


def _read_html(path: Path) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(path.read_bytes(), path.name), "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "header", "noscript"]):
        tag.decompose()
    heading = soup.find("h1")
    title = (heading.get_text(" ", strip=True) if heading else "") or (soup.title.get_text(strip=True) if soup.title else "")
    return title, soup.get_text("\n", strip=True)


def _doc_id_base(path: Path) -> str:
    return re.sub(r"\s+", "_", path.stem)


def _documents_from_text(path: Path, text: str, title: str = "", paged: bool = False) -> list[Document]:
    """Articles of ``text`` as documents; for a ``paged`` file the page markers of its reader
    become each document's ``pages`` (in other files such characters are dropped as data noise)."""
    articles = split_articles(text if paged else strip_pages(text))
    base = _doc_id_base(path)
    page_date = date_in_head(strip_pages(text), header_only=True)
    documents = []
    page: int | None = None
    for n, article in enumerate(articles, start=1):
        body, pages = take_pages(reflow(article.text), page)
        page = last_page(article.title, last_page(article.text, page))
        if not body.strip():
            continue
        article_title = strip_pages(article.title) or (title if len(articles) == 1 else "") or fallback_title(body, path.stem)
        doc_id = base if len(articles) == 1 else f"{base}#{n}"
        meta = {"byline": article.byline} if article.byline else {}
        date = date_in_head(strip_pages(article.text)) or page_date
        documents.append(
            Document(doc_id=doc_id, title=article_title, text=body, source=str(path), meta=meta, date=date, pages=pages)
        )
    return documents


def _load_jsonl(path: Path) -> list[Document]:
    documents = []
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(decode_text(raw, path.name))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path.name}, line {line_no}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise InputError(f"{path.name}, line {line_no}: expected an object with 'text'")
            doc_id = row.get("pid", row.get("id"))
            text = row.get("text")
            if doc_id is None or not isinstance(text, str):
                raise InputError(f"{path.name}, line {line_no}: each row needs 'pid' (or 'id') and 'text'")
            body = reflow(text)
            if not body:
                continue
            title = (row.get("title") or "").strip() or fallback_title(body, str(doc_id))
            date, tags = _row_date(row, path, line_no) or date_in_head(text), _row_tags(row, path, line_no)
            documents.append(Document(doc_id=str(doc_id), title=title, text=body, source=str(path), date=date, tags=tags))
    return documents


def _row_date(row: dict[str, object], path: Path, line_no: int) -> str:
    """A JSONL row's ``date`` field as an ISO date ("" when absent); an unreadable one is an InputError."""
    value = row.get("date")
    if value in (None, ""):
        return ""
    date = parse_date(value) if isinstance(value, str) else ""
    if not date:
        raise InputError(f"{path.name}, line {line_no}: 'date' {value!r} is not a date like 2025-09-01")
    return date


def _row_tags(row: dict[str, object], path: Path, line_no: int) -> tuple[str, ...]:
    """A JSONL row's ``tags``: a list of strings or one comma-separated string."""
    value = row.get("tags")
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = re.split(r"[,，]", value)
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise InputError(f"{path.name}, line {line_no}: 'tags' must be a list of strings")
    return tuple(dict.fromkeys(tag.strip() for tag in value if tag.strip()))


def _load_plain(path: Path) -> list[Document]:
    return _documents_from_text(path, decode_text(path.read_bytes(), path.name))


def _load_markdown(path: Path) -> list[Document]:
    from rag.index.markdown import markdown_text

    title, text = markdown_text(decode_text(path.read_bytes(), path.name))
    return _documents_from_text(path, text, title)


def _load_html(path: Path) -> list[Document]:
    title, text = _read_html(path)
    return _documents_from_text(path, text, title)


_LOADERS: dict[str, Callable[[Path], list[Document]]] = {
    ".txt": _load_plain,
    ".md": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
    ".jsonl": _load_jsonl,
}


def load_file(
    path: Path,
    progress: ProgressCallback | None = None,
    warn: Callable[[str], None] | None = None,
    limits: ParseLimits = ParseLimits(),
) -> list[Document]:
    """Load one file into documents; unusable input raises :class:`InputError`.

    PDF pages without a text layer and images are OCR'd (``progress("ocr", page, pages)``); a
    PDF page that fails is reported through ``warn`` and the rest of the file still loads. The
    caps of ``limits`` on unpacked, page and pixel counts are checked here; its time and memory
    bounds need a worker process (:func:`rag.index.isolation.load_isolated`).
    """
    check_supported(path)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from rag.index.pdf import read_pdf

        documents = _documents_from_text(path, read_pdf(path, progress, warn, limits), paged=True)
    elif suffix in IMAGE_SUFFIXES:
        from rag.index.ocr import read_image_file

        documents = _documents_from_text(path, read_image_file(path, limits.max_pixels))
    elif suffix == ".docx":
        documents = _documents_from_text(path, _read_docx(path, limits.docx_max_mb << 20))
    else:
        documents = _LOADERS[suffix](path)
    if not documents:
        raise InputError(f"{path.name}: no text found in the file")
    return documents
