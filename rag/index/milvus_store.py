"""A :class:`~rag.index.store.Store` in Milvus: a Milvus Lite file or a Milvus server, through ``MilvusClient``.

Two collections per index (``<name>`` is the collection named by the location)::

    <name>        one row per chunk: chunk_id (primary key), row, doc_id, title, source, text,
                  position, date, tags, page (0: none), text_key, embed_text (Simplified; jieba analyzer -> BM25 sparse vector), dense
    <name>_meta   the manifest with the document and source lists, as JSON split into pages
                  "<generation>/<n>", and a "head" row naming the current generation (a random id,
                  so a rebuild that starts the collections again never repeats one)

Dense search is inner product over unit vectors (cosine, as the FAISS directory); lexical
search is Milvus's own BM25 over the jieba tokens of the embedded text in Simplified form
(``embed_text`` holds it, queries are converted alike; ``text`` keeps the original script). Search
filters (:class:`~rag.index.filters.SearchFilter`) become Milvus boolean expressions inside the search.
Collections made before ``date`` and ``tags`` existed still open and take source filters; date
and tag filters on them ask for a rebuild (Milvus Lite cannot add fields to a collection). A commit deletes the
chunks of the replaced documents, inserts the new ones, then writes the new metadata pages and
switches the head: readers never see half-written metadata. Milvus has no transaction across
collections, so a crash inside a commit can leave chunks the metadata does not list yet; running
the same ingest or removal again repairs it (it deletes by doc_id before inserting). The
embedding journal is a local folder (``pending/``), as in the index directory.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexStoreError, InputError
from rag.files import now_iso
from rag.index.chunking import Chunk, ChunkingConfig
from rag.index.faiss_store import PendingEmbeddings
from rag.index.filters import SearchFilter
from rag.index.lexical import LEXICAL_SCHEME, STOPWORDS, tokenize
from rag.index.locations import MilvusTarget, redact
from rag.index.store import (
    DocumentRecord,
    Manifest,
    ScoredChunk,
    SourceRecord,
    check_same_chunking,
    check_same_model,
    documents_of,
    lexical_is_current,
    library_versions,
    new_manifest,
    sources_of,
    text_key,
)
from rag.text_script import to_simplified

STORE_FORMAT = "rag-zh-milvus/1"
HEAD = "head"
PAGE_CHARS = 60_000  # metadata JSON (ASCII-escaped) per VARCHAR row; Milvus caps a VARCHAR at 65,535 bytes
INSERT_BATCH = 512
FILTER_BATCH = 256  # values per `field in [...]` filter
HNSW_EF = 64
CHUNK_FIELDS = ["chunk_id", "doc_id", "title", "source", "text", "position", "date", "tags", "page", "row"]
METADATA_FIELDS = {"date", "tags"}  # absent from collections made before filters (and "page" before page numbers)
MAX_TAGS, MAX_TAG_CHARS = 64, 256
PUNCTUATION = list("，。！？；：、“”‘’（）《》【】〔〕—…·,.!?;:()[]<>\"'-/%")
ANALYZER = {
    "tokenizer": {"type": "jieba", "mode": "search"},
    "filter": ["lowercase", {"type": "stop", "stop_words": sorted(STOPWORDS) + PUNCTUATION}],
}
BM25_PARAMS = {"bm25_k1": 1.5, "bm25_b": 0.75}  # the FAISS directory's BM25 (bm25s's defaults)


def milvus_versions() -> dict[str, str]:
    """Versions recorded in the manifest: the project's, plus pymilvus and milvus-lite."""
    return library_versions(("pymilvus", "milvus-lite"))


@functools.cache
def client_for(uri: str, token: str) -> Any:
    """One ``MilvusClient`` per Milvus (Lite file or server) and process."""
    from pymilvus import MilvusClient

    return MilvusClient(uri=uri, token=token, timeout=30)


