"""Chunking on Chinese sentence boundaries: sizes, whole numbers, stable ids."""

from __future__ import annotations

import re

import pytest
from conftest import SAMPLE_CORPUS

from rag.index.chunking import ChunkingConfig, chunk_document, chunk_id_for
from rag.index.documents import Document, load_file

# Realistic report text full of figures, with full-width and half-width punctuation.
REPORT = (
    "2025年前三季度，全国规模以上工业企业实现利润总额5347.9亿元，同比增长3.2%。"
    "其中，高技术制造业利润增长明显，装备制造业利润增长较快，2025年9月当月利润增速回升至21.6%。"
    "国家统计局工业司首席统计师表示，2025年以来，各地区各部门加力实施更加积极的宏观政策，"
    "新动能加快成长，工业企业利润延续恢复态势。截至2025年一季度，八大算力枢纽节点总算力规模达215.5 EFLOPS；"
    "全国在用算力中心机架总规模超过830万标准机架，智能算力规模达到788 EFLOPS。"
    "全年规模以上工业企业实现利润总额达到74,310.5亿元,同比增长3.3%,其中国有控股企业实现利润总额23,180.2亿元,"
    "股份制企业实现利润总额55,231.7亿元,外商及港澳台投资企业实现利润总额18,100.8亿元,私营企业实现利润总额21,562.9亿元。"
)


def _cut_inside_number(text: str, start: int, end: int) -> bool:
    """True when the span [start, end) of ``text`` begins or ends inside a number."""
    digitish = re.compile(r"[\d.,]")
    cut_at_start = start > 0 and digitish.match(text[start - 1]) and text[start].isdigit()
    cut_at_end = end < len(text) and digitish.match(text[end - 1]) and text[end].isdigit()
    return bool(cut_at_start or cut_at_end)


@pytest.mark.parametrize("size,overlap", [(300, 60), (120, 30), (60, 10)])
def test_chunks_never_cut_a_number(size, overlap):
    document = Document("report", "工业企业利润", REPORT * 2, "report.txt")
    chunks = chunk_document(document, ChunkingConfig(size, overlap))
    assert len(chunks) > 1
    for chunk in chunks:
        start = document.text.find(chunk.text)
        assert start >= 0, chunk.text
        assert not _cut_inside_number(document.text, start, start + len(chunk.text)), chunk.text
    figures = {"5347.9亿元", "2025年", "215.5 EFLOPS", "74,310.5亿元", "21,562.9亿元"}
    for figure in figures:
        assert any(figure in chunk.text for chunk in chunks), figure


def test_sample_corpus_chunks_keep_figures_whole_and_fit_the_size():
    config = ChunkingConfig()
    for path in sorted(SAMPLE_CORPUS.glob("*.txt")):
        for document in load_file(path):
            for chunk in chunk_document(document, config):
                assert 0 < len(chunk.text) <= config.chunk_size
                start = document.text.find(chunk.text)
                assert start >= 0 and not _cut_inside_number(document.text, start, start + len(chunk.text))


def test_henan_fund_figure_stays_in_one_chunk():
    [document] = [d for d in load_file(next(SAMPLE_CORPUS.glob("000_*.txt"))) if d.doc_id.endswith("#1")]
    chunks = chunk_document(document, ChunkingConfig())
    assert any("总规模 30亿元的人工智能产业基金" in c.text for c in chunks)


@pytest.mark.parametrize("size", [50, 80, 200, 300])
def test_chunk_sizes_respect_the_limit(size):
    document = Document("d", "t", REPORT * 3, "s")
    chunks = chunk_document(document, ChunkingConfig(size, size // 5))
    assert chunks and max(len(c.text) for c in chunks) <= size


def test_chunks_split_at_sentence_ends_first():
    document = Document("d", "t", REPORT, "s")
    chunks = chunk_document(document, ChunkingConfig(300, 60))
    # every chunk but the last ends a sentence or clause, never mid-phrase
    for chunk in chunks[:-1]:
        assert chunk.text[-1] in "。；，,", chunk.text[-10:]
    assert sum(c.text.endswith(("。", "；")) for c in chunks[:-1]) >= len(chunks[:-1]) - 1


def test_chunks_overlap_and_keep_order():
    document = Document("d", "t", REPORT, "s")
    chunks = chunk_document(document, ChunkingConfig(120, 40))
    assert [c.position for c in chunks] == list(range(len(chunks)))
    starts = [document.text.find(c.text) for c in chunks]
    assert starts == sorted(starts)
    overlapping = sum(starts[n + 1] < starts[n] + len(chunks[n].text) for n in range(len(chunks) - 1))
    assert overlapping >= 1


def test_chunk_ids_are_content_hashes_stable_across_runs():
    document = Document("doc-1", "标题", REPORT, "a.txt")
    first = chunk_document(document, ChunkingConfig())
    again = chunk_document(Document("doc-1", "标题", REPORT, "moved/a.txt"), ChunkingConfig())
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert all(c.chunk_id == chunk_id_for("doc-1", c.text) for c in first)
    assert len({c.chunk_id for c in first}) == len(first)
    other_doc = chunk_document(Document("doc-2", "标题", REPORT, "a.txt"), ChunkingConfig())
    assert {c.chunk_id for c in first}.isdisjoint(c.chunk_id for c in other_doc)


def test_editing_one_sentence_changes_only_its_chunk_ids():
    paragraphs = [f"第{n}段：河南省设立总规模{n}0亿元的产业基金，支持算力基础设施建设。" * 3 for n in range(1, 6)]
    original = Document("d", "t", "\n\n".join(paragraphs), "s")
    paragraphs[2] = paragraphs[2].replace("算力", "数据")
    edited = Document("d", "t", "\n\n".join(paragraphs), "s")
    before = {c.chunk_id for c in chunk_document(original, ChunkingConfig(120, 0))}
    after = {c.chunk_id for c in chunk_document(edited, ChunkingConfig(120, 0))}
    assert before & after and before != after


def test_embed_text_carries_the_title():
    [chunk] = chunk_document(Document("d", "河南基金", "总规模30亿元。", "s"), ChunkingConfig())
    assert chunk.embed_text == "河南基金\n总规模30亿元。"
    [untitled] = chunk_document(Document("d", "", "总规模30亿元。", "s"), ChunkingConfig())
    assert untitled.embed_text == "总规模30亿元。"


def test_config_round_trips_through_the_manifest_dict():
    config = ChunkingConfig(200, 40)
    assert ChunkingConfig(**config.to_dict()) == config
    assert set(config.to_dict()) == {"chunk_size", "chunk_overlap", "version"}
