"""The conformance tests every ``Store`` backend must pass (the pattern of haystack's document store tests).

Subclass :class:`StoreConformance` and implement ``new_store`` (a new, empty, writable store with
the given model and chunking) and ``reopen`` (a second handle on the same store, as another
process would open it). ``tests/test_store_conformance.py`` runs it against the FAISS directory.
"""

from __future__ import annotations

import numpy as np
import pytest

from rag.errors import IndexStoreError
from rag.index.chunking import Chunk, ChunkingConfig, chunk_id_for
from rag.index.filters import SearchFilter
from rag.index.store import DocumentRecord, SourceRecord, Store, check_same_chunking, check_same_model, text_key
from rag.models.fakes import HashingEmbedder

MODEL = "fake:hashing"
ARTICLES = {
    "henan": ("/src/henan.txt", ["河南省设立总规模30亿元的人工智能产业基金。", "基金重点投向算力基础设施。"]),
    "guangxi": ("/src/guangxi.txt", ["广西计划组建不低于100亿元的人工智能产业基金。"]),
    "compute": ("/src/compute.txt", ["八大算力枢纽节点总算力规模达215.5 EFLOPS。"]),
}
METADATA = {"henan": ("2025-08-01", ("地方", "河南")), "guangxi": ("2025-09-15", ("地方",)), "compute": ("", ("算力",))}


def article(doc_id: str) -> tuple[list[Chunk], DocumentRecord, SourceRecord]:
    source, texts = ARTICLES[doc_id]
    date, tags = METADATA[doc_id]
    page = 3 if doc_id == "compute" else None  # a page of a PDF; the others have no pages
    chunks = [Chunk(chunk_id_for(doc_id, t), doc_id, f"{doc_id} 标题", source, t, n, date, tags, page) for n, t in enumerate(texts)]
    document = DocumentRecord(doc_id, f"{doc_id} 标题", source, "hash-" + doc_id, len(chunks), sum(map(len, texts)), "now")
    return chunks, document, SourceRecord(source, "sha-" + doc_id, [doc_id], "now")