def _client(target: MilvusTarget) -> Any:
    """The client for ``target``; a failure to connect is an :class:`IndexStoreError` naming the index."""
    from pymilvus import MilvusException

    try:
        return client_for(target.uri, target.token)
    except MilvusException as exc:
        hint = (
            "; a Milvus Lite file serves one process at a time (stop the other `rag` process, or use a Milvus server)"
            if target.is_lite
            else ""
        )
        raise IndexStoreError(redact(f"cannot connect to Milvus at {target.location}: {exc.message}{hint}")) from exc


def _literal_list(values: Iterable[str]) -> str:
    """``["a", "b"]`` as a Milvus filter literal (JSON string escapes are Milvus's too)."""
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MilvusStore:
    """An index in Milvus; documents, sources and the manifest are read at open and on :meth:`refresh`."""

    def __init__(self, target: MilvusTarget, raw: dict[str, Any], generation: str, reset: bool = False) -> None:
        self.target = target
        self.location = target.location
        self._client = _client(target)
        self._snapshot = (generation, raw)  # swapped whole, so readers in other threads see one or the other
        self._reset = reset  # a rebuild: the collections are dropped at the first commit
        self._fields: set[str] | None = None  # the chunk collection's fields, read on first use

    # ---------------------------------------------------------------- construction

    @classmethod
    def exists(cls, target: MilvusTarget) -> bool:
        if target.is_lite and not Path(target.uri).exists():
            return False  # do not create an empty Milvus Lite file just by asking
        client = _client(target)
        if not client.has_collection(target.meta):
            return False
        for name in (target.meta, target.collection):  # collections another process wrote start released
            if client.has_collection(name):
                client.load_collection(name)
        return bool(client.get(target.meta, ids=[HEAD]))

    @classmethod
    def load(cls, target: MilvusTarget) -> MilvusStore:
        """Open an existing index; a missing or unreadable one is an :class:`IndexStoreError`."""
        if not cls.exists(target):
            raise IndexStoreError(f"no index at {target.location}: run `rag ingest PATH --index {target.location}` first")
        generation, raw = _read_meta(_client(target), target)
        return cls(target, raw, generation)

    @classmethod
    def open_for_writing(
        cls, target: MilvusTarget, model_id: str, dim: int, chunking: ChunkingConfig, rebuild: bool = False
    ) -> MilvusStore:
        """Open the index (checking model and chunking) or start an empty one."""
        if target.is_lite:
            Path(target.uri).parent.mkdir(parents=True, exist_ok=True)
        if rebuild or not cls.exists(target):
            raw = {**new_manifest(STORE_FORMAT, model_id, dim, chunking, milvus_versions()), "next_row": 0}
            return cls(target, raw, "", reset=True)
        store = cls.load(target)
        check_same_model(target.location, store.manifest, model_id, dim)
        check_same_chunking(target.location, store.manifest, chunking)
        return store

    # ---------------------------------------------------------------- properties

    @property
    def _raw(self) -> dict[str, Any]:
        return self._snapshot[1]

    @property
    def manifest(self) -> Manifest:
        return Manifest.from_raw(self._raw)

    @property
    def dim(self) -> int:
        return int(self._raw["embedding"]["dim"])

    def count(self) -> int:
        return int(self._raw["n_chunks"])

    def documents(self) -> list[DocumentRecord]:
        return documents_of(self._raw)

    def sources(self) -> dict[str, SourceRecord]:
        return sources_of(self._raw)

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        if not self.count():
            return []
        rows = self._client.query(
            self.target.collection, filter=f"doc_id in {_literal_list([doc_id])}", output_fields=self._output_fields()
        )
        return sorted(map(_chunk_of, rows), key=lambda c: c.position)

    # ---------------------------------------------------------------- search

    def _chunk_fields(self) -> set[str]:
        """The fields of the chunk collection (every field of :data:`CHUNK_FIELDS` for a new one)."""
        if self._fields is None:
            client, name = self._client, self.target.collection
            described = client.describe_collection(name)["fields"] if not self._reset and client.has_collection(name) else None
            self._fields = {f["name"] for f in described} if described else set(CHUNK_FIELDS)
        return self._fields

    def _output_fields(self) -> list[str]:
        return [name for name in CHUNK_FIELDS if name in self._chunk_fields()]

    def _expression(self, where: SearchFilter | None) -> str:
        """``where`` as a Milvus boolean expression ("" for no filter)."""
        if not where:
            return ""
        if (where.date_from or where.date_to or where.tags) and not METADATA_FIELDS <= self._chunk_fields():
            raise InputError(
                f"{self.location} was built before date and tag filters; rebuild it with `rag ingest --rebuild` to use them"
            )
        parts = []
        if where.date_from or where.date_to:
            parts.append('date != ""')
        if where.date_from:
            parts.append(f"date >= {json.dumps(where.date_from)}")
        if where.date_to:
            parts.append(f"date <= {json.dumps(where.date_to)}")
        if where.sources:
            parts.append(f"source in {_literal_list(where.sources)}")
        if where.tags:
            parts.append(f"ARRAY_CONTAINS_ANY(tags, {_literal_list(where.tags)})")
        return " and ".join(parts)

    def search_dense(self, vector: np.ndarray, k: int, where: SearchFilter | None = None) -> list[ScoredChunk]:
        if not self.count():
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(self.dim).tolist()
        params = {"params": {"ef": max(k, HNSW_EF)}} if self.target.dense_index == "HNSW" else {}
        hits = self._client.search(
            self.target.collection,
            data=[query],
            filter=self._expression(where),
            anns_field="dense",
            limit=k,
            output_fields=self._output_fields(),
            search_params={"metric_type": "IP", **params},
        )
        return [_scored(hit, float(hit["distance"])) for hit in hits[0]]

    def search_lexical(self, query: str, k: int, where: SearchFilter | None = None) -> list[ScoredChunk]:
        if not self.count() or not tokenize(query):
            return []
        hits = self._client.search(
            self.target.collection,
            data=[to_simplified(query)],
            filter=self._expression(where),
            anns_field="sparse",
            limit=k,
            output_fields=self._output_fields(),
            search_params={"metric_type": "BM25"},
        )
        # Milvus Lite reports BM25 as a negative distance, a server as the positive score.
        scored = [_scored(hit, abs(float(hit["distance"]))) for hit in hits[0]]
        return [found for found in scored if found.score > 0]

    def search_hybrid(
        self, query: str, vector: np.ndarray, k: int, candidates: int = 50, rrf_k: int = 60, where: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        """Dense and BM25 fused by Milvus's own RRF ranker, in one request (not part of the protocol).

        Scores equal :func:`rag.qa.retriever.reciprocal_rank_fusion` of the two lists; chunks with
        equal scores may come in another order (the Retriever breaks ties by ``row``).
        """
        from pymilvus import AnnSearchRequest, RRFRanker

        if not self.count():
            return []
        dense = np.asarray(vector, dtype=np.float32).reshape(self.dim).tolist()
        expr = self._expression(where)
        requests = [AnnSearchRequest(data=[dense], anns_field="dense", param={"metric_type": "IP"}, limit=candidates, expr=expr)]
        if tokenize(query):
            requests.append(
                AnnSearchRequest(
                    data=[to_simplified(query)], anns_field="sparse", param={"metric_type": "BM25"}, limit=candidates, expr=expr
                )
            )
        hits = self._client.hybrid_search(
            self.target.collection, requests, RRFRanker(rrf_k), limit=k, output_fields=self._output_fields()
        )
        return [_scored(hit, float(hit["distance"])) for hit in hits[0]]

    def known_vectors(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        if not self.count():
            return {}
        found: dict[str, np.ndarray] = {}
        for batch in _batches(sorted(set(keys)), FILTER_BATCH):
            rows = self._client.query(
                self.target.collection, filter=f"text_key in {_literal_list(batch)}", output_fields=["text_key", "dense"]
            )
            for row in rows:
                found[row["text_key"]] = np.asarray(row["dense"], dtype=np.float32)
        return found

    def refresh(self) -> bool:
        """Re-read the metadata if another handle committed since; True if it did."""
        head = self._client.has_collection(self.target.meta) and self._client.get(self.target.meta, ids=[HEAD])
        if not head:
            raise IndexStoreError(f"the index at {self.target.location} is gone or being rebuilt; try again after `rag ingest`")
        if json.loads(head[0]["body"])["generation"] == self._snapshot[0]:
            return False
        self._snapshot = _read_meta(self._client, self.target)
        self._fields = None  # a rebuild by another process may have made the collection anew
        return True

    # ---------------------------------------------------------------- writing

    def embedding_journal(self, model_id: str) -> PendingEmbeddings:
        return PendingEmbeddings(self.target.journal_dir, model_id)

    def commit(
        self,
        drop_doc_ids: Collection[str],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        documents: Sequence[DocumentRecord],
        sources: Sequence[SourceRecord],
    ) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(chunks), self.dim)
        self._prepare_collections()
        collection = self.target.collection
        doomed = sorted(set(drop_doc_ids) | {c.doc_id for c in chunks})  # re-running a cut-off commit repairs it
        for batch in _batches(doomed, FILTER_BATCH):
            self._client.delete(collection, filter=f"doc_id in {_literal_list(batch)}")
        first_row = int(self._raw["next_row"])
        fields = self._chunk_fields()
        rows = [_chunk_row(chunk, vector, first_row + n, fields) for n, (chunk, vector) in enumerate(zip(chunks, vectors))]
        for batch in _batches(rows, INSERT_BATCH):
            self._client.insert(collection, list(batch))
        if self.target.is_lite:  # Milvus Lite rebuilds the indexes of unflushed rows on every search
            self._client.flush(collection)
        counted = self._client.query(collection, filter="", output_fields=["count(*)"])
        raw = {
            **self._raw,
            "documents": [asdict(d) for d in documents],
            "sources": [asdict(s) for s in sources],
            "n_chunks": int(counted[0]["count(*)"]),
            "next_row": first_row + len(chunks),
            "updated_at": now_iso(),
            "versions": milvus_versions(),
        }
        self._snapshot = (_write_meta(self._client, self.target, raw), raw)

    def _prepare_collections(self) -> None:
        """Create the collections if missing (dropping them first for a rebuild)."""
        client, target = self._client, self.target
        if self._reset:
            for name in (target.collection, target.meta):
                client.drop_collection(name)
            self._reset, self._fields = False, None
        if not client.has_collection(target.collection):
            _create_chunks(client, target, self.dim)
        if not client.has_collection(target.meta):
            _create_meta(client, target)


# -------------------------------------------------------------------- rows and collections


def _chunk_of(entity: dict[str, Any]) -> Chunk:
    """A chunk from a row; an older collection has no date, tags or page, and page 0 is none."""
    fields = {name: entity[name] for name in CHUNK_FIELDS if name != "row" and name in entity}
    return Chunk(**{**fields, "page": fields.get("page") or None})


def _scored(hit: dict[str, Any], score: float) -> ScoredChunk:
    entity = hit["entity"]
    return ScoredChunk(_chunk_of(entity), score, int(entity["row"]))


def _chunk_row(chunk: Chunk, vector: np.ndarray, row: int, fields: set[str]) -> dict[str, Any]:
    """A chunk as a row of a collection with ``fields`` (an old one has no date, tags or page)."""
    values = {name: value for name, value in asdict(chunk).items() if name in fields}
    if "tags" in values:
        values["tags"] = [tag[:MAX_TAG_CHARS] for tag in chunk.tags[:MAX_TAGS]]
    if "page" in values:
        values["page"] = chunk.page or 0
    return {
        **values,
        "row": row,
        "text_key": text_key(chunk),
        "embed_text": to_simplified(chunk.embed_text),
        "dense": vector.tolist(),
    }


def _create_chunks(client: Any, target: MilvusTarget, dim: int) -> None:
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("row", DataType.INT64)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=2048)
    schema.add_field("title", DataType.VARCHAR, max_length=65535)
    schema.add_field("source", DataType.VARCHAR, max_length=65535)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    schema.add_field("position", DataType.INT64)
    schema.add_field("date", DataType.VARCHAR, max_length=16)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_TAGS, max_length=MAX_TAG_CHARS * 4)
    schema.add_field("page", DataType.INT64)
    schema.add_field("text_key", DataType.VARCHAR, max_length=64)
    schema.add_field("embed_text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params=ANALYZER)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_function(
        Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["embed_text"], output_field_names=["sparse"])
    )
    index = client.prepare_index_params()
    dense_params = {"M": 16, "efConstruction": 200} if target.dense_index == "HNSW" else {}
    index.add_index("dense", index_type=target.dense_index, metric_type="IP", params=dense_params)
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25_PARAMS)
    index.add_index("doc_id", index_type="INVERTED")
    index.add_index("text_key", index_type="INVERTED")
    _create(client, target.collection, schema, index)


