"""Loading and cleaning: reflow of hard-wrapped Chinese, article splitting, file formats."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLE_CORPUS, write_chinese_pdf, write_docx

from rag.errors import InputError
from rag.index.documents import (
    Document,
    decode_text,
    is_hard_wrapped,
    iter_input_files,
    load_file,
    normalise_whitespace,
    reflow,
    split_articles,
)

# Hard-wrapped at about 14 characters, as text extracted from a newspaper PDF.
WRAPPED = (
    "日前，国务院印发《关于深入\n"
    "实施“人工智能+”行动的意见》（以\n"
    "下简称《意见》）。加大人\n"
    "工智能领域金融和财政支持力度，\n"
    "发展壮大长期资本、耐心资本、战\n"
    "略资本，完善风险分担和投资退出\n"
    "机制。\n"
    "\n"
    "今年以来，浙江、天津、广西、\n"
    "河南、安徽等多地政府出台政策，\n"
    "支持人工智能产业生态发展，为AI+\n"
    "\n"
    "“破局”提供资金，助力企业打通场\n"
    "景建设落地“最后一公里”。\n"
)

SAMPLE_000 = next(SAMPLE_CORPUS.glob("000_*.txt"))


# --------------------------------------------------------------------------- reflow


def test_wrapped_text_is_detected_and_plain_text_is_not():
    assert is_hard_wrapped(WRAPPED)
    assert not is_hard_wrapped("第一段。\n第二段。\n")


def test_reflow_joins_words_broken_across_lines():
    text = reflow(WRAPPED)
    assert "加大人工智能领域" in text
    assert "人\n工" not in text and "\n工智能" not in text
    assert "战略资本" in text and "以下简称" in text


def test_reflow_keeps_paragraph_breaks():
    paragraphs = reflow(WRAPPED).split("\n\n")
    assert len(paragraphs) == 2
    assert paragraphs[0].startswith("日前，") and paragraphs[0].endswith("投资退出机制。")
    assert paragraphs[1].startswith("今年以来，")


def test_reflow_rejoins_a_sentence_cut_by_a_blank_line():
    assert "为AI+“破局”提供资金" in reflow(WRAPPED)


def test_reflow_puts_a_space_between_wrapped_latin_words():
    lines = ["The fund will support", "patient capital and", "new computing centres", "across the province"] * 2
    assert "support patient capital" in reflow("\n".join(lines))


def test_text_that_is_not_wrapped_keeps_one_paragraph_per_line():
    text = (
        "河南省设立总规模30亿元的人工智能产业基金，壮大耐心资本，探索投补联动、投贷联动等支持机制，满足企业不同阶段的融资需求。\n"
        "广西计划组建认缴总规模不低于100亿元的广西人工智能产业基金，同步推动设立骨干企业数智化转型升级基金。\n"
        "安徽加快运营总规模不低于200亿元的省人工智能产业主题基金。"
    )
    paragraphs = reflow(text).split("\n\n")
    assert [p[:2] for p in paragraphs] == ["河南", "广西", "安徽"]


def test_normalise_whitespace_drops_invisible_characters():
    text = normalise_whitespace("人工\u200b智能\r\n产业\u3000基金\x07")
    assert text == "人工智能\n产业 基金"


# --------------------------------------------------------------------------- articles


def test_sample_file_splits_into_four_articles_with_headlines_after_bodies():
    documents = load_file(SAMPLE_000)
    assert len(documents) == 4
    assert documents[0].title == "多地设立人工智能产业基金 助力AI+“破局”"
    assert documents[1].title == "中国AI手机与电脑产业驶入发展快车道"
    assert documents[-1].title == "脑机接口领域吸引资本加速流入"
    assert documents[0].meta["byline"] == "本报记者 吴晓璐"
    assert [d.doc_id for d in documents] == [f"{SAMPLE_000.stem}#{n}" for n in range(1, 5)]
    first = documents[0].text
    assert first.startswith("日前，国务院印发《关于深入实施“人工智能+”行动的意见》")
    assert "设立总规模 30亿元的人工智能产业基金" in first
    # the next article's headline belongs to that article, not to the end of this body
    assert "中国AI手机与电脑产业驶入发展快车道" not in first
    assert "本报记者" not in first


def test_headline_before_byline_layout():
    text = (
        "人工智能基金加速落地\n\n本报记者 张三\n\n"
        "河南省设立总规模30亿元的人工智能产业基金，重点支持算力基础设施。\n\n"
        "基金将探索投贷联动机制，满足企业不同阶段的融资需求。\n\n"
        "算力网络建设提速\n\n本报记者 李四\n\n"
        "八大算力枢纽节点总算力规模达215.5 EFLOPS，较上年增长明显。\n"
    )
    articles = split_articles(text)
    assert [(a.title, a.byline) for a in articles] == [
        ("人工智能基金加速落地", "本报记者 张三"),
        ("算力网络建设提速", "本报记者 李四"),
    ]
    assert "30亿元" in articles[0].text and "投贷联动" in articles[0].text
    assert "算力网络建设提速" not in articles[0].text
    assert "215.5 EFLOPS" in articles[1].text


def test_wrapped_line_starting_with_reporter_is_not_a_byline():
    text = (
        " 本报记者 张三\n\n"
        "今年以来，多地政府出台政策，支持\n人工智能产业生态发展，并成立人工\n智能产业基金，加大融资支持力度。\n"
        "记者了解到，目前多地已设立\n人工智能产业基金，总规模超过\n百亿元。基金重点投向算力基础\n"
        "设施和大模型应用场景，助力企业\n打通落地的最后一公里。\n\n"
        "人工智能基金加速落地\n"
    )
    articles = split_articles(text)
    assert len(articles) == 1
    assert articles[0].title == "人工智能基金加速落地"
    assert "记者了解到" in articles[0].text


def test_file_without_bylines_is_one_document_titled_by_its_first_line(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("算力网络建设提速\n\n八大算力枢纽节点总算力规模达215.5 EFLOPS。\n", encoding="utf-8")
    [document] = load_file(path)
    assert document.doc_id == "one"
    assert document.title == "算力网络建设提速"
    assert document.source == str(path)
    assert "215.5 EFLOPS" in document.text


# --------------------------------------------------------------------------- formats


def test_markdown_title_and_markup(tmp_path):
    path = tmp_path / "note.md"
    path.write_text(
        "# 人形机器人产业观察\n\n**2025年**市场规模预计突破[50亿元](https://example.com)。\n![图](x.png)\n",
        encoding="utf-8",
    )
    [document] = load_file(path)
    assert document.title == "人形机器人产业观察"
    assert "2025年市场规模预计突破50亿元。" in document.text
    assert "**" not in document.text and "example.com" not in document.text and "x.png" not in document.text


def test_html_takes_h1_title_and_drops_scripts(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>站点标题</title><script>var secret = 1;</script></head>"
        "<body><nav>首页 导航</nav><h1>广西设立人工智能产业基金</h1>"
        "<p>计划组建认缴总规模不低于100亿元的广西人工智能产业基金。</p></body></html>",
        encoding="utf-8",
    )
    [document] = load_file(path)
    assert document.title == "广西设立人工智能产业基金"
    assert "100亿元" in document.text
    assert "secret" not in document.text and "导航" not in document.text


def test_docx_paragraphs(tmp_path):
    path = write_docx(
        tmp_path / "report.docx",
        [
            "安徽人工智能产业主题基金",
            "加快运营总规模不低于200亿元的省人工智能产业主题基金。",
            "以参股方式支持市国资平台设立子基金。",
        ],
    )
    [document] = load_file(path)
    assert document.title == "安徽人工智能产业主题基金"
    assert "200亿元" in document.text and "子基金" in document.text


def test_pdf_with_chinese_text_layer(tmp_path):
    path = write_chinese_pdf(tmp_path / "paper.pdf", ["河南设立总规模30亿元的人工智能产业基金。", "基金重点投向算力基础设施。"])
    [document] = load_file(path)
    assert "30亿元的人工智能产业基金" in document.text
    assert "算力基础设施" in document.text


def test_jsonl_rows_with_pid_or_id(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [
        {"pid": "p-1", "title": "河南基金", "text": "设立总规模30亿元的人工智能产业基金。"},
        {"id": 7, "text": "广西计划组建不低于100亿元的产业基金。"},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    documents = load_file(path)
    assert [(d.doc_id, d.title) for d in documents] == [
        ("p-1", "河南基金"),
        ("7", "广西计划组建不低于100亿元的产业基金。"),
    ]
    assert documents[1].text == "广西计划组建不低于100亿元的产业基金。"


def test_jsonl_bad_line_names_the_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"pid": "a", "text": "第一行。"}\n{"pid": "b", "text": \n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        load_file(path)


def test_jsonl_row_without_text_is_refused(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"pid": "a", "body": "没有 text 字段"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 1.*'text'"):
        load_file(path)


def test_gb18030_text_decodes(tmp_path):
    path = tmp_path / "legacy.txt"
    path.write_bytes("河南设立人工智能产业基金\n\n总规模30亿元，壮大耐心资本。\n".encode("gb18030"))
    [document] = load_file(path)
    assert document.title == "河南设立人工智能产业基金"
    assert "总规模30亿元" in document.text


def test_utf8_bom_is_dropped():
    assert decode_text("\ufeff人工智能".encode("utf-8"), "x.txt") == "人工智能"


# --------------------------------------------------------------------------- bad input


def test_binary_data_is_refused(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\x00\x01\x02PK\x00" * 100)
    with pytest.raises(InputError, match="binary"):
        load_file(path)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.txt"
    path.touch()
    with pytest.raises(InputError, match="empty"):
        load_file(path)


def test_whitespace_only_file_has_no_text(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n  \n\u3000\n", encoding="utf-8")
    with pytest.raises(InputError, match="no text"):
        load_file(path)


def test_unknown_extension_is_refused_with_the_supported_list(tmp_path):
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"data")
    with pytest.raises(InputError, match=r"unsupported file type '\.xlsx'.*\.docx"):
        load_file(path)


def test_broken_pdf_and_docx_are_input_errors(tmp_path):
    pdf = tmp_path / "broken.pdf"
    pdf.write_bytes(b"this is not a pdf at all " * 40)
    docx_file = tmp_path / "broken.docx"
    docx_file.write_bytes(b"PK\x03\x04 not really a zip " * 40)
    with pytest.raises(InputError, match="cannot read this PDF"):
        load_file(pdf)
    with pytest.raises(InputError, match="cannot read this Word file"):
        load_file(docx_file)


def test_folders_expand_to_supported_files_and_missing_paths_fail(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("乙", encoding="utf-8")
    (tmp_path / "sub" / "a.md").write_text("甲", encoding="utf-8")
    (tmp_path / "skip.xlsx").write_text("x", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("x", encoding="utf-8")
    assert [p.name for p in iter_input_files([tmp_path])] == ["b.txt", "a.md"]
    with pytest.raises(InputError, match="no such file or folder"):
        list(iter_input_files([tmp_path / "missing.txt"]))


def test_content_hash_depends_on_title_and_text():
    a = Document("d", "标题", "正文。", "s")
    assert a.content_hash == Document("other-id", "标题", "正文。", "elsewhere").content_hash
    assert a.content_hash != Document("d", "标题", "正文！", "s").content_hash
    assert a.content_hash != Document("d", "标题二", "正文。", "s").content_hash
