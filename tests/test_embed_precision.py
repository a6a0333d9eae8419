"""Embedding precision: int8 (torch dynamic quantization) next to fp32, recorded in the model id."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import IndexStoreError, ModelError
from rag.index.chunking import ChunkingConfig
from rag.index.faiss_store import FaissStore
from rag.models.embedders import embedder_for, make_embedder

PASSAGES = [
    "河南省设立总规模30亿元的人工智能产业基金，重点投向算力基础设施。",
    "截至2025年一季度，八大算力枢纽节点总算力规模达215.5 EFLOPS。",
    "广西计划组建认缴总规模不低于100亿元的人工智能产业基金。",
    "2024年我国人形机器人市场规模约为27.6亿元，预计2025年将突破50亿元。",
]


def test_an_unknown_precision_is_refused(tmp_path):
    with pytest.raises(ModelError, match="RAG_EMBED_PRECISION"):
        make_embedder("fake:hashing", tmp_path, precision="int4")


@pytest.mark.real
def test_int8_stays_close_to_fp32_and_is_recorded(tmp_path):
    fp32 = embedder_for(replace(Settings(), embed_precision="fp32"))
    int8 = embedder_for(Settings())  # the default
    assert int8.model_id == fp32.model_id + "#int8" and int8.dim == fp32.dim
    cosines = np.sum(fp32.embed(PASSAGES) * int8.embed(PASSAGES), axis=1)
    assert cosines.min() >= 0.99, cosines
    ranked = np.argsort(-(int8.embed(["八大算力枢纽节点总算力规模是多少？"], kind="query") @ int8.embed(PASSAGES).T)[0])
    assert ranked[0] == 1
    store = FaissStore.empty(tmp_path / "index", fp32.model_id, fp32.dim, ChunkingConfig())
    with pytest.raises(IndexStoreError, match="#int8") as refused:
        store.check_model(int8.model_id, int8.dim)
    assert "RAG_EMBED_PRECISION=fp32" in str(refused.value)  # how to open it without rebuilding


@pytest.mark.real
def test_the_bundled_embedder_counts_tokens_as_its_tokenizer_does():
    embedder = embedder_for(Settings())
    latin, chinese = "information technology infrastructure", "人工智能产业基金重点投向算力基础设施"
    counts = embedder.token_lengths([latin, chinese])  # type: ignore[attr-defined]
    assert counts == [len(ids) for ids in embedder._model.tokenizer([latin, chinese])["input_ids"]]  # type: ignore[attr-defined]
    assert embedder.count_tokens([latin, chinese]) == sum(counts)  # type: ignore[attr-defined]
    assert len(latin) > len(chinese) and counts[0] < counts[1]  # why the ingest sorts by tokens, not characters
    many = [f"第{n}段：{chinese}" for n in range(1030)]  # more than one slice of the tokenizer calls
    assert embedder.token_lengths(many) == [len(ids) for ids in embedder._model.tokenizer(many)["input_ids"]]  # type: ignore[attr-defined]


@pytest.mark.real
def test_loading_the_int8_embedder_prints_no_deprecation_warning(tmp_path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embedder_for(Settings()).embed(PASSAGES[:1])
    assert not [w for w in caught if "deprecated" in str(w.message)], [str(w.message) for w in caught]


@pytest.mark.real
def test_two_ingests_of_the_same_documents_in_different_orders_give_identical_vectors(tmp_path):
    """int8 activations are quantized per batch; ingest batches ties of token length by content hash,
    so the same documents share the same batches whatever order they come in (40 texts of one token
    length: in file order, the first 32 would be one batch)."""
    from collections import defaultdict

    from rag.index.chunking import chunk_document
    from rag.index.documents import load_file
    from rag.index.ingest import ingest
    from rag.index.locations import open_store

    embedder = embedder_for(Settings())  # int8, the default
    by_length = defaultdict(list)
    for i, (city, rate) in enumerate((c, r) for c in ("北京", "上海", "广州", "深圳", "成都", "武汉") for r in range(20, 60)):
        path = tmp_path / "docs" / f"{i:03d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"{city}上半年地区生产总值同比增长{rate / 10}%，居民消费价格上涨{rate % 7}%。\n", encoding="utf-8")
        [text] = [chunk.embed_text for doc in load_file(path) for chunk in chunk_document(doc, ChunkingConfig())]
        by_length[embedder.token_lengths([text])[0]].append(path)
    files = max(by_length.values(), key=len)[:40]
    assert len(files) == 40
    vectors = []
    for name, order in (("forward", files), ("reversed", files[::-1])):
        ingest(order, tmp_path / name, embedder)
        store = open_store(tmp_path / name)
        by_id = {chunk.chunk_id: store.vectors[row] for row, chunk in enumerate(store.chunks)}
        vectors.append(np.stack([by_id[key] for key in sorted(by_id)]))
    assert np.array_equal(vectors[0], vectors[1])
