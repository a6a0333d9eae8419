"""A Milvus Lite index end to end: the CLI with ``--index milvus-lite:///...``, resume, migration from a directory.

Milvus Lite runs in this process (``pymilvus`` starts it for a ``.db`` path), so every test gets its
own file under ``tmp_path``. A Milvus server (``milvus://host:19530/collection``) cannot run here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import FAKE_MODEL_ID, SAMPLE_CORPUS, CountingEmbedder, FailingEmbedder, Interrupted
from test_cli import flat, run

import rag.index.ingest
from rag.config import Settings
from rag.errors import IndexStoreError
from rag.index.faiss_store import FaissStore
from rag.index.filters import SearchFilter
from rag.index.ingest import ingest
from rag.index.locations import local_dir, milvus_target, open_store
from rag.index.migrate import migrate
from rag.index.milvus_store import client_for
from rag.index.store import text_key
from rag.models.fakes import HashingEmbedder
from rag.qa.retriever import Retriever

HENAN_QUESTION = "河南设立的人工智能产业基金规模是多少"


@pytest.fixture
def lite_uri(tmp_path) -> str:
    return f"milvus-lite://{tmp_path}/kb.db"


def search(uri: str, query: str, mode: str = "hybrid", k: int = 5) -> list[dict]:
    result = run("search", query, "--json", "--mode", mode, "-k", k, "--index", uri)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- locations


def test_uris_parse_and_keep_their_local_folder(tmp_path):
    lite = milvus_target(f"milvus-lite://{tmp_path}/kb.db")
    assert (lite.uri, lite.collection, lite.journal_dir, lite.dense_index) == (f"{tmp_path}/kb.db", "rag_zh", tmp_path / "kb", "FLAT")
    server = milvus_target("milvus://root:Milvus@milvus.internal:19531/news_zh")
    assert (server.uri, server.collection, server.token, server.dense_index) == ("http://milvus.internal:19531", "news_zh", "root:Milvus", "HNSW")
    assert milvus_target("milvus://db-host/kb").uri == "http://db-host:19530"
    for bad in ("milvus-lite://relative/kb.db", f"milvus-lite://{tmp_path}/kb.sqlite", "milvus://host:19530/", "milvus://host/a-b"):
        with pytest.raises(IndexStoreError, match="milvus"):
            milvus_target(bad)
    result = run("search", "基金", "--index", "milvus://host/a-b")
    assert result.exit_code == 1 and "milvus://host:19530/collection" in flat(result.stderr)


def test_the_uri_scheme_picks_the_store_backend_and_anything_else_is_a_directory(tmp_path):
    from rag.index.locations import BACKENDS, DIRECTORY, MilvusBackend, backend_for, disk_bytes, is_uri

    assert isinstance(backend_for(f"milvus-lite://{tmp_path}/kb.db"), MilvusBackend)
    assert isinstance(backend_for("milvus://host:19530/kb"), MilvusBackend)
    for directory in (tmp_path / "index", "index/default", "s3://bucket/kb", "MILVUS://host/kb", "x/milvus://host/kb"):
        assert backend_for(directory) is DIRECTORY and not is_uri(directory)
    assert set(BACKENDS) == {"milvus-lite", "milvus"} and is_uri("milvus://host/kb")
    assert local_dir(f"milvus-lite://{tmp_path}/kb.db") == tmp_path / "kb" and local_dir("~/i") == Path("~/i").expanduser()
    assert disk_bytes("milvus://host:19530/kb") is None  # a server's index takes nothing here
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "f").write_bytes(b"12345")
    assert disk_bytes(tmp_path / "index") == 5


def test_settings_keep_a_uri_unmangled_until_index_dir_is_pointed_elsewhere(tmp_path, monkeypatch, lite_uri):
    from dataclasses import replace

    monkeypatch.setenv("RAG_INDEX", lite_uri)
    settings = Settings()
    assert settings.index == lite_uri and settings.index_dir == tmp_path / "kb"  # uploads and feedback go beside it
    assert replace(settings, index_dir=tmp_path / "eval-index").index == str(tmp_path / "eval-index")
    assert settings.with_index(tmp_path / "dir").index == str(tmp_path / "dir")
    assert Settings().with_index("milvus://h:1/c").index == "milvus://h:1/c"


# --------------------------------------------------------------------------- the CLI


def test_ingest_search_ask_info_remove_through_a_milvus_lite_uri(corpus_dir, lite_uri, monkeypatch):
    result = run("ingest", corpus_dir, "--index", lite_uri)
    assert result.exit_code == 0, result.output
    assert "3 documents added" in result.stdout and lite_uri in flat(result.stdout)
    again = run("ingest", corpus_dir, "--index", lite_uri)
    assert "3 files unchanged" in again.stdout and "0 chunks embedded" in again.stdout

    for mode in ("hybrid", "dense", "bm25"):
        assert "30亿元" in search(lite_uri, HENAN_QUESTION, mode)[0]["text"], mode
    assert "215.5" in search(lite_uri, "八大算力枢纽节点总算力规模", "bm25")[0]["text"]

    summary = json.loads(run("info", "--json", "--docs", "--index", lite_uri).stdout)
    assert summary["index"] == lite_uri and summary["documents"] == 3 and summary["chunks"] >= 3
    assert summary["embedding_model"] == FAKE_MODEL_ID and summary["size_bytes"] > 0
    assert {"pymilvus", "milvus-lite"} <= set(summary["versions"])

    monkeypatch.setenv("RAG_LLM_BACKEND", "fake:scripted")
    monkeypatch.setenv("RAG_LLM_MODEL", json.dumps(["河南设立了总规模30亿元的人工智能产业基金[1]。"], ensure_ascii=False))
    monkeypatch.setenv("RAG_INDEX", lite_uri)  # the environment works like --index
    answer = json.loads(run("ask", HENAN_QUESTION + "？", "--json").stdout)
    assert not answer["refused"] and answer["citations"][0]["n"] == 1 and "30亿元" in answer["citations"][0]["quote"]

    removed = run("remove", "henan", "--index", lite_uri)
    assert removed.exit_code == 0 and "removed 1 document(s): henan" in removed.stdout
    assert not any("30亿元" in hit["text"] for hit in search(lite_uri, "河南 30亿元", "bm25"))
    assert json.loads(run("info", "--json", "--index", lite_uri).stdout)["documents"] == 2
    missing = run("remove", "henan", "--index", lite_uri)
    assert missing.exit_code == 1 and "nodocumentorsource'henan'" in flat(missing.stderr)


def test_an_index_written_by_another_process_is_read_back(corpus_dir, lite_uri):
    done = subprocess.run([sys.executable, "-m", "rag", "ingest", str(corpus_dir), "--index", lite_uri], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "30亿元" in search(lite_uri, HENAN_QUESTION)[0]["text"]
    assert len(open_store(lite_uri).documents()) == 3


def test_a_missing_milvus_index_says_how_to_build_it(lite_uri, tmp_path):
    result = run("search", "基金", "--index", lite_uri)
    assert result.exit_code == 1 and f"noindexat{lite_uri}" in flat(result.stderr)
    assert not (tmp_path / "kb.db").exists()  # asking did not create an empty Milvus Lite file


def test_dense_results_equal_the_faiss_directory_and_hybrid_agrees_on_top_hits(lite_uri, tmp_path):
    faiss_dir = tmp_path / "faiss"
    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    ingest([SAMPLE_CORPUS], faiss_dir, embedder)
    ingest([SAMPLE_CORPUS], lite_uri, embedder)
    faiss, milvus = Retriever(faiss_dir, embedder), Retriever(open_store(lite_uri), embedder)
    for question in (HENAN_QUESTION, "八大算力枢纽节点总算力规模", "人形机器人市场规模", "广西人工智能产业基金"):
        dense = [faiss.search(question, 10, "dense"), milvus.search(question, 10, "dense")]
        assert [h.chunk.chunk_id for h in dense[0]] == [h.chunk.chunk_id for h in dense[1]]
        np.testing.assert_allclose([h.score for h in dense[0]], [h.score for h in dense[1]], atol=1e-5)
        top = [{h.chunk.chunk_id for h in r.search(question, 3)} for r in (faiss, milvus)]
        assert len(top[0] & top[1]) >= 2, question  # BM25 differs a little (jieba in Milvus, bm25s here)


def test_milvus_own_rrf_ranker_gives_the_retriever_s_fused_scores(lite_uri):
    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    ingest([SAMPLE_CORPUS], lite_uri, embedder)
    store = open_store(lite_uri)
    for question in (HENAN_QUESTION, "八大算力枢纽节点总算力规模"):
        ours = Retriever(store, embedder).search(question, 10)
        native = store.search_hybrid(question, embedder.embed([question], kind="query")[0], 10)
        assert [round(h.score, 6) for h in ours] == [round(f.score, 6) for f in native]
        assert ours[0].chunk == native[0].chunk
        assert {h.chunk.chunk_id for h in ours[:-1]} <= {f.chunk.chunk_id for f in native}  # ties may swap
    source = sorted(store.sources())[0]
    where = SearchFilter(sources=(source,))  # a filter is the same expression in both requests
    ours = Retriever(store, embedder).search(HENAN_QUESTION, 10, where=where)
    native = store.search_hybrid(HENAN_QUESTION, embedder.embed([HENAN_QUESTION], kind="query")[0], 10, where=where)
    assert native and {f.chunk.source for f in native} == {source}
    assert [round(h.score, 6) for h in ours] == [round(f.score, 6) for f in native]


def test_an_interrupted_ingest_into_milvus_resumes_from_its_journal(lite_uri, monkeypatch):
    monkeypatch.setattr(rag.index.ingest, "EMBED_BATCH", 8)
    failing = FailingEmbedder(ok_batches=2)
    with pytest.raises(Interrupted):
        ingest([SAMPLE_CORPUS], lite_uri, failing)
    assert sorted(p.name for p in (local_dir(lite_uri) / "pending").rglob("batch-*.npz")) == ["batch-000000.npz", "batch-000001.npz"]
    resumed = CountingEmbedder()
    report = ingest([SAMPLE_CORPUS], lite_uri, resumed)
    assert not {t for b in failing.batches for t in b} & {t for b in resumed.batches for t in b}
    assert report.chunks_embedded == resumed.texts_embedded and report.chunks_embedded + 16 == report.chunks_total
    assert not (local_dir(lite_uri) / "pending").exists()


def test_another_model_is_refused_and_rebuild_replaces(corpus_dir, lite_uri):
    ingest([corpus_dir], lite_uri, HashingEmbedder(model_id=FAKE_MODEL_ID))
    reader = open_store(lite_uri)
    other = HashingEmbedder(dim=128, model_id="other-model")
    with pytest.raises(IndexStoreError, match="other-model"):
        ingest([corpus_dir], lite_uri, other)
    ingest([corpus_dir / "henan.txt"], lite_uri, other, rebuild=True)
    assert reader.refresh() is True  # the rebuilt collections start a new generation, not generation 1 again
    for store in (reader, open_store(lite_uri)):
        assert (store.manifest.model_id, store.manifest.dim, [d.doc_id for d in store.documents()]) == ("other-model", 128, ["henan"])


def test_a_milvus_lite_file_held_by_another_process_is_a_clear_error(corpus_dir, lite_uri, tmp_path):
    holder = textwrap.dedent(
        f"""
        import sys, time
        from pymilvus import MilvusClient
        MilvusClient({str(tmp_path / "held.db")!r})
        print("ready", flush=True)
        sys.stdin.read()
        """
    )
    with subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
            result = run("ingest", corpus_dir, "--index", f"milvus-lite://{tmp_path}/held.db")
            assert result.exit_code == 1
            assert "oneprocessatatime" in flat(result.stderr), result.stderr
        finally:
            process.communicate("", timeout=30)


def test_the_web_knowledge_base_uploads_asks_and_deletes_on_a_milvus_index(tmp_path, lite_uri):
    from rag.components import Components
    from rag.index.uploads import uploads_dir
    from rag.models.fakes import ScriptedGenerator
    from rag.web.app import WebApp

    settings = Settings().with_index(lite_uri)
    models = Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator("青岚市设立了总规模77亿元的青岚未来产业基金[1]。"))
    app = WebApp(settings, models, feedback_file=tmp_path / "feedback.jsonl")
    assert "知识库还是空的" in app.kb_view()[0]
    article = tmp_path / "browser-temp" / "青岚.txt"
    article.parent.mkdir()
    article.write_text("青岚市设立未来产业基金\n\n青岚市人民政府宣布，设立总规模77亿元的青岚未来产业基金。\n", encoding="utf-8")
    status, _, rows, _, _ = app.upload([str(article)])
    assert "✅" in status and len(rows) == 1
    assert (uploads_dir(settings.index_dir) / "青岚.txt").exists() and settings.index_dir == tmp_path / "kb"
    *_, (chat, _, sources, _) = app.ask("青岚未来产业基金的规模是多少？", [])
    assert "77亿元" in chat[-1]["content"] and "青岚.txt" in sources
    status, _, rows, _ = app.delete("青岚")
    assert "已删除" in status and rows == [] and not (uploads_dir(settings.index_dir) / "青岚.txt").exists()


# --------------------------------------------------------------------------- migration


class NoEmbedding(CountingEmbedder):
    """Fails the test if anything is embedded as a passage."""

    def embed(self, texts, kind="passage"):
        assert kind == "query", f"re-embedded {len(texts)} passages"
        return super().embed(texts, kind)


def test_migrate_copies_an_index_directory_without_embedding(sample_index, lite_uri, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("migrate must not load an embedding model")

    monkeypatch.setattr("rag.models.embedders.make_embedder", no_model)
    result = run("migrate", "--from", sample_index, "--to", lite_uri)
    assert result.exit_code == 0, result.output
    assert "nothing was embedded" in result.stdout

    origin, copy = FaissStore.load(sample_index), open_store(lite_uri)
    assert (copy.manifest.model_id, copy.manifest.dim, copy.manifest.chunking) == (
        origin.manifest.model_id,
        origin.manifest.dim,
        origin.manifest.chunking,
    )
    assert copy.count() == origin.count() and copy.documents() == origin.documents() and copy.sources() == origin.sources()
    keys = [text_key(chunk) for chunk in origin.chunks]
    known = copy.known_vectors(keys)
    np.testing.assert_array_equal(np.stack([known[key] for key in keys]), origin.vectors)

    report = ingest([SAMPLE_CORPUS], lite_uri, NoEmbedding())  # the copied sources count as ingested
    assert report.chunks_embedded == 0 and len(report.files_unchanged) == report.files_seen
    hits = Retriever(copy, NoEmbedding()).search(HENAN_QUESTION, 3)
    assert "30亿元" in hits[0].chunk.text


def test_migrate_refuses_a_target_that_holds_an_index(sample_index, lite_uri, tmp_path):
    migrate(sample_index, lite_uri)
    with pytest.raises(IndexStoreError, match="already holds an index"):
        migrate(sample_index, lite_uri)
    assert migrate(sample_index, lite_uri, rebuild=True).chunks == FaissStore.load(sample_index).count()
    copy = tmp_path / "copy"
    shutil.rmtree(copy, ignore_errors=True)
    assert migrate(sample_index, str(copy)).documents == len(FaissStore.load(copy).documents())  # a directory works too


def test_rag_eval_scores_a_milvus_lite_index_like_the_directory(tmp_path, corpus_dir, lite_uri):
    rows = [
        {"qid": "c1", "question": "河南设立的人工智能产业基金规模是多少？", "answers": ["30亿元"], "gold_pids": []},
        {"qid": "c2", "question": "八大算力枢纽节点总算力规模是多少？", "answers": ["215.5 EFLOPS"], "gold_pids": []},
    ]
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    reports = {}
    for name, index in (("milvus", lite_uri), ("faiss", str(tmp_path / "faiss-index"))):
        out = tmp_path / name
        args = ["eval", "-q", str(questions), "--corpus", str(corpus_dir), "--index", index, "--retrieval-only", "--out", str(out)]
        result = run(*args)
        assert result.exit_code == 0, result.output
        reports[name] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert reports["milvus"]["config"]["index"]["path"] == lite_uri
    assert reports["milvus"]["config"]["index"]["chunks"] == reports["faiss"]["config"]["index"]["chunks"] > 0
    ranked = {name: [row["retrieved"][:1] for row in report["questions"]] for name, report in reports.items()}
    assert ranked["milvus"] == ranked["faiss"]  # the same first passage for each question


def test_a_collection_from_before_dates_and_tags_opens_and_takes_source_filters(lite_uri, corpus_dir, monkeypatch):
    from pymilvus import CollectionSchema

    from rag.errors import InputError
    from rag.index.milvus_store import client_for

    add_field = CollectionSchema.add_field

    def without_metadata(self, field_name, *args, **kwargs):  # the schema an older version created
        return self if field_name in ("date", "tags") else add_field(self, field_name, *args, **kwargs)

    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    with monkeypatch.context() as patch:
        patch.setattr(CollectionSchema, "add_field", without_metadata)
        ingest([corpus_dir / "henan.txt"], lite_uri, embedder)
    ingest([corpus_dir / "compute.txt"], lite_uri, embedder)  # a later write into the old collection
    target = milvus_target(lite_uri)
    fields = {f["name"] for f in client_for(target.uri, target.token).describe_collection(target.collection)["fields"]}
    assert "source" in fields and not {"date", "tags"} & fields
    retriever = Retriever(open_store(lite_uri), embedder)
    assert {hit.chunk.doc_id for hit in retriever.search("基金 算力", k=5)} == {"henan", "compute"}
    henan = str((corpus_dir / "henan.txt").resolve())
    assert {hit.chunk.doc_id for hit in retriever.search("基金 算力", k=5, where=SearchFilter(sources=(henan,)))} == {"henan"}
    with pytest.raises(InputError, match="rebuild"):
        retriever.search("基金", k=5, where=SearchFilter(tags=("科技",)))
def test_an_index_from_before_page_numbers_is_read_and_written(tmp_path, monkeypatch, corpus_dir):
    """Collections created before chunks had a ``page`` field keep working (pages read as None)."""
    from pymilvus.orm.schema import CollectionSchema

    add_field = CollectionSchema.add_field

    def without_page(self, field_name, datatype, **kwargs):
        return self if field_name == "page" else add_field(self, field_name, datatype, **kwargs)

    uri = f"milvus-lite://{tmp_path}/old.db"
    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    with monkeypatch.context() as patch:
        patch.setattr(CollectionSchema, "add_field", without_page)
        ingest([corpus_dir / "henan.txt"], uri, embedder)
    target = milvus_target(uri)
    fields = client_for(target.uri, target.token).describe_collection(target.collection)["fields"]
    assert "page" not in {field["name"] for field in fields}
    ingest([corpus_dir], uri, embedder)  # a later ingest into the old collection
    hits = Retriever(open_store(uri), embedder).search(HENAN_QUESTION, k=3)
    assert "30亿元" in hits[0].chunk.text and all(hit.chunk.page is None for hit in hits)
