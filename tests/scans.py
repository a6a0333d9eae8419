"""Real files generated for the OCR and table tests (and scripts/bench_ocr.py): Chinese text
rendered to images with the installed CJK font, image-only PDFs, a PDF and a DOCX with a table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")  # Debian fonts-wqy-zenhei (scripts/install.sh)
DPI = 150
A4_PX = (1240, 1754)  # A4 at 150 dpi


def page_image(lines: Sequence[str], font_size: int = 32, line_gap: int = 16, margin: int = 90) -> Image.Image:
    """A white A4 page with ``lines`` in black, as a scanner would give it (no text layer)."""
    image = Image.new("RGB", A4_PX, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), font_size)
    for row, line in enumerate(lines):
        draw.text((margin, margin + row * (font_size + line_gap)), line, fill="black", font=font)
    return image


def wrap(text: str, width: int = 30) -> list[str]:
    """``text`` hard-wrapped every ``width`` characters, as printed lines are."""
    return [text[start : start + width] for start in range(0, len(text), width)]


def image_pdf(path: Path, pages: Sequence[Sequence[str]]) -> Path:
    """An image-only PDF: one rendered page per entry of ``pages`` (each a list of lines)."""
    images = [page_image(lines) for lines in pages]
    images[0].save(path, "PDF", resolution=DPI, save_all=True, append_images=images[1:])
    return path


def _cjk_pdf() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.add_font("zenhei", fname=str(FONT))
    pdf.set_font("zenhei", size=12)
    return pdf


def table_pdf(path: Path, before: str, rows: Sequence[Sequence[str]], after: str) -> Path:
    """A PDF with a text layer: a paragraph, a ruled table (first row the header), a paragraph."""
    pdf = _cjk_pdf()
    pdf.add_page()
    pdf.multi_cell(0, 8, before)
    pdf.ln(4)
    with pdf.table(first_row_as_headings=False) as table:
        for row in rows:
            cells = table.row()
            for value in row:
                cells.cell(value)
    pdf.ln(4)
    pdf.multi_cell(0, 8, after)
    pdf.output(str(path))
    return path


def text_pdf(path: Path, pages: Sequence[str]) -> Path:
    """A PDF with a text layer, one page per entry of ``pages``."""
    pdf = _cjk_pdf()
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def joined_pdf(path: Path, parts: Sequence[Path]) -> Path:
    """The pages of ``parts`` in order, in one PDF (e.g. text pages and scanned pages mixed)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(str(part))
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def table_docx(path: Path, before: str, rows: Sequence[Sequence[str]], after: str) -> Path:
    """A Word file: a paragraph, a table (first row the header), a paragraph."""
    import docx

    document = docx.Document()
    document.add_paragraph(before)
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph(after)
    document.save(str(path))
    return path
