"""Reading PDFs page by page: the text layer where a page has one, OCR where it has none, and
ruled tables as Markdown rows. Every page's text starts with its page marker."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.index.ocr import ocr_image
from rag.index.pages import page_marker
from rag.index.tables import table_markdown
from rag.progress import ProgressCallback

MIN_TEXT_CHARS = 10  # a text layer with fewer characters is a scanned page (a page number at most)
RENDER_SCALE = 2.0  # 144 dpi: body text of a scanned page is 20-40 px high, what PP-OCR reads best

Warn = Callable[[str], None]


def read_pdf(path: Path, progress: ProgressCallback | None = None, warn: Warn | None = None) -> str:
    """The text of every page in order, each after its page marker.

    A page that cannot be OCR'd is left out and reported through ``warn`` (file and page);
    the other pages still come back. An unreadable file is an :class:`InputError`.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        texts = {number: page.extract_text() or "" for number, page in enumerate(reader.pages, start=1)}
    except (PdfReadError, ValueError, KeyError, OSError, TypeError) as exc:
        raise InputError(f"{path.name}: cannot read this PDF ({exc})") from exc
    scanned = [number for number, text in texts.items() if len(re.sub(r"\s", "", text)) < MIN_TEXT_CHARS]
    texts.update(_pages_with_tables(path, [number for number in texts if number not in scanned]))
    for done, number in enumerate(scanned, start=1):
        try:
            texts[number] = ocr_image(_render(path, number))
        except Exception as exc:  # any failure of one page (renderer, OCR) must not lose the others
            texts[number] = ""
            if warn:
                warn(f"{path.name}, page {number}: OCR failed, the page was skipped ({type(exc).__name__}: {exc})")
        if progress:
            progress("ocr", done, len(scanned))
    return "\n\n".join(page_marker(number) + text.strip() for number, text in texts.items() if text.strip())


def _render(path: Path, number: int) -> Any:
    """Page ``number`` (1-based) as a PIL image."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path))
    try:
        return document[number - 1].render(scale=RENDER_SCALE).to_pil()
    finally:
        document.close()


def _pages_with_tables(path: Path, numbers: list[int]) -> dict[int, str]:
    """For the pages among ``numbers`` that hold ruled tables: the text above, between and below
    the tables, with each table as Markdown rows where it stands."""
    import pdfplumber

    found: dict[int, str] = {}
    try:
        with pdfplumber.open(str(path)) as pdf:
            for number in numbers:
                page = pdf.pages[number - 1]
                tables = sorted(page.find_tables(), key=lambda table: table.bbox[1])
                if tables:
                    found[number] = _page_text_with_tables(page, tables)
    except Exception:  # pdfminer fails in many ways on files pypdf reads: keep pypdf's text layer
        return {}
    return found


def _page_text_with_tables(page: Any, tables: list[Any]) -> str:
    parts: list[str] = []
    top = page.bbox[1]
    for table in tables:
        parts.append(_band_text(page, top, table.bbox[1]))
        parts.append(table_markdown(table.extract()))
        top = max(top, table.bbox[3])
    parts.append(_band_text(page, top, page.bbox[3]))
    return "\n\n".join(part for part in parts if part.strip())


def _band_text(page: Any, top: float, bottom: float) -> str:
    if bottom - top < 1:
        return ""
    return str(page.crop((page.bbox[0], top, page.bbox[2], bottom)).extract_text() or "")
