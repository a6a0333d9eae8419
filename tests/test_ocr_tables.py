"""Scanned PDFs and images (OCR), page numbers, and tables, on real files generated here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scans import image_pdf, joined_pdf, page_image, table_docx, table_pdf, text_pdf, wrap

from rag.index.chunking import Chunk, ChunkingConfig, chunk_document
from rag.index.documents import Document, load_file, split_articles
from rag.index.ingest import ingest
from rag.index.ocr import reading_order
from rag.index.pages import page_marker, take_pages
from rag.index.tables import TableHeaders, table_markdown
from rag.qa.retriever import Retriever
from rag.web.render import ChatTurn, sources_html

FUND = "河南省人民政府发布支持人工智能产业生态发展若干政策措施，提出设立总规模30亿元的人工智能产业基金，壮大耐心资本，探索投补联动、投贷联动等支持机制。"
COMPUTE = "截至2025年一季度，八大算力枢纽节点总算力规模达215.5 EFLOPS。全国数据中心机架总规模持续增长，智能算力占比明显提高。"
GREEN = "第一页有文字层：数据中心绿色低碳发展取得进展，新建大型数据中心电能利用效率降至1.25以下。"
HEADER = ["城市", "基金规模", "设立年份"]
ROWS = [HEADER] + [[f"城市{i}", f"{i * 3}亿元", f"{2000 + i}年"] for i in range(1, 31)]
BEFORE = "下表列出各地人工智能产业基金的规模。"
AFTER = "以上数据来自各地政府公开文件。"


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def row_line(row: list[str]) -> str:
    return "| " + " | ".join(row) + " |"


# ------------------------------------------------------------------ page markers and tables


def test_page_starts_survive_article_splitting_and_reflow():
    text = f"{page_marker(1)}本报记者 张三\n第一篇的正文。\n\n{page_marker(2)}第一篇在第二页继续。\n本报记者 李四\n第二篇的正文。"
    articles = split_articles(text)
    assert [a.byline for a in articles] == ["本报记者 张三", "本报记者 李四"]  # markers never hide a byline
    body, pages = take_pages(articles[0].text.strip(), None)
    assert body == "第一篇的正文。\n\n第一篇在第二页继续。"
    assert pages == ((0, 1), (body.index("第一篇在"), 2))
    document = Document("d", "t", body, "s", pages=pages)
    assert [document.page_at(i) for i in (0, body.index("第二页"))] == [1, 2]
    assert Document("d", "t", body, "s").page_at(5) is None  # files without pages


def test_a_page_carries_over_into_the_next_article(tmp_path):
    text = f"{page_marker(4)}本报记者 张三\n第一篇的正文。\n本报记者 李四\n第二篇也在第四页。\n\n{page_marker(5)}第二篇在第五页结束。"
    path = tmp_path / "paper.txt"
    from rag.index.documents import _documents_from_text

    first, second = _documents_from_text(path, text, paged=True)
    assert first.pages == ((0, 4),)
    assert second.page_at(0) == 4 and second.page_at(second.text.index("第五页")) == 5
    path.write_text(text, encoding="utf-8")  # the same characters in a text file are not pages
    assert [doc.pages for doc in load_file(path)] == [(), ()]


def test_tables_render_as_rows_and_a_split_table_repeats_its_header():
    table = table_markdown([["城市", "规模"], ["郑州", "30|亿"], [None, ""], ["南宁", "100\n亿元"]])
    assert table.split("\n") == ["| 城市 | 规模 |", "| --- | --- |", "| 郑州 | 30\\|亿 |", "| 南宁 | 100 亿元 |"]
    text = f"引言。\n\n{table}\n\n结语。"
    headers = TableHeaders(text)
    assert headers.at(text.index("| 南宁")) == "| 城市 | 规模 |\n| --- | --- |"
    assert headers.at(text.index("| 城市")) == ""  # the chunk already starts with the header
    assert headers.at(text.index("结语")) == ""


def test_docx_table_rows_stay_whole_and_every_chunk_has_the_header(tmp_path):
    (document,) = load_file(table_docx(tmp_path / "funds.docx", BEFORE, ROWS, AFTER))
    assert document.text.startswith(BEFORE) and document.text.endswith(AFTER)
    assert document.pages == ()
    chunks = chunk_document(document, ChunkingConfig(200, 40))
    table_chunks = [c for c in chunks if "| 城市" in c.text]
    assert len(table_chunks) >= 3  # the table was split
    for chunk in table_chunks:
        assert chunk.text.startswith(row_line(HEADER) + "\n| --- | --- | --- |"), chunk.text
        assert chunk.page is None
    chunked_rows = {line for c in chunks for line in c.text.split("\n")}
    for row in ROWS[1:]:
        assert row_line(row) in chunked_rows  # every row whole on one line of some chunk


def test_pdf_table_is_read_as_rows_between_its_paragraphs(tmp_path):
    (document,) = load_file(table_pdf(tmp_path / "funds.pdf", BEFORE, ROWS[:8], AFTER))
    lines = document.text.split("\n")
    assert row_line(HEADER) in lines and row_line(ROWS[7]) in lines, document.text
    assert document.text.index(BEFORE) < document.text.index(row_line(HEADER)) < document.text.index(AFTER)
    assert document.pages[0] == (0, 1)


def test_when_table_finding_fails_the_text_layer_still_goes_in(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("pdfminer cannot parse this")

    monkeypatch.setattr("pdfplumber.open", broken)
    (document,) = load_file(table_pdf(tmp_path / "funds.pdf", BEFORE, ROWS[:8], AFTER))
    assert BEFORE in document.text and "城市7" in document.text and "| 城市" not in document.text


def test_a_table_cell_is_found_with_its_header(tmp_path, embedder):
    table_docx(tmp_path / "funds.docx", BEFORE, ROWS, AFTER)
    ingest([tmp_path / "funds.docx"], tmp_path / "index", embedder, ChunkingConfig(200, 40))
    hit = Retriever(tmp_path / "index", embedder).search("城市17 基金规模", k=1)[0]
    assert row_line(["城市17", "51亿元", "2017年"]) in hit.chunk.text.split("\n")
    assert hit.chunk.text.startswith(row_line(HEADER))


# ------------------------------------------------------------------ OCR


def test_reading_order_joins_boxes_into_lines_and_paragraphs():
    def box(left, top, right, bottom, text):
        return [[[left, top], [right, top], [right, bottom], [left, bottom]], text, 0.99]

    boxes = [
        box(60, 200, 400, 230, "第二段。"),
        box(300, 62, 900, 92, "人工智能产业"),  # same line as the next box, found out of order
        box(60, 60, 290, 90, "河南设立"),
        box(60, 105, 700, 135, "基金。"),  # ends short: the paragraph ends
        box(60, 150, 900, 180, "GPU 集群"),
        box(60, 195 + 45, 900, 270, "AI"),
        box(60, 285, 900, 315, "model"),
    ]
    assert reading_order(boxes).split("\n") == ["河南设立人工智能产业基金。", "GPU 集群第二段。", "AI model"]
    assert reading_order([]) == ""


@pytest.fixture(scope="module")
def mixed_pdf(tmp_path_factory) -> tuple[Path, list, list[Document]]:
    """A text page followed by two scanned pages, loaded once (OCR takes seconds per page)."""
    folder = tmp_path_factory.mktemp("mixed")
    text = text_pdf(folder / "text.pdf", [GREEN])
    scanned = image_pdf(folder / "scanned.pdf", [wrap(FUND), wrap(COMPUTE)])
    path = joined_pdf(folder / "mixed.pdf", [text, scanned])
    calls: list = []
    return path, calls, load_file(path, progress=lambda *args: calls.append(args))


def test_scanned_pages_are_ocrd_page_by_page_with_progress(mixed_pdf):
    _, calls, (document,) = mixed_pdf
    text = squash(document.text)
    assert squash(GREEN) in text  # the text layer, read as before
    assert "设立总规模30亿元的人工智能产业基金" in text and "215.5" in text  # OCR of pages 2 and 3
    assert calls == [("ocr", 1, 2), ("ocr", 2, 2)]
    assert [page for _, page in document.pages] == [1, 2, 3]
    assert document.page_at(document.text.index("30亿元")) == 2
    assert document.page_at(document.text.index("215.5")) == 3


def test_chunks_never_span_pages_and_keep_their_page(mixed_pdf):
    _, _, (document,) = mixed_pdf
    chunks = chunk_document(document, ChunkingConfig())  # the whole file would fit in one chunk
    assert [c.page for c in chunks] == [1, 2, 3]
    for chunk in chunks:
        start = document.text.index(chunk.text)
        assert document.page_at(start) == document.page_at(start + len(chunk.text) - 1) == chunk.page
    assert next(c for c in chunks if "30亿元" in c.text).page_label == "第2页"


def test_an_image_file_is_ocrd_without_pages(tmp_path):
    page_image(wrap(FUND)).save(tmp_path / "scan.png")
    (document,) = load_file(tmp_path / "scan.png")
    assert "设立总规模30亿元的人工智能产业基金" in squash(document.text)
    assert document.pages == () and chunk_document(document, ChunkingConfig())[0].page is None


def test_a_page_that_fails_is_reported_and_the_rest_goes_in(tmp_path, embedder, monkeypatch):
    path = image_pdf(tmp_path / "scan.pdf", [["第一页"], ["第二页"], ["第三页"]])
    pages = iter([FUND, RuntimeError("bad page"), COMPUTE])

    def flaky_ocr(image):
        result = next(pages)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr("rag.index.pdf.ocr_image", flaky_ocr)
    report = ingest([path], tmp_path / "index", embedder, ChunkingConfig(80, 10))
    assert report.files_failed == [] and len(report.documents_added) == 1
    assert len(report.warnings) == 1 and "scan.pdf, page 2" in report.warnings[0] and "bad page" in report.warnings[0]
    hits = Retriever(tmp_path / "index", embedder).search("215.5 EFLOPS 算力", k=5)
    assert {hit.chunk.page for hit in hits} == {1, 3}


def test_an_unreadable_image_is_a_clear_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(Exception, match="broken.png: cannot read this image"):
        load_file(tmp_path / "broken.png")


# ------------------------------------------------------------------ where the page is shown


def test_the_source_card_and_search_json_show_the_page():
    chunk = Chunk("c1", "scan", "扫描件", "/uploads/scan.pdf", FUND, 0, page=2)
    from rag.qa.retriever import SearchHit

    hit = SearchHit(rank=1, chunk=chunk, score=1.0, lexical_overlap=True)
    card = sources_html([ChatTurn("问题", passages=[hit])])
    assert "scan.pdf" in card and "第2页" in card
    assert hit.to_dict()["page"] == 2
    plain = SearchHit(rank=1, chunk=Chunk("c2", "d", "t", "/a.txt", "正文", 0), score=1.0, lexical_overlap=True)
    assert "页" not in sources_html([ChatTurn("问题", passages=[plain])]) and plain.to_dict()["page"] is None
