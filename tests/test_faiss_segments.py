"""Format /2 of the index directory: a commit writes a segment and tombstones, compaction, refresh, /1 upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import index_state, manifest_of, modes

import rag.index.faiss_store
from rag.errors import IndexStoreError
from rag.index.chunking import Chunk, ChunkingConfig
from rag.index.faiss_store import INDEX_FORMAT, MANIFEST, FaissStore
from rag.index.store import DocumentRecord, SourceRecord

DIM = 32
PER_DOC = 10
WORDS = "人工智能 产业 基金 算力 河南 广西 规模 亿元 政策 企业 数据 平台 模型 研发 制造 园区".split()
QUERIES = ["人工智能 基金", "算力 平台", "河南 园区 规模"]


def article(n: int) -> tuple[list[Chunk], DocumentRecord, SourceRecord]:
    """Document ``d<n>``: ten short chunks with a vector each (the same every time)."""
    texts = ["".join(WORDS[(n * 7 + i * 3 + j) % len(WORDS)] for j in range(6)) + f"第{n}号{i}" for i in range(PER_DOC)]
    chunks = [Chunk(f"d{n}-{i}", f"d{n}", f"标题{n}", f"/src/{n}.txt", text, i) for i, text in enumerate(texts)]
    return chunks, DocumentRecord(f"d{n}", f"标题{n}", f"/src/{n}.txt", "h", PER_DOC, 60, "now"), SourceRecord(f"/src/{n}.txt", "s", [f"d{n}"], "now")


def vectors(n: int) -> np.ndarray:
    raw = np.random.default_rng(n).standard_normal((PER_DOC, DIM)).astype(np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def add(store: FaissStore, numbers) -> None:
    chunks, documents, sources = [], [*store.documents()], [*store.sources().values()]
    for n in numbers:
        doc_chunks, document, source = article(n)
        chunks += doc_chunks
        documents.append(document)
        sources.append(source)
    store.commit([], chunks, np.concatenate([vectors(n) for n in numbers]), documents, sources)


def remove(store: FaissStore, n: int) -> None:
    documents = [d for d in store.documents() if d.doc_id != f"d{n}"]
    sources = [s for s in store.sources().values() if s.doc_ids != [f"d{n}"]]
    store.commit([f"d{n}"], [], np.zeros((0, DIM), dtype=np.float32), documents, sources)


def files(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``root`` with (inode, mtime, size)."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def changed(before: dict, after: dict) -> dict[str, int]:
    """Files created or rewritten, with their sizes."""
    return {path: state[2] for path, state in after.items() if before.get(path) != state}


def results(store: FaissStore) -> list:
    """Dense and lexical hits (chunk id, row, score) for fixed queries: what retrieval sees."""
    found = []
    for n, query in enumerate(QUERIES):
        dense = store.search_dense(vectors(n)[0], 8)
        found.append([(h.chunk.chunk_id, h.row, round(h.score, 5)) for h in dense + store.search_lexical(query, 8)])
    return found


@pytest.fixture
def big(tmp_path) -> FaissStore:
    """A saved store of 100 documents (1,000 chunks) in one segment."""
    store = FaissStore.empty(tmp_path / "index", "fake:random", DIM, ChunkingConfig())
    add(store, range(100))
    return store


def test_adding_a_document_writes_only_a_new_segment(big):
    root = big.root
    before = files(root)
    add(big, [100])
    written = changed(before, files(root))
    assert set(written) == {MANIFEST, "gen-000002/chunks.jsonl", "gen-000002/vectors.faiss"}
    assert {p: s for p, s in files(root).items() if p.startswith("gen-000001/")} == {
        p: s for p, s in before.items() if p.startswith("gen-000001/")
    }  # the old segment is neither rewritten nor touched
    old_segment = sum(s[2] for p, s in before.items() if p.startswith("gen-000001/"))
    assert written["gen-000002/chunks.jsonl"] + written["gen-000002/vectors.faiss"] < old_segment / 50
    manifest = manifest_of(root)
    assert manifest["format"] == INDEX_FORMAT and manifest["n_chunks"] == 1010
    assert manifest["segments"] == [
        {"name": "gen-000001", "rows": 1000, "deleted": []},
        {"name": "gen-000002", "rows": 10, "deleted": []},
    ]
    loaded = FaissStore.load(root)
    assert loaded.chunks == big.chunks and loaded.tokens == big.tokens
    np.testing.assert_array_equal(loaded.vectors, big.vectors)
    assert results(loaded) == results(big)


def test_removing_a_document_writes_only_tombstones(big):
    before = files(big.root)
    remove(big, 3)
    assert set(changed(before, files(big.root))) == {MANIFEST}
    assert manifest_of(big.root)["segments"] == [{"name": "gen-000001", "rows": 1000, "deleted": list(range(30, 40))}]
    loaded = FaissStore.load(big.root)
    assert loaded.count() == big.count() == 990
    assert "d3" not in {c.doc_id for c in loaded.chunks} and "d3" not in {d.doc_id for d in loaded.documents()}
    assert loaded.chunks == big.chunks and results(loaded) == results(big)


def test_a_segment_without_live_rows_is_dropped(big):
    add(big, [100])
    remove(big, 100)
    assert [s["name"] for s in manifest_of(big.root)["segments"]] == ["gen-000001"]
    assert sorted(p.name for p in big.root.glob("gen-*")) == ["gen-000001"]


def test_rows_are_positions_in_the_live_order_as_one_rewritten_index_would_have_them(big):
    add(big, [100, 101])
    remove(big, 5)
    remove(big, 100)
    add(big, [102])
    expected = [n for n in range(100) if n != 5] + [101, 102]
    assert [c.doc_id for c in FaissStore.load(big.root).chunks[::PER_DOC]] == [f"d{n}" for n in expected]
    rewritten = FaissStore.empty(big.root.parent / "rewritten", "fake:random", DIM, ChunkingConfig())
    add(rewritten, expected)
    assert results(FaissStore.load(big.root)) == results(rewritten)


def test_compaction_restores_one_segment_with_identical_results(big):
    add(big, [100, 101])
    remove(big, 7)
    add(big, [102])
    store = FaissStore.load(big.root)
    assert len(manifest_of(big.root)["segments"]) == 3
    searched = results(store)
    store.save()  # explicit compaction
    assert manifest_of(big.root)["segments"] == [{"name": "gen-000005", "rows": 1020, "deleted": []}]
    assert sorted(p.name for p in big.root.glob("gen-*")) == ["gen-000005"]
    assert results(FaissStore.load(big.root)) == results(store) == searched


def test_a_commit_compacts_when_segments_pile_up(big, monkeypatch):
    monkeypatch.setattr(rag.index.faiss_store, "MAX_SEGMENTS", 3)
    add(big, [100])
    add(big, [101])
    assert len(manifest_of(big.root)["segments"]) == 3
    add(big, [102])
    assert manifest_of(big.root)["segments"] == [{"name": "gen-000004", "rows": 1030, "deleted": []}]
    assert sorted(p.name for p in big.root.glob("gen-*")) == ["gen-000004"]
    assert FaissStore.load(big.root).chunks == big.chunks


def test_a_commit_compacts_when_tombstones_pile_up(big, monkeypatch):
    monkeypatch.setattr(rag.index.faiss_store, "MAX_DELETED_SHARE", 0.025)
    remove(big, 0)
    remove(big, 1)
    assert len(manifest_of(big.root)["segments"][0]["deleted"]) == 20
    remove(big, 2)  # 30 of 1,000 rows deleted: over the share
    assert manifest_of(big.root)["segments"] == [{"name": "gen-000004", "rows": 970, "deleted": []}]
    assert results(FaissStore.load(big.root)) == results(big)


def test_a_reader_refresh_reads_only_what_is_new(big, monkeypatch):
    reader = FaissStore.load(big.root)
    results(reader)  # FAISS and BM25 built
    read = []
    real_read = rag.index.faiss_store._read_segments

    def spy(root, segments, dim):
        read.extend(s["name"] for s in segments)
        return real_read(root, segments, dim)

    monkeypatch.setattr(rag.index.faiss_store, "_read_segments", spy)
    add(big, [100])
    assert reader.refresh() is True and read == ["gen-000002"]
    assert reader.chunks == big.chunks and results(reader) == results(FaissStore.load(big.root))
    read.clear()
    remove(big, 4)
    assert reader.refresh() is True and read == []
    assert reader.count() == 1000 and results(reader) == results(FaissStore.load(big.root))
    assert reader.refresh() is False
    big.save()  # a compaction: nothing the reader holds is listed any more
    read.clear()
    assert reader.refresh() is True and read == ["gen-000004"]
    assert reader.chunks == big.chunks and results(reader) == results(big)


def test_a_rebuild_never_reuses_a_segment_name(big):
    reader = FaissStore.load(big.root)
    rebuilt = FaissStore.open_for_writing(big.root, "fake:random", DIM, ChunkingConfig(), rebuild=True)
    add(rebuilt, [500])
    assert manifest_of(big.root)["segments"] == [{"name": "gen-000002", "rows": 10, "deleted": []}]
    assert reader.refresh() is True
    assert [c.doc_id for c in reader.chunks] == ["d500"] * PER_DOC


def test_a_format_1_index_loads_and_is_upgraded_on_the_next_write(big):
    root = big.root
    manifest = manifest_of(root)
    del manifest["segments"]  # exactly the /1 layout: one gen-* folder named by "generation"
    (root / MANIFEST).write_text(json.dumps({**manifest, "format": "rag-zh-index/1"}), encoding="utf-8")
    old = FaissStore.load(root)
    assert old.chunks == big.chunks and results(old) == results(big)
    before = files(root)
    add(old, [100])
    upgraded = manifest_of(root)
    assert upgraded["format"] == "rag-zh-index/2"
    assert [s["name"] for s in upgraded["segments"]] == ["gen-000001", "gen-000002"]
    assert {p: s for p, s in files(root).items() if p.startswith("gen-000001/")} == {
        p: s for p, s in before.items() if p.startswith("gen-000001/")
    }
    assert FaissStore.load(root).count() == 1010


def test_a_crash_between_segment_and_manifest_leaves_the_old_index(big, monkeypatch):
    root = big.root
    before = index_state(root)
    searched = results(FaissStore.load(root))

    def power_cut(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(rag.index.faiss_store, "write_json_atomic", power_cut)
    with pytest.raises(OSError, match="power cut"):
        add(big, [100])
    monkeypatch.undo()
    assert (root / "gen-000002" / "chunks.jsonl").is_file()  # the segment was written, the switch was not
    assert index_state(root) == before
    reader = FaissStore.load(root)
    assert reader.count() == 1000 and results(reader) == searched
    (root / ".gen-000009.x1y2").mkdir()  # what a kill -9 while writing a segment leaves
    writer = FaissStore.load(root)
    add(writer, [101])
    assert sorted(p.name for p in root.iterdir() if "gen-" in p.name) == ["gen-000001", "gen-000002"]
    assert [c.doc_id for c in FaissStore.load(root).chunks[-PER_DOC:]] == ["d101"] * PER_DOC
    assert reader.refresh() is True and reader.count() == 1010


def test_a_format_2_manifest_without_a_valid_segment_list_is_refused(big):
    manifest = manifest_of(big.root)
    for segments in (None, [{"name": "gen-000001"}]):
        (big.root / MANIFEST).write_text(json.dumps({**manifest, "segments": segments}), encoding="utf-8")
        with pytest.raises(IndexStoreError, match="not an index manifest"):
            FaissStore.load(big.root)


def test_an_index_from_before_dates_and_tags_still_opens(tmp_path, corpus_dir):
    from rag.index.filters import SearchFilter
    from rag.index.ingest import ingest
    from rag.models.fakes import HashingEmbedder

    embedder = HashingEmbedder(model_id="fake:hashing")
    root = tmp_path / "index"
    ingest([corpus_dir], root, embedder)
    for segment in root.glob("gen-*/chunks.jsonl"):  # as an older version wrote them
        rows = [json.loads(line) for line in segment.read_text(encoding="utf-8").splitlines()]
        segment.write_text("".join(json.dumps({k: v for k, v in r.items() if k not in ("date", "tags")}) + "\n" for r in rows))
    manifest = manifest_of(root)
    manifest["documents"] = [{k: v for k, v in d.items() if k not in ("date", "tags")} for d in manifest["documents"]]
    (root / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    store = FaissStore.load(root)
    assert {(d.date, tuple(d.tags)) for d in store.documents()} == {("", ())}
    query = embedder.embed(["算力"], kind="query")[0]
    assert store.search_dense(query, 3)[0].chunk.tags == ()
    assert store.search_dense(query, 3, SearchFilter(tags=("科技",))) == []


def test_index_files_get_the_mode_the_umask_gives(tmp_path, umask):
    umask(0o077)  # an owner who wants the index private gets it private, manifest included
    store = FaissStore.empty(tmp_path / "index", "fake:random", DIM, ChunkingConfig())
    add(store, [1])
    found = modes(store.root)
    assert MANIFEST in found and any(name.startswith("gen-") for name in found)
    assert found == {name: 0o700 if (store.root / name).is_dir() else 0o600 for name in found}


def test_a_dense_search_runs_faiss_on_one_thread_and_gives_the_exact_ranking(big):
    import faiss

    index, threads = big.faiss_index(), []

    class Watched:
        def search(self, *args, **kwargs):
            threads.append(faiss.omp_get_max_threads())
            return index.search(*args, **kwargs)

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    big._faiss = Watched()
    query = vectors(3)[0]
    try:
        found = big.search_dense(query, 5)
        assert threads == [1] and faiss.omp_get_max_threads() == 2  # one OpenMP thread for the query, then as it was
    finally:
        faiss.omp_set_num_threads(before)
    expected = np.argsort(-(big.vectors @ query), kind="stable")[:5]
    assert [hit.row for hit in found] == expected.tolist()


def test_a_refresh_reads_the_manifest_only_when_the_file_changed(big, monkeypatch):
    monkeypatch.setattr(rag.index.faiss_store, "STAMP_SETTLE_S", 0.0)
    reader = FaissStore.load(big.root)
    reads = []
    real_read = rag.index.faiss_store.read_manifest
    monkeypatch.setattr(rag.index.faiss_store, "read_manifest", lambda root: reads.append(root) or real_read(root))
    assert reader.refresh() is False and reader.refresh() is False and reads == []  # the file read on load
    add(big, [100])
    assert reader.refresh() is True and len(reads) == 1
    assert reader.refresh() is False and len(reads) == 1
    assert reader.chunks == big.chunks


def test_a_manifest_written_a_moment_ago_is_read_again(big, monkeypatch):
    reader = FaissStore.load(big.root)  # just written: its stamp is not trusted yet
    reads = []
    real_read = rag.index.faiss_store.read_manifest
    monkeypatch.setattr(rag.index.faiss_store, "read_manifest", lambda root: reads.append(root) or real_read(root))
    assert reader.refresh() is False and reader.refresh() is False and len(reads) == 2
