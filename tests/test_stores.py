"""The on-disk index: manifest, generations, atomic writes, refusal of damaged or foreign indexes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FAKE_MODEL_ID, index_state, manifest_of

from rag.errors import IndexStoreError
from rag.index.chunking import Chunk, ChunkingConfig, chunk_id_for
from rag.index.faiss_store import INDEX_FORMAT, MANIFEST, FaissStore, write_lock
from rag.index.lexical import tokenize
from rag.index.store import DocumentRecord, SourceRecord

TEXTS = [
    "河南省设立总规模30亿元的人工智能产业基金。",
    "广西计划组建不低于100亿元的人工智能产业基金。",
    "八大算力枢纽节点总算力规模达215.5 EFLOPS。",
]


def _fill(store: FaissStore, embedder, texts=TEXTS) -> None:
    chunks = [Chunk(chunk_id_for("doc", t), "doc", "标题", "/src/a.txt", t, n) for n, t in enumerate(texts)]
    documents = [DocumentRecord("doc", "标题", "/src/a.txt", "hash", len(chunks), sum(map(len, texts)), "now")]
    sources = [SourceRecord("/src/a.txt", "sha", ["doc"], "now")]
    store.replace_contents(
        chunks, [tokenize(c.embed_text) for c in chunks], embedder.embed([c.embed_text for c in chunks]), documents, sources
    )


@pytest.fixture
def saved(index_dir, embedder) -> FaissStore:
    store = FaissStore.empty(index_dir, embedder.model_id, embedder.dim, ChunkingConfig())
    _fill(store, embedder)
    store.save()
    return store


def test_save_then_load_round_trips(saved, index_dir, embedder):
    loaded = FaissStore.load(index_dir)
    assert loaded.chunks == saved.chunks
    assert loaded.tokens == saved.tokens
    np.testing.assert_allclose(loaded.vectors, embedder.embed([c.embed_text for c in saved.chunks]), atol=1e-6)
    assert loaded.model_id == FAKE_MODEL_ID and loaded.dim == embedder.dim
    assert loaded.chunking == ChunkingConfig()
    assert [d.doc_id for d in loaded.documents()] == ["doc"]
    assert list(loaded.sources()) == ["/src/a.txt"]


def test_manifest_describes_the_index(saved, index_dir, embedder):
    manifest = manifest_of(index_dir)
    assert manifest["format"] == INDEX_FORMAT
    assert manifest["generation"] == "gen-000001"
    assert manifest["embedding"] == {"model_id": FAKE_MODEL_ID, "dim": embedder.dim}
    assert manifest["chunking"] == ChunkingConfig().to_dict()
    assert manifest["n_chunks"] == 3
    assert {"rag", "faiss-cpu", "scipy", "jieba"} <= set(manifest["versions"])
    assert manifest["updated_at"]
    chunk_rows = (index_dir / "gen-000001" / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(row)["text"] for row in chunk_rows] == TEXTS
    assert "30" in json.loads(chunk_rows[0])["tokens"]


def test_each_save_writes_a_new_generation_and_drops_the_old(saved, index_dir):
    saved.save()
    assert manifest_of(index_dir)["generation"] == "gen-000002"
    assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-000002"]
    assert not list(index_dir.glob(".gen-*"))


def test_search_structures_find_the_stored_chunks(saved, embedder):
    scores, rows = saved.faiss_index().search(embedder.embed([saved.chunks[2].embed_text]), 1)
    assert rows[0][0] == 2 and scores[0][0] == pytest.approx(1.0, abs=1e-5)
    assert saved.bm25_index().search(tokenize("广西"), 3)[0][0] == 1


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexStoreError, match="no index at .*rag ingest"):
        FaissStore.load(tmp_path / "nothing-here")


def test_corrupted_manifest_json_is_refused(saved, index_dir):
    (index_dir / MANIFEST).write_text('{"format": "rag-zh-index/1", "generation": ', encoding="utf-8")
    with pytest.raises(IndexStoreError, match="unreadable.*--rebuild"):
        FaissStore.load(index_dir)


def test_manifest_missing_keys_or_other_format_is_refused(saved, index_dir):
    manifest = manifest_of(index_dir)
    (index_dir / MANIFEST).write_text(json.dumps({"format": INDEX_FORMAT}), encoding="utf-8")
    with pytest.raises(IndexStoreError, match="not an index manifest"):
        FaissStore.load(index_dir)
    (index_dir / MANIFEST).write_text(json.dumps({**manifest, "format": "other/9"}), encoding="utf-8")
    with pytest.raises(IndexStoreError, match="format 'other/9'"):
        FaissStore.load(index_dir)


def test_chunk_and_vector_count_mismatch_is_refused(saved, index_dir):
    chunks_file = index_dir / "gen-000001" / "chunks.jsonl"
    rows = chunks_file.read_text(encoding="utf-8").splitlines()
    chunks_file.write_text("\n".join(rows[:2]) + "\n", encoding="utf-8")
    with pytest.raises(IndexStoreError, match=r"inconsistent \(2 chunks, vectors \(3, 256\)"):
        FaissStore.load(index_dir)


def test_manifest_count_mismatch_is_refused(saved, index_dir):
    manifest = manifest_of(index_dir)
    (index_dir / MANIFEST).write_text(json.dumps({**manifest, "n_chunks": 5}), encoding="utf-8")
    with pytest.raises(IndexStoreError, match="inconsistent"):
        FaissStore.load(index_dir)


def test_damaged_or_missing_generation_files_are_refused(saved, index_dir):
    (index_dir / "gen-000001" / "vectors.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexStoreError, match="damaged"):
        FaissStore.load(index_dir)
    manifest = manifest_of(index_dir)
    (index_dir / MANIFEST).write_text(json.dumps({**manifest, "generation": "gen-000009"}), encoding="utf-8")
    with pytest.raises(IndexStoreError, match="damaged"):
        FaissStore.load(index_dir)


def test_other_model_or_dimension_is_refused_naming_both(saved, index_dir):
    store = FaissStore.load(index_dir)
    store.check_model(FAKE_MODEL_ID, 256)
    with pytest.raises(IndexStoreError) as excinfo:
        store.check_model("bundled:multilingual-e5-small", 384)
    message = str(excinfo.value)
    assert FAKE_MODEL_ID in message and "bundled:multilingual-e5-small" in message
    assert "256" in message and "384" in message
    with pytest.raises(IndexStoreError, match="dim 128"):
        store.check_model(FAKE_MODEL_ID, 128)


def test_failure_while_writing_vectors_keeps_the_previous_generation(saved, index_dir, embedder, monkeypatch):
    import faiss

    before = index_state(index_dir)
    _fill(saved, embedder, TEXTS[:1])

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken_write)
    with pytest.raises(OSError, match="disk full"):
        saved.save()
    assert index_state(index_dir) == before
    assert len(FaissStore.load(index_dir).chunks) == 3
    assert not list(index_dir.glob(".gen-*")) and not (index_dir / "gen-000002").exists()


def test_failure_while_writing_the_manifest_keeps_the_previous_one(saved, index_dir, embedder, monkeypatch):
    import rag.index.faiss_store

    before = index_state(index_dir)
    _fill(saved, embedder, TEXTS[:1])
    real_dump = json.dump

    def dump_then_crash(payload, handle, **kwargs):
        real_dump(payload, handle, **kwargs)
        raise OSError("power cut")

    monkeypatch.setattr(rag.index.faiss_store.json, "dump", dump_then_crash)
    with pytest.raises(OSError, match="power cut"):
        saved.save()
    monkeypatch.undo()
    assert index_state(index_dir) == before
    assert len(FaissStore.load(index_dir).chunks) == 3
    assert not list(index_dir.glob(f".{MANIFEST}.*"))  # the temporary file was removed
    # the next successful write replaces the orphan generation folder
    saved.save()
    assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-000002"]
    assert len(FaissStore.load(index_dir).chunks) == 1


def test_replace_contents_checks_lengths(saved):
    with pytest.raises(ValueError, match="same length"):
        saved.replace_contents(saved.chunks, saved.tokens[:1], saved.vectors, [], [])


def test_a_second_writer_is_refused(index_dir):
    with write_lock(index_dir), pytest.raises(IndexStoreError, match="another process"), write_lock(index_dir):
        pass
    with write_lock(index_dir):  # released again
        pass