class StoreConformance:
    """Behaviour shared by every store backend."""

    embedder = HashingEmbedder(model_id=MODEL)
    chunking = ChunkingConfig()

    def new_store(self, tmp_path, model_id: str, dim: int, chunking: ChunkingConfig) -> Store:
        raise NotImplementedError

    def reopen(self, store: Store) -> Store:
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers

    def filled(self, tmp_path, doc_ids=("henan", "guangxi", "compute")) -> Store:
        store = self.new_store(tmp_path, MODEL, self.embedder.dim, self.chunking)
        self.add(store, doc_ids)
        return store

    def add(self, store: Store, doc_ids) -> None:
        chunks: list[Chunk] = []
        documents = [*store.documents()]
        sources = [*store.sources().values()]
        for doc_id in doc_ids:
            doc_chunks, document, source = article(doc_id)
            chunks += doc_chunks
            documents.append(document)
            sources.append(source)
        vectors = self.embedder.embed([c.embed_text for c in chunks])
        store.commit([], chunks, vectors, documents, sources)

    def query(self, text: str) -> np.ndarray:
        return self.embedder.embed([text], kind="query")[0]

    # ---------------------------------------------------------------- tests

    def test_is_a_store(self, tmp_path):
        assert isinstance(self.new_store(tmp_path, MODEL, self.embedder.dim, self.chunking), Store)

    def test_an_empty_store_finds_nothing(self, tmp_path):
        store = self.new_store(tmp_path, MODEL, self.embedder.dim, self.chunking)
        assert store.count() == 0 and store.documents() == [] and store.sources() == {}
        assert store.search_dense(self.query("基金"), 5) == []
        assert store.search_lexical("基金", 5) == []

    def test_manifest_records_model_dimension_and_chunking(self, tmp_path):
        store = self.reopen(self.filled(tmp_path))
        manifest = store.manifest
        assert (manifest.model_id, manifest.dim, manifest.chunking) == (MODEL, self.embedder.dim, self.chunking)
        assert manifest.n_chunks == store.count() == 4
        check_same_model(store.location, manifest, MODEL, self.embedder.dim)
        with pytest.raises(IndexStoreError, match="other-model"):
            check_same_model(store.location, manifest, "other-model", self.embedder.dim)
        with pytest.raises(IndexStoreError, match="chunked with"):
            check_same_chunking(store.location, manifest, ChunkingConfig(200, 20))

    def test_documents_and_sources_are_kept(self, tmp_path):
        store = self.reopen(self.filled(tmp_path))
        assert sorted(d.doc_id for d in store.documents()) == ["compute", "guangxi", "henan"]
        henan = next(d for d in store.documents() if d.doc_id == "henan")
        assert (henan.n_chunks, henan.source, henan.content_hash) == (2, "/src/henan.txt", "hash-henan")
        assert store.sources()["/src/guangxi.txt"].doc_ids == ["guangxi"]
        assert store.sources()["/src/guangxi.txt"].sha256 == "sha-guangxi"

    def test_dense_search_ranks_the_same_text_first(self, tmp_path):
        store = self.filled(tmp_path)
        target = article("compute")[0][0]
        found = store.search_dense(self.embedder.embed([target.embed_text])[0], 3)
        assert found[0].chunk == target and found[0].score == pytest.approx(1.0, abs=1e-4)
        assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)
        assert len({f.row for f in found}) == len(found)

    def test_lexical_search_matches_words_and_leaves_out_the_rest(self, tmp_path):
        store = self.filled(tmp_path)
        found = store.search_lexical("广西的产业基金", 10)
        assert found[0].chunk.doc_id == "guangxi"
        assert all(f.score > 0 for f in found)
        assert "compute" not in {f.chunk.doc_id for f in found}  # shares no word with the query
        assert store.search_lexical("EFLOPS", 10)[0].chunk.doc_id == "compute"

    def test_document_chunks_come_in_reading_order(self, tmp_path):
        store = self.reopen(self.filled(tmp_path))
        assert store.document_chunks("henan") == article("henan")[0]
        assert [c.doc_id for c in store.document_chunks("compute")] == ["compute"]
        assert store.document_chunks("no-such-doc") == []
    def test_page_numbers_are_kept(self, tmp_path):
        store = self.reopen(self.filled(tmp_path))
        pages = {found.chunk.doc_id: found.chunk.page for found in store.search_lexical("人工智能产业基金 EFLOPS", 10)}
        assert pages == {"henan": None, "guangxi": None, "compute": 3}

    def test_known_vectors_return_what_was_stored(self, tmp_path):
        store = self.filled(tmp_path)
        chunk = article("henan")[0][1]
        known = store.known_vectors([text_key(chunk), "no-such-key"])
        assert list(known) == [text_key(chunk)]
        np.testing.assert_allclose(known[text_key(chunk)], self.embedder.embed([chunk.embed_text])[0], atol=1e-5)

    def test_commit_drops_only_the_named_documents(self, tmp_path):
        store = self.filled(tmp_path)
        documents = [d for d in store.documents() if d.doc_id != "henan"]
        sources = [s for p, s in store.sources().items() if p != "/src/henan.txt"]
        store.commit(["henan"], [], np.zeros((0, self.embedder.dim), dtype=np.float32), documents, sources)
        for handle in (store, self.reopen(store)):
            assert handle.count() == 2
            assert "henan" not in {d.doc_id for d in handle.documents()}
            assert "/src/henan.txt" not in handle.sources()
            assert all(f.chunk.doc_id != "henan" for f in handle.search_lexical("河南 基金", 10))

    def test_a_replaced_document_keeps_no_old_chunks(self, tmp_path):
        store = self.filled(tmp_path, ("henan",))
        new = Chunk(chunk_id_for("henan", "河南基金规模调整为50亿元。"), "henan", "henan 标题", "/src/henan.txt", "河南基金规模调整为50亿元。", 0)
        document = DocumentRecord("henan", "henan 标题", "/src/henan.txt", "hash-2", 1, 13, "later")
        source = SourceRecord("/src/henan.txt", "sha-2", ["henan"], "later")
        store.commit(["henan"], [new], self.embedder.embed([new.embed_text]), [document], [source])
        reopened = self.reopen(store)
        assert reopened.count() == 1
        assert [f.chunk.text for f in reopened.search_lexical("河南 基金", 5)] == ["河南基金规模调整为50亿元。"]
        assert reopened.sources()["/src/henan.txt"].sha256 == "sha-2"

    def test_another_handle_sees_a_write_after_refresh(self, tmp_path):
        store = self.filled(tmp_path, ("henan",))
        reader = self.reopen(store)
        assert reader.refresh() is False
        self.add(store, ("compute",))
        assert reader.refresh() is True
        assert reader.count() == 3
        assert reader.search_lexical("EFLOPS", 3)[0].chunk.doc_id == "compute"

    def test_the_embedding_journal_survives_until_cleared(self, tmp_path):
        store = self.new_store(tmp_path, MODEL, self.embedder.dim, self.chunking)
        journal = store.embedding_journal(MODEL)
        vectors = self.embedder.embed(["一", "二"])
        journal.add(["k1", "k2"], vectors)
        again = store.embedding_journal(MODEL)
        assert set(again.vectors) == {"k1", "k2"}
        np.testing.assert_allclose(again.vectors["k2"], vectors[1])
        again.clear()
        assert store.embedding_journal(MODEL).vectors == {}

    # ---------------------------------------------------------------- filters

    def test_chunks_keep_their_date_and_tags(self, tmp_path):
        store = self.reopen(self.filled(tmp_path))
        found = store.search_lexical("河南 基金", 1)[0].chunk
        assert (found.date, found.tags) == ("2025-08-01", ("地方", "河南"))
        assert found == article("henan")[0][0]
        dense = store.search_dense(self.query(article("compute")[0][0].embed_text), 1)[0].chunk
        assert (dense.date, dense.tags) == ("", ("算力",))

    @pytest.mark.parametrize(
        "where, expected",
        [
            (SearchFilter(), {"henan", "guangxi", "compute"}),
            (SearchFilter(date_from="2025-09-01"), {"guangxi"}),
            (SearchFilter(date_to="2025-08-31"), {"henan"}),
            (SearchFilter(date_from="2025-08-01", date_to="2025-09-15"), {"henan", "guangxi"}),
            (SearchFilter(sources=("/src/compute.txt", "/src/guangxi.txt")), {"compute", "guangxi"}),
            (SearchFilter(tags=("河南", "算力")), {"henan", "compute"}),
            (SearchFilter(date_from="2025-01-01", tags=("算力",)), set()),
        ],
    )
    def test_filters_narrow_dense_search_inside_the_search(self, tmp_path, where, expected):
        store = self.filled(tmp_path)
        found = store.search_dense(self.query(article("compute")[0][0].embed_text), 10, where)
        assert {f.chunk.doc_id for f in found} == expected
        assert all(where.matches(f.chunk) for f in found)
        if expected:  # top-1 comes from the matching chunks, not a filtered fixed top-k
            assert store.search_dense(self.query(article("compute")[0][0].embed_text), 1, where)[0].chunk.doc_id in expected

    def test_filters_narrow_lexical_search(self, tmp_path):
        store = self.reopen(self.filled(tmp_path))
        assert {f.chunk.doc_id for f in store.search_lexical("人工智能 产业基金", 10)} == {"henan", "guangxi"}
        late = store.search_lexical("人工智能 产业基金", 1, SearchFilter(date_from="2025-09-01"))
        assert [f.chunk.doc_id for f in late] == ["guangxi"]
        tagged = store.search_lexical("人工智能 产业基金", 10, SearchFilter(tags=("河南",)))
        assert {f.chunk.doc_id for f in tagged} == {"henan"}
        assert store.search_lexical("EFLOPS", 10, SearchFilter(sources=("/src/henan.txt",))) == []
        assert store.search_lexical("基金", 10, SearchFilter(sources=("/src/nowhere.txt",))) == []
