"""What reading one input file may cost: the bounds a hostile file (a parser, decompression or
render bomb) runs into. :mod:`rag.index.isolation` enforces time and memory on the worker
process that reads the file; the readers check the caps on content before they unpack or render
it. Each bound is a ``RAG_*`` setting (:func:`rag.config.parse_limits_from_env`)."""

from __future__ import annotations

from dataclasses import dataclass

from rag.errors import InputError


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on reading one file; a file that needs more is refused with the bound named.

    ``timeout_s``: wall-clock seconds, counted again from each OCR'd page of a PDF (a long scan is
    slow, not hostile); ``memory_mb``: memory the worker may take on top of what it starts with;
    ``docx_max_mb``: the summed unpacked size of a Word file's parts; ``pdf_max_pages``: pages of
    a PDF; ``max_pixels``: an image file's pixels (refused above) and a PDF page rendered for OCR
    (rendered at a lower resolution above).
    """

    timeout_s: float = 60.0
    memory_mb: int = 2048
    docx_max_mb: int = 200  # the size cap of any file (documents.MAX_FILE_BYTES): photos in a .docx do not shrink
    pdf_max_pages: int = 2000
    max_pixels: int = 50_000_000  # a 50 Mpx photo (8160 x 6120) decodes to 150 MB; an A4 page at 144 dpi has 2 Mpx

    def __post_init__(self) -> None:
        bounds = (self.timeout_s, self.memory_mb, self.docx_max_mb, self.pdf_max_pages, self.max_pixels)
        if min(bounds) <= 0:
            raise InputError(f"every parse limit must be positive (got {self}; see RAG_PARSE_* and the other caps)")
