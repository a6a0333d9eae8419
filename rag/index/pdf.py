"""Reading PDFs page by page: the text layer where a page has one, OCR where it has none, and
ruled tables as Markdown rows. Every page's text starts with its page marker."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.index.limits import ParseLimits
from rag.index.ocr import ocr_image
from rag.index.pages import page_marker
from rag.index.tables import table_markdown
from rag.progress import ProgressCallback

MIN_TEXT_CHARS = 10  # a text layer with fewer characters is a scanned page (a page number at most)
RENDER_SCALE = 2.0  # 144 dpi: body text of a scanned page is 20-40 px high, what PP-OCR reads best

Warn = Callable[[str], None]


def read_pdf(
    path: Path, progress: ProgressCallback | None = None, warn: Warn | None = None, limits: ParseLimits = ParseLimits()
) -> str:
    """The text of every page in order, each after its page marker.

    A page that cannot be OCR'd is left out and reported through ``warn`` (file and page);
    the other pages still come back. An unreadable file, or one of more than
    ``limits.pdf_max_pages`` pages, is an :class:`InputError`.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        _check_pages(path, len(reader.pages), limits.pdf_max_pages)
        texts = {number: page.extract_text() or "" for number, page in enumerate(reader.pages, start=1)}
    except (PdfReadError, ValueError, KeyError, OSError, TypeError) as exc:
        raise InputError(f"{path.name}: cannot read this PDF ({exc})") from exc
    scanned = [number for number, text in texts.items() if len(re.sub(r"\s", "", text)) < MIN_TEXT_CHARS]
    texts.update(_pages_with_tables(path, [number for number in texts if number not in scanned]))
    texts.update(_ocr_pages(path, scanned, limits.max_pixels, progress, warn))
    return "\n\n".join(page_marker(number) + text.strip() for number, text in texts.items() if text.strip())


def _check_pages(path: Path, pages: int, max_pages: int) -> None:
    if pages > max_pages:
        raise InputError(
            f"{path.name}: {pages} pages is over the {max_pages}-page limit for PDFs (RAG_PDF_MAX_PAGES); the file was skipped"
        )


def _ocr_pages(
    path: Path, numbers: list[int], max_pixels: int, progress: ProgressCallback | None, warn: Warn | None
) -> dict[int, str]:
    """The OCR text of pages ``numbers``, all rendered from one open document. A page that fails
    (the document not opening too) is "" and named through ``warn``."""
    if not numbers:
        return {}
    import pypdfium2 as pdfium

    texts: dict[int, str] = {}
    document = None
    try:
        for done, number in enumerate(numbers, start=1):
            try:
                document = document or pdfium.PdfDocument(str(path))
                texts[number] = _ocr_page(document, path, number, max_pixels, warn)
            except Exception as exc:  # any failure of one page (renderer, OCR) must not lose the others
                texts[number] = ""
                if warn:
                    warn(f"{path.name}, page {number}: OCR failed, the page was skipped ({type(exc).__name__}: {exc})")
            if progress:
                progress("ocr", done, len(numbers))
    finally:
        if document is not None:
            document.close()
    return texts


def _ocr_page(document: Any, path: Path, number: int, max_pixels: int, warn: Warn | None) -> str:
    """Page ``number`` (1-based) rendered and OCR'd; a page too large to render at 144 dpi within
    ``max_pixels`` is rendered at a lower resolution, and ``warn`` says so."""
    page = document[number - 1]
    try:
        width, height = page.get_size()
        scale = render_scale(width, height, max_pixels)
        if scale < RENDER_SCALE and warn:
            warn(
                f"{path.name}, page {number}: {width:.0f} x {height:.0f} pt is too large to OCR at {72 * RENDER_SCALE:.0f} dpi "
                f"within {max_pixels / 1e6:.0f} Mpx (RAG_MAX_MEGAPIXELS); OCR'd at {72 * scale:.0f} dpi"
            )
        return ocr_image(page.render(scale=scale).to_pil())
    finally:
        page.close()


def render_scale(width: float, height: float, max_pixels: int) -> float:
    """:data:`RENDER_SCALE`, or the largest scale under it that renders a page of ``width`` x
    ``height`` points in at most ``max_pixels`` pixels."""
    # pdfium rounds each side up: ceil(w s) ceil(h s) <= (w s + 1)(h s + 1) = max_pixels, solved for s
    area, half_perimeter = max(width * height, 1.0), width + height
    fitting = (math.sqrt(half_perimeter**2 + 4 * area * (max_pixels - 1)) - half_perimeter) / (2 * area)
    return min(RENDER_SCALE, fitting)


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
