"""Reading files within bounds: Markdown through a real parser, caps on unpacked, page and pixel
counts, and the worker process that bounds a reader's time and memory (rag.index.isolation)."""

from __future__ import annotations

import os
import signal
import time
import zipfile
from pathlib import Path

import pytest
from conftest import FAKE_MODEL_ID, write_docx
from hostile_files import NORMAL_ARTICLE, NORMAL_QUERY, _png_80_mpx, _png_claiming, _write_pdf
from PIL import Image

import rag.index.documents
import rag.index.pdf
from rag.errors import InputError
from rag.index.chunking import ChunkingConfig, chunk_document
from rag.index.documents import Document, load_file
from rag.index.ingest import ingest
from rag.index.isolation import IsolatedReader, load_isolated
from rag.index.limits import ParseLimits
from rag.index.locations import open_store
from rag.index.markdown import markdown_text
from rag.index.pdf import RENDER_SCALE, render_scale
from rag.models.fakes import HashingEmbedder
from rag.qa.retriever import Retriever

# --------------------------------------------------------------------------- Markdown


def test_a_bracket_bomb_parses_in_linear_time():
    started = time.process_time()
    title, text = markdown_text("[" * 200_000)  # the old regexes: about 3 minutes (quadratic)
    assert time.process_time() - started < 10
    assert (title, text) == ("", "[" * 200_000)


def test_markdown_markup_becomes_plain_text():
    source = (
        "```\n# 代码里的注释\n```\n\n"
        "# 人形机器人*产业*观察\n"
        "**2025年**市场规模预计突破[50亿元](https://example.com)。![图](x.png)\n"
        "变量 snake_case 保持原样，`code` 留下文字。\n\n"
        "1. 北京设立基金\n2. 上海出台措施\n\n"
        "- 深圳：补贴\n\n"
        "| 城市 | 规模 |\n|---|---|\n| 北京 | [100亿元](u) |\n"
    )
    title, text = markdown_text(source)
    assert title == "人形机器人产业观察"  # the first "# " heading, not a line inside a code block
    assert text.split("\n\n") == [
        "# 代码里的注释",
        "人形机器人产业观察\n2025年市场规模预计突破50亿元。\n变量 snake_case 保持原样，code 留下文字。",
        "1. 北京设立基金\n2. 上海出台措施",
        "深圳：补贴",
        "| 城市 | 规模 |\n| --- | --- |\n| 北京 | 100亿元 |",
    ]


# --------------------------------------------------------------------------- decompression and render bombs


def _docx_with_a_part_of(path: Path, megabytes: int) -> Path:
    write_docx(path, ["正常的段落。"])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive, archive.open("word/media/bomb.bin", "w") as part:
        for _ in range(megabytes):
            part.write(b"\0" * (1 << 20))
    return path


def test_a_docx_that_unpacks_past_the_cap_is_refused_before_unpacking(tmp_path, monkeypatch):
    path = _docx_with_a_part_of(tmp_path / "bomb.docx", 12)
    monkeypatch.setattr("docx.Document", lambda *args: pytest.fail("python-docx opened the bomb"))
    with pytest.raises(InputError, match=r"bomb.docx: its parts unpack to 1[23] MB, over the 10 MB limit for Word files"):
        load_file(path, limits=ParseLimits(docx_max_mb=10))


def test_a_docx_under_the_cap_still_loads(tmp_path):
    (document,) = load_file(_docx_with_a_part_of(tmp_path / "fine.docx", 2), limits=ParseLimits(docx_max_mb=10))
    assert document.text == "正常的段落。"


def test_a_pdf_over_the_page_cap_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "pages.pdf"
    _write_pdf(path, [((612, 792), b"")] * 5)
    monkeypatch.setattr(rag.index.pdf, "ocr_image", lambda image: pytest.fail("a page was OCR'd"))
    with pytest.raises(InputError, match="pages.pdf: 5 pages is over the 4-page limit for PDFs"):
        load_file(path, limits=ParseLimits(pdf_max_pages=4))


def test_render_scale_keeps_a_page_under_the_pixel_cap():
    assert render_scale(595, 842, 50_000_000) == RENDER_SCALE  # A4 at 144 dpi: 2 Mpx
    scale = render_scale(14400, 14400, 50_000_000)
    assert (14400 * scale) ** 2 <= 50_000_000 < (14400 * RENDER_SCALE) ** 2


def test_a_huge_page_is_rendered_under_the_pixel_cap_and_named(tmp_path, monkeypatch):
    path = tmp_path / "huge.pdf"
    _write_pdf(path, [((14400, 14400), b"")])
    sizes: list[tuple[int, int]] = []
    monkeypatch.setattr(rag.index.pdf, "ocr_image", lambda image: sizes.append(image.size) or "大页面上的文字内容。")
    warnings: list[str] = []
    (document,) = load_file(path, warn=warnings.append, limits=ParseLimits(max_pixels=1_000_000))
    assert document.text == "大页面上的文字内容。"
    (width, height), = sizes  # at 144 dpi: 28800 x 28800, 829 Mpx
    assert width * height <= 1_000_000
    assert warnings == ["huge.pdf, page 1: 14400 x 14400 pt is too large to OCR at 144 dpi within 1 Mpx (RAG_MAX_MEGAPIXELS); OCR'd at 5 dpi"]


