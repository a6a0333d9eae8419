"""Ingest: incremental updates, removal, resuming, the manifest, and bad input left outside."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import (
    FAKE_MODEL_ID,
    SAMPLE_CORPUS,
    CountingEmbedder,
    FailingEmbedder,
    Interrupted,
    index_state,
    manifest_of,
    write_docx,
)

import rag.index.ingest
from rag.errors import IndexStoreError, RagError
from rag.index.chunking import ChunkingConfig
from rag.index.documents import file_sha256, load_file
from rag.index.faiss_store import FaissStore
from rag.index.ingest import ingest, remove
from rag.index.lexical import tokenize
from rag.models.fakes import HashingEmbedder

PARAGRAPHS = [
    (
        "济南市发布人工智能产业政策，设立总规模20亿元的人工智能产业引导基金，重点支持大模型研发和算力中心建设，"
        "鼓励企业开放应用场景，推动人工智能与制造业深度融合。政策还提出建设人工智能产业园，引进头部企业和创新团队。"
    ),
    (
        "青岛市聚焦海洋经济与人工智能融合发展，计划三年内培育50家智能海洋装备企业，建设海洋大数据中心，"
        "支持港口自动化改造，打造全国领先的智慧港口示范区。青岛还将设立专项资金，奖励关键技术攻关项目。"
    ),
    (
        "潍坊市推动动力装备产业智能化升级，对购置工业机器人的企业给予设备投资额百分之十的补助，"
        "单个企业最高补助500万元，同时建设工业互联网平台，服务中小企业数字化转型，培育一批智能工厂。"
    ),
    (
        "淄博市依托化工新材料产业基础，建设人工智能赋能新材料研发平台，利用机器学习加速配方筛选，"
        "缩短研发周期，降低试验成本。淄博计划到2027年建成10个以上省级智能制造示范工厂。"
    ),
]
SMALL_CHUNKS = ChunkingConfig(150, 20)  # one paragraph per chunk
NEW_SECOND = PARAGRAPHS[1].replace("青岛市聚焦海洋经济", "烟台市聚焦氢能产业").replace("青岛还将", "烟台还将")


def _write_policies(path: Path, paragraphs: list[str]) -> Path:
    path.write_text("山东各市人工智能产业政策\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


def _bm25_sources(root: Path, query: str) -> list[str]:
    store = FaissStore.load(root)
    return [store.chunks[row].text for row, _ in store.bm25_index().search(tokenize(query), 10)]


@pytest.fixture
def built(corpus_dir, index_dir, embedder) -> Path:
    """``corpus_dir`` ingested into ``index_dir``."""
    report = ingest([corpus_dir], index_dir, embedder)
    assert report.changed
    return index_dir


# --------------------------------------------------------------------------- first ingest and manifest


def test_first_ingest_reports_and_indexes_every_file(corpus_dir, index_dir, counting_embedder):
    report = ingest([corpus_dir], index_dir, counting_embedder)
    assert report.files_seen == 3 and not report.files_failed
    assert sorted(report.documents_added) == ["compute", "henan", "robots"]
    assert report.chunks_total == report.chunks_embedded == counting_embedder.texts_embedded > 0
    assert report.chunks_reused == 0
    store = FaissStore.load(index_dir)
    assert len(store.chunks) == report.chunks_total
    assert any("30亿元" in c.text and c.title == "河南设立人工智能产业基金" for c in store.chunks)
    assert not (index_dir / "pending").exists()


def test_manifest_lists_model_chunking_versions_documents_and_sources(corpus_dir, index_dir, embedder):
    ingest([corpus_dir], index_dir, embedder, ChunkingConfig(200, 40))
    manifest = manifest_of(index_dir)
    assert manifest["embedding"] == {"model_id": FAKE_MODEL_ID, "dim": 256}
    assert manifest["chunking"] == {"chunk_size": 200, "chunk_overlap": 40, "version": ChunkingConfig().version}
    assert {"rag", "faiss-cpu", "scipy", "jieba", "langchain-text-splitters"} <= set(manifest["versions"])
    henan_path = corpus_dir / "henan.txt"
    [henan_doc] = load_file(henan_path)
    [record] = [d for d in manifest["documents"] if d["doc_id"] == "henan"]
    assert record["title"] == "河南设立人工智能产业基金"
    assert record["content_hash"] == henan_doc.content_hash
    assert record["source"] == str(henan_path.resolve())
    assert record["chars"] == len(henan_doc.text) and record["n_chunks"] >= 1
    assert sum(d["n_chunks"] for d in manifest["documents"]) == manifest["n_chunks"]
    sources = {s["path"]: s for s in manifest["sources"]}
    assert sources[str(henan_path.resolve())]["sha256"] == file_sha256(henan_path)
    assert sources[str(henan_path.resolve())]["doc_ids"] == ["henan"]
    assert len(sources) == 3


def test_multi_article_file_becomes_several_documents(index_dir, embedder):
    ingest([next(SAMPLE_CORPUS.glob("000_*.txt"))], index_dir, embedder)
    titles = [d.title for d in FaissStore.load(index_dir).documents()]
    assert len(titles) == 4 and titles[-1] == "脑机接口领域吸引资本加速流入"


def test_progress_reports_every_stage(corpus_dir, index_dir, embedder):
    calls = []
    ingest([corpus_dir], index_dir, embedder, progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert [c[0] for c in calls if c[0] == "load"] == ["load"] * 3 and ("load", 3, 3) in calls
    embed = [c for c in calls if c[0] == "embed"]
    assert embed and embed[-1][1] == embed[-1][2] > 0
    assert calls[-1] == ("write", 1, 1)


# --------------------------------------------------------------------------- incremental


def test_reingesting_unchanged_files_embeds_and_writes_nothing(built, corpus_dir, counting_embedder):
    before = index_state(built)
    report = ingest([corpus_dir], built, counting_embedder)
    assert counting_embedder.batches == []
    assert len(report.files_unchanged) == 3 and not report.changed
    assert index_state(built) == before


def test_changed_file_replaces_its_chunks_and_reuses_unchanged_vectors(tmp_path, index_dir, embedder):
    path = _write_policies(tmp_path / "shandong.txt", PARAGRAPHS)
    ingest([path], index_dir, embedder, SMALL_CHUNKS)
    old_chunks = FaissStore.load(index_dir).chunks
    assert len(old_chunks) == 4
    assert _bm25_sources(index_dir, "青岛")

    _write_policies(path, [PARAGRAPHS[0], NEW_SECOND, *PARAGRAPHS[2:]])
    counting = CountingEmbedder()
    report = ingest([path], index_dir, counting, SMALL_CHUNKS)
    assert report.documents_replaced == ["shandong"] and not report.documents_added
    assert counting.texts_embedded == report.chunks_embedded == 1
    assert "烟台市聚焦氢能产业" in counting.batches[0][0]
    assert report.chunks_reused == len(old_chunks) - 1

    store = FaissStore.load(index_dir)
    texts = "".join(c.text for c in store.chunks)
    assert "青岛" not in texts and "烟台市聚焦氢能产业" in texts
    assert _bm25_sources(index_dir, "青岛") == []
    assert any("烟台" in text for text in _bm25_sources(index_dir, "烟台 氢能"))
    assert len(store.chunks) == len(old_chunks)
    assert [d.doc_id for d in store.documents()] == ["shandong"]


def test_other_files_are_untouched_when_one_changes(built, corpus_dir, counting_embedder):
    compute_before = [c for c in FaissStore.load(built).chunks if c.doc_id == "compute"]
    (corpus_dir / "henan.txt").write_text("河南省新设立人工智能创投基金，规模50亿元。\n", encoding="utf-8")
    ingest([corpus_dir], built, counting_embedder)
    store = FaissStore.load(built)
    assert [c for c in store.chunks if c.doc_id == "compute"] == compute_before
    [[embedded]] = counting_embedder.batches
    assert "规模50亿元" in embedded
    assert not any("30亿元" in c.text for c in store.chunks)


def test_same_file_name_in_two_folders_gets_distinct_ids(tmp_path, index_dir, embedder, corpus_dir):
    other = tmp_path / "other"
    other.mkdir()
    (other / "henan.txt").write_text("另一篇同名文章。河南省出台算力补贴政策。\n", encoding="utf-8")
    ingest([corpus_dir, other], index_dir, embedder)
    store = FaissStore.load(index_dir)
    ids = [d.doc_id for d in store.documents()]
    assert "henan" in ids and any(i.startswith("henan~") for i in ids)
    assert len(set(ids)) == len(ids)
    assert sum(d.n_chunks for d in store.documents()) == len(store.chunks)
    [clash] = [i for i in ids if i.startswith("henan~")]
    assert remove(index_dir, clash) == [clash]
    assert any("30亿元" in c.text for c in FaissStore.load(index_dir).chunks)


def test_a_file_named_twice_is_ingested_once(corpus_dir, index_dir, embedder):
    report = ingest([corpus_dir, corpus_dir / "henan.txt"], index_dir, embedder)
    assert report.files_seen == 3 and sorted(report.documents_added) == ["compute", "henan", "robots"]
    store = FaissStore.load(index_dir)
    texts = [c.text for c in store.chunks]
    assert len(texts) == len(set(texts))


def test_rebuild_starts_from_scratch(built, tmp_path, embedder):
    path = _write_policies(tmp_path / "only.txt", PARAGRAPHS[:1])
    ingest([path], built, embedder, rebuild=True)
    assert [d.doc_id for d in FaissStore.load(built).documents()] == ["only"]


# --------------------------------------------------------------------------- remove


def test_remove_by_doc_id(built):
    before = FaissStore.load(built)
    assert remove(built, "henan") == ["henan"]
    store = FaissStore.load(built)
    assert "henan" not in [d.doc_id for d in store.documents()]
    assert not any(c.doc_id == "henan" for c in store.chunks)
    assert len(store.chunks) < len(before.chunks) and store.generation != before.generation
    assert all(s.doc_ids != ["henan"] for s in store.sources().values())
    assert _bm25_sources(built, "河南 30") == []


def test_remove_by_source_path_then_reingest_restores_it(built, corpus_dir, counting_embedder):
    removed = remove(built, str(corpus_dir / "compute.txt"))
    assert removed == ["compute"]
    assert str((corpus_dir / "compute.txt").resolve()) not in FaissStore.load(built).sources()
    report = ingest([corpus_dir], built, counting_embedder)
    assert report.documents_added == ["compute"] and len(report.files_unchanged) == 2


def test_removing_one_article_of_a_file_lets_a_reingest_restore_it(index_dir, embedder):
    sample = next(SAMPLE_CORPUS.glob("000_*.txt"))
    ingest([sample], index_dir, embedder)
    doc_id = f"{sample.stem}#2"
    remove(index_dir, doc_id)
    assert doc_id not in [d.doc_id for d in FaissStore.load(index_dir).documents()]
    ingest([sample], index_dir, embedder)
    assert doc_id in [d.doc_id for d in FaissStore.load(index_dir).documents()]


def test_remove_unknown_target_is_an_error_and_changes_nothing(built):
    before = index_state(built)
    with pytest.raises(RagError, match="no document or source 'nope'"):
        remove(built, "nope")
    assert index_state(built) == before


# --------------------------------------------------------------------------- resume and atomicity


class TokenCountingEmbedder(CountingEmbedder):
    """Reports a token count unrelated to the character count: one token per digit."""

    def token_lengths(self, texts):
        return [sum(ch.isdigit() for ch in text) for text in texts]


def test_batches_are_sorted_by_the_embedders_token_counts(tmp_path, index_dir, monkeypatch):
    monkeypatch.setattr(rag.index.ingest, "EMBED_BATCH", 4)
    corpus = tmp_path / "sample"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    embedder = TokenCountingEmbedder()
    ingest([corpus], index_dir, embedder)
    order = [embedder.token_lengths([text])[0] for batch in embedder.batches for text in batch]
    assert len(order) > 8 and order == sorted(order)
    by_characters = [len(text) for batch in embedder.batches for text in batch]
    assert by_characters != sorted(by_characters)  # the order really came from the token counts


def test_interrupted_ingest_resumes_from_saved_batches(tmp_path, built, monkeypatch):
    monkeypatch.setattr(rag.index.ingest, "EMBED_BATCH", 8)
    corpus = tmp_path / "sample"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    fresh = CountingEmbedder()
    ingest([corpus], tmp_path / "scratch", fresh)
    needed = fresh.texts_embedded
    assert needed > 3 * 8

    before = index_state(built)
    failing = FailingEmbedder(ok_batches=2)
    with pytest.raises(Interrupted):
        ingest([corpus], built, failing)
    batches = sorted(p.name for p in (built / "pending").rglob("batch-*.npz"))
    assert batches == ["batch-000000.npz", "batch-000001.npz"]
    assert index_state(built) == before
    assert failing.texts_embedded == 16

    resumed = CountingEmbedder()
    report = ingest([corpus], built, resumed)
    assert resumed.texts_embedded == report.chunks_embedded == needed - 16
    done_first = {t for batch in failing.batches for t in batch}
    done_now = {t for batch in resumed.batches for t in batch}
    assert not done_first & done_now
    assert len(done_first | done_now) == needed
    assert not (built / "pending").exists()
    assert len(FaissStore.load(built).chunks) == report.chunks_total


def test_crash_while_saving_keeps_the_old_index_and_the_embeddings(tmp_path, built, monkeypatch):
    import faiss

    before = index_state(built)
    path = _write_policies(tmp_path / "shandong.txt", PARAGRAPHS)
    real_write = faiss.write_index

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken_write)
    with pytest.raises(OSError, match="disk full"):
        ingest([path], built, HashingEmbedder(model_id=FAKE_MODEL_ID))
    assert index_state(built) == before
    assert len(FaissStore.load(built).chunks) == before[1]
    monkeypatch.setattr(faiss, "write_index", real_write)
    counting = CountingEmbedder()
    report = ingest([path], built, counting)
    assert counting.batches == [] and report.chunks_embedded == 0
    assert report.documents_added == ["shandong"]


# --------------------------------------------------------------------------- bad input


def _empty(folder: Path) -> Path:
    path = folder / "empty.txt"
    path.touch()
    return path


def _binary(folder: Path) -> Path:
    path = folder / "binary.txt"
    path.write_bytes(b"\x7fELF\x00\x00\x01" * 200)
    return path


def _unknown(folder: Path) -> Path:
    path = folder / "table.xlsx"
    path.write_bytes(b"PK\x03\x04" * 10)
    return path


def _broken_pdf(folder: Path) -> Path:
    path = folder / "scan.pdf"
    path.write_bytes(bytes(range(256)) * 20)
    return path


def _broken_docx(folder: Path) -> Path:
    path = folder / "report.docx"
    path.write_bytes(b"PK\x03\x04 truncated archive" * 20)
    return path


def _missing(folder: Path) -> Path:
    return folder / "does-not-exist.txt"


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (_empty, "empty"),
        (_binary, "binary"),
        (_unknown, "unsupported file type"),
        (_broken_pdf, "cannot read this PDF"),
        (_broken_docx, "cannot read this Word file"),
        (_missing, "no such file or folder"),
    ],
    ids=["empty", "binary", "unknown-extension", "broken-pdf", "broken-docx", "missing"],
)
def test_bad_input_is_reported_and_leaves_the_index_intact(built, tmp_path, counting_embedder, make_bad, message):
    bad = make_bad(tmp_path)
    before = index_state(built)
    report = ingest([bad], built, counting_embedder)
    assert [(Path(p).name, message in m) for p, m in report.files_failed] == [(bad.name, True)]
    assert not report.changed and counting_embedder.batches == []
    assert index_state(built) == before
    assert len(FaissStore.load(built).chunks) == before[1]


def test_good_files_are_ingested_beside_bad_ones(tmp_path, index_dir, embedder):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _binary(folder)
    _broken_pdf(folder)
    write_docx(folder / "good.docx", ["安徽人工智能基金", "加快运营总规模不低于200亿元的省人工智能产业主题基金。"])
    report = ingest([folder], index_dir, embedder)
    assert sorted(Path(p).name for p, _ in report.files_failed) == ["binary.txt", "scan.pdf"]
    assert report.documents_added == ["good"]
    assert any("200亿元" in c.text for c in FaissStore.load(index_dir).chunks)


def test_index_of_another_model_is_refused_naming_both(built, corpus_dir):
    before = index_state(built)
    other = HashingEmbedder(dim=128, model_id="fake:other-model")
    with pytest.raises(IndexStoreError) as excinfo:
        ingest([corpus_dir], built, other)
    assert FAKE_MODEL_ID in str(excinfo.value) and "fake:other-model" in str(excinfo.value)
    assert index_state(built) == before
    ingest([corpus_dir], built, other, rebuild=True)
    assert manifest_of(built)["embedding"] == {"model_id": "fake:other-model", "dim": 128}


def test_other_chunking_settings_are_refused(built, corpus_dir, embedder):
    with pytest.raises(IndexStoreError, match="chunked with"):
        ingest([corpus_dir], built, embedder, ChunkingConfig(200, 20))


def test_damaged_index_is_refused_not_overwritten(built, corpus_dir, embedder):
    (built / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexStoreError, match="unreadable"):
        ingest([corpus_dir], built, embedder)
    assert (built / "manifest.json").read_text(encoding="utf-8") == "{not json"