def _create_meta(client: Any, target: MilvusTarget) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("body", DataType.VARCHAR, max_length=65535)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
    index = client.prepare_index_params()
    index.add_index("unused", index_type="FLAT", metric_type="L2")
    _create(client, target.meta, schema, index)


def _create(client: Any, name: str, schema: Any, index: Any) -> None:
    """Create, index and load a collection; reads see every acknowledged write ("Strong").

    The indexes are built on an empty collection, so there is nothing to wait for (pymilvus
    would poll each index's state every 0.5 s).
    """
    client.create_collection(name, schema=schema, consistency_level="Strong")
    client.create_index(name, index, sync=False)
    client.load_collection(name)


def _meta_row(key: str, body: str) -> dict[str, Any]:
    return {"key": key, "body": body, "unused": [0.0, 0.0]}


def _write_meta(client: Any, target: MilvusTarget, raw: dict[str, Any]) -> str:
    """Write ``raw`` as a new generation of pages, point the head at it, drop the old pages."""
    head = client.get(target.meta, ids=[HEAD])
    old: dict[str, Any] = json.loads(head[0]["body"]) if head else {"generation": "", "pages": 0}
    generation = uuid.uuid4().hex
    text = json.dumps(raw, ensure_ascii=True)  # ASCII: a page of PAGE_CHARS characters is as many bytes
    pages = [text[start : start + PAGE_CHARS] for start in range(0, len(text), PAGE_CHARS)]
    for batch in _batches([_meta_row(f"{generation}/{n}", page) for n, page in enumerate(pages)], 16):
        client.upsert(target.meta, list(batch))
    client.upsert(target.meta, [_meta_row(HEAD, json.dumps({"generation": generation, "pages": len(pages)}))])
    if old["pages"]:
        client.delete(target.meta, ids=[f"{old['generation']}/{n}" for n in range(int(old["pages"]))])
    return generation