def test_an_image_over_the_pixel_cap_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    _png_80_mpx(path)  # 80 KB on disk, under PIL's own limits
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("the image was decoded"))
    with pytest.raises(InputError, match="photo.png: 10000 x 8000 pixels is over the 50 Mpx limit for images"):
        load_file(path)


def test_an_image_header_claiming_10_gigapixels_is_refused(tmp_path):
    path = tmp_path / "claim.png"
    _png_claiming(path, 100_000, 100_000)
    with pytest.raises(InputError, match="claim.png: the image is too large to decode"):
        load_file(path)


def test_a_long_line_is_chunked_in_linear_time():
    text = "人工智能产业基金重点投向算力基础设施和大模型应用场景，推动制造业数字化转型。" * 100_000  # 3.7 M characters
    document = Document(doc_id="line", title="", text=text, source="line.txt")
    started = time.process_time()
    chunks = chunk_document(document, ChunkingConfig())  # a table search per chunk: minutes (9 s for a third of it)
    assert time.process_time() - started < 20
    assert len(chunks) > 10_000


# --------------------------------------------------------------------------- the worker process


def _txt_loader(behaviour):
    """A .txt loader that does ``behaviour(path)`` and returns one document titled with the worker's pid."""

    def load(path: Path) -> list[Document]:
        behaviour(path)
        return [Document(doc_id=path.stem, title=str(os.getpid()), text=path.read_text(encoding="utf-8"), source=str(path))]

    return load


def _hang_on_slow(path: Path) -> None:
    if path.stem.startswith("slow"):
        time.sleep(60)


@pytest.fixture
def texts(tmp_path) -> list[Path]:
    paths = [tmp_path / f"{name}.txt" for name in ("a", "slow", "b")]
    for path in paths:
        path.write_text(NORMAL_ARTICLE, encoding="utf-8")
    return paths


def test_a_reader_past_the_timeout_is_killed_and_the_next_file_gets_a_new_worker(texts, monkeypatch):
    monkeypatch.setitem(rag.index.documents._LOADERS, ".txt", _txt_loader(_hang_on_slow))
    with IsolatedReader(ParseLimits(timeout_s=1)) as reader:
        (first,) = reader.read(texts[0])
        started = time.monotonic()
        with pytest.raises(InputError, match=r"^slow.txt: parsing took longer than 1 s \(RAG_PARSE_TIMEOUT\); the file was skipped$"):
            reader.read(texts[1])
        assert time.monotonic() - started < 10
        (after,) = reader.read(texts[2])
    assert int(first.title) != os.getpid() and int(after.title) not in (os.getpid(), int(first.title))


def test_one_worker_reads_file_after_file(texts, monkeypatch):
    monkeypatch.setitem(rag.index.documents._LOADERS, ".txt", _txt_loader(lambda path: None))
    with IsolatedReader() as reader:
        pids = {reader.read(path)[0].title for path in texts}
    assert len(pids) == 1 and str(os.getpid()) not in pids


def test_a_reader_past_the_memory_limit_is_refused(texts, monkeypatch):
    monkeypatch.setitem(rag.index.documents._LOADERS, ".txt", _txt_loader(lambda path: bytearray(400 << 20)))
    with pytest.raises(InputError, match=r"^a.txt: parsing needed more than 100 MB of memory \(RAG_PARSE_MEMORY_MB\); the file was skipped$"):
        load_isolated(texts[0], limits=ParseLimits(memory_mb=100))


def test_a_reader_that_dies_is_refused(texts, monkeypatch):
    monkeypatch.setitem(rag.index.documents._LOADERS, ".txt", _txt_loader(lambda path: os.kill(os.getpid(), signal.SIGKILL)))
    with pytest.raises(InputError, match=r"^a.txt: the reader crashed \(signal SIGKILL\); the file was skipped$"):
        load_isolated(texts[0])


def test_progress_and_warnings_reach_the_parent_in_order(tmp_path, monkeypatch):
    path = tmp_path / "scan.pdf"
    _write_pdf(path, [((612, 792), b"")] * 3)
    pages = iter(["第一页的文字内容。", RuntimeError("bad page"), "第三页的文字内容。"])

    def flaky_ocr(image):
        result = next(pages)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(rag.index.pdf, "ocr_image", flaky_ocr)
    events: list[tuple] = []
    (document,) = load_isolated(path, lambda *done: events.append(done), events.append)
    assert events == [
        ("ocr", 1, 3),
        "scan.pdf, page 2: OCR failed, the page was skipped (RuntimeError: bad page)",
        ("ocr", 2, 3),
        ("ocr", 3, 3),
    ]
    assert [page for _, page in document.pages] == [1, 3]


def test_the_ingest_refuses_a_file_past_the_limits_and_takes_the_others(texts, tmp_path, monkeypatch):
    monkeypatch.setitem(rag.index.documents._LOADERS, ".txt", _txt_loader(_hang_on_slow))
    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    report = ingest(texts, tmp_path / "index", embedder, limits=ParseLimits(timeout_s=1))
    assert report.files_failed == [(str(texts[1]), "slow.txt: parsing took longer than 1 s (RAG_PARSE_TIMEOUT); the file was skipped")]
    assert sorted(report.documents_added) == ["a", "b"]
    assert {record.doc_id for record in open_store(tmp_path / "index").documents()} == {"a", "b"}
    assert Retriever(tmp_path / "index", embedder).search(NORMAL_QUERY, k=1)[0].chunk.doc_id in {"a", "b"}
