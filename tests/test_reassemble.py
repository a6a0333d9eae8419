"""A document rebuilt from its overlapping chunks, with each chunk's place in it."""

from __future__ import annotations

from conftest import SAMPLE_CORPUS

from rag.index.chunking import Chunk, ChunkingConfig, chunk_document
from rag.index.documents import iter_input_files, load_file
from rag.index.reassemble import reassemble


def test_overlapping_chunks_give_back_the_article_without_repeats():
    documents = (d for path in iter_input_files([SAMPLE_CORPUS]) for d in load_file(path))
    article = next(d for d in documents if len(d.text) > 1500)
    chunks = chunk_document(article, ChunkingConfig(200, 60))
    assert len(chunks) > 4
    rebuilt = reassemble(chunks)
    squash = lambda text: "".join(text.split())  # noqa: E731 - the splitter drops whitespace at chunk edges
    assert squash(rebuilt.text) == squash(article.text)
    for chunk in chunks:
        start, end = rebuilt.spans[chunk.chunk_id]
        assert rebuilt.text[start:end] == chunk.text


def test_chunks_without_overlap_are_joined_by_a_line_break():
    chunks = [Chunk(f"c{n}", "d", "t", "s", text, n) for n, text in enumerate(["第一段。", "第二段。"])]
    rebuilt = reassemble(chunks)
    assert rebuilt.text == "第一段。\n第二段。"
    assert rebuilt.spans == {"c0": (0, 4), "c1": (5, 9)}
    assert reassemble([]).text == ""