def _read_meta(client: Any, target: MilvusTarget, attempts: int = 3) -> tuple[str, dict[str, Any]]:
    """The current generation and its metadata (read again if a writer switched it meanwhile)."""
    for _ in range(attempts):
        head = client.get(target.meta, ids=[HEAD])
        if not head:
            break
        current = json.loads(head[0]["body"])
        ids = [f"{current['generation']}/{n}" for n in range(int(current["pages"]))]
        body = {row["key"]: row["body"] for row in client.get(target.meta, ids=ids)}
        if len(body) == len(ids):
            return str(current["generation"]), _checked(target, json.loads("".join(body[key] for key in ids)))
    raise IndexStoreError(f"{target.location}: the index metadata is incomplete; rebuild it with `rag ingest --rebuild`")


def _checked(target: MilvusTarget, raw: Any) -> dict[str, Any]:
    required = ("format", "embedding", "chunking", "versions", "n_chunks", "next_row", "documents", "sources")
    if not isinstance(raw, dict) or any(key not in raw for key in required):
        raise IndexStoreError(f"{target.location} does not hold a rag-zh index; rebuild it with `rag ingest --rebuild`")
    if raw["format"] != STORE_FORMAT:
        raise IndexStoreError(f"{target.location}: index format {raw['format']!r} is not {STORE_FORMAT!r}; rebuild it")
    if not lexical_is_current(Manifest.from_raw(raw)):
        raise IndexStoreError(
            f"{target.location}: its BM25 side was built with {raw.get('lexical') or 'an older tokenizer'}, not "
            f"{LEXICAL_SCHEME} (Traditional and Simplified text would not match); rebuild it with `rag ingest --rebuild`"
        )
    return raw
