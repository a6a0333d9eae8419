"""Benchmark OCR of scanned pages: pages per second and character accuracy.

Pages of the sample corpus (``corpus/``) are rendered as a scanner would give them (black text on
white A4 at 150 dpi, 30 characters a line, the installed CJK font) into one image-only PDF, which
is read by :func:`rag.index.pdf.read_pdf` exactly as ``rag ingest`` reads it: each page rendered
by pypdfium2 and OCR'd by RapidOCR. Reported: engine load time, pages/s over all pages (after the
engine is loaded), seconds per page, and character accuracy ``1 - edit distance / characters``
between the OCR text and the rendered text, whitespace removed.

Results go to ``benchmarks/ocr.json`` and ``benchmarks/ocr.md``.

Example::

    python scripts/bench_ocr.py --pages 10
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_common import (  # noqa: E402
    REPO_ROOT,
    command_line,
    load_average,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    percentiles,
    timed,
    write_results,
)
from scans import image_pdf, wrap  # noqa: E402

from rag.index.ocr import ocr_image  # noqa: E402
from rag.index.pages import PAGE_MARK  # noqa: E402
from rag.index.pdf import read_pdf  # noqa: E402

PACKAGES = ("rapidocr-onnxruntime", "onnxruntime", "pypdfium2", "pypdf")
LINES_PER_PAGE = 24
LINE_CHARS = 30


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]


def corpus_pages(n: int) -> list[str]:
    """``n`` pages of corpus text, whitespace removed, ``LINES_PER_PAGE`` lines each."""
    text = squash("".join(path.read_text(encoding="utf-8") for path in sorted((REPO_ROOT / "corpus").glob("*.txt"))))
    size = LINES_PER_PAGE * LINE_CHARS
    if len(text) < n * size:
        raise SystemExit(f"the corpus has text for {len(text) // size} pages, not {n}")
    return [text[start * size : (start + 1) * size] for start in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "benchmarks")
    args = parser.parse_args()
    machine = machine_info(PACKAGES)
    truths = corpus_pages(args.pages)
    with tempfile.TemporaryDirectory() as tmp:
        path = image_pdf(Path(tmp) / "scanned.pdf", [wrap(page, LINE_CHARS) for page in truths])
        log(f"{args.pages} image-only pages in {path.stat().st_size / 1e6:.1f} MB; loading the OCR engine")
        from PIL import Image

        with timed() as load:
            ocr_image(Image.new("RGB", (64, 32), "white"))
        done_at: list[float] = []
        start = time.perf_counter()
        with timed() as run:
            text = read_pdf(path, progress=lambda stage, done, total: done_at.append(time.perf_counter()))
    per_page = [b - a for a, b in zip([start, *done_at], done_at)]
    pages = [squash(page) for page in PAGE_MARK.split(text) if page.strip()]
    rows = []
    errors = chars = 0
    for number, (truth, found) in enumerate(zip(truths, pages), start=1):
        distance = edit_distance(found, truth)
        errors, chars = errors + distance, chars + len(truth)
        rows.append(
            {"page": number, "chars": len(truth), "edit_distance": distance, "accuracy": round(1 - distance / len(truth), 4)}
        )
        log(f"page {number}: accuracy {rows[-1]['accuracy']:.4f}")
    result = {
        "command": command_line(),
        "machine": machine,
        "pages": args.pages,
        "pages_read": len(pages),
        "chars_per_page": LINES_PER_PAGE * LINE_CHARS,
        "render": "A4 150 dpi, 32 px WenQuanYi Zen Hei, 30 characters a line; read at 144 dpi",
        "engine_load_s": round(load.seconds, 2),
        "seconds": round(run.seconds, 2),
        "pages_per_s": round(args.pages / run.seconds, 3),
        "cores_used": round(run.cores_used(), 2),
        "seconds_per_page": percentiles(per_page, digits=2),
        "char_accuracy": round(1 - errors / chars, 4),
        "per_page": rows,
        "load_average_at_end": load_average(),
    }
    markdown = "\n\n".join(
        [
            "# OCR of scanned pages (RapidOCR PP-OCRv4, CPU)",
            f"{args.pages} generated image-only A4 pages of `corpus/` text ({result['chars_per_page']} characters each), "
            "read by `rag.index.pdf.read_pdf` as `rag ingest` reads them (render with pypdfium2, OCR, reading order).",
            markdown_table(
                ["pages/s", "s/page p50", "s/page p95", "cores used", "engine load s", "character accuracy"],
                [
                    [
                        result["pages_per_s"],
                        result["seconds_per_page"]["p50"],
                        result["seconds_per_page"]["p95"],
                        result["cores_used"],
                        result["engine_load_s"],
                        result["char_accuracy"],
                    ]
                ],
            ),
            markdown_table(["page", "characters", "edit distance", "accuracy"], [list(row.values()) for row in rows]),
            f"Load average at the end: {result['load_average_at_end']}.",
            machine_markdown(machine, result["command"]),
        ]
    )
    for written in write_results("ocr", result, markdown, args.out_dir):
        log(f"wrote {written}")


if __name__ == "__main__":
    main()
