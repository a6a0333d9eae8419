"""The remote embedder against the project's own API (``rag api`` under uvicorn on loopback, fake models).

The server's embedder is a :class:`Switchable` wrapper, so a test can slow it down, make it fail
once, or swap the model behind it (another dimension, another name) while the server runs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from conftest import FAKE_MODEL_ID
from test_api import KEY, Server, components_for

from rag.errors import IndexStoreError, ModelError
from rag.index.ingest import ingest
from rag.index.locations import open_store
from rag.models.embedders import TextKind, make_embedder
from rag.models.fakes import HashingEmbedder
from rag.models.remote_embedder import RemoteEmbedder
from rag.qa.retriever import Retriever

TEXTS = [f"第{n}段：河南设立总规模{n}0亿元的人工智能产业基金，重点投向算力基础设施。" for n in range(1, 41)]


class Switchable:
    """The server's embedder: records what it is sent, can be slowed, fail once, or be swapped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.inner = HashingEmbedder(model_id=FAKE_MODEL_ID)
        self.received: list[list[str]] = []
        self.delay_s = 0.0
        self.fail_next = 0
        self.in_flight = self.most_in_flight = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], kind: TextKind = "passage") -> np.ndarray:
        with self._lock:
            self.received.append(list(texts))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            failing, self.fail_next = self.fail_next > 0, max(self.fail_next - 1, 0)
        try:
            time.sleep(self.delay_s)
            if failing:
                raise RuntimeError("the GPU fell over")
            return self.inner.embed(texts, kind)
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Server, Switchable]]:
    embedder = Switchable()
    components = components_for(tmp_path_factory.mktemp("remote") / "no-index")
    components._embedder = embedder
    with Server(components, keys={KEY}) as server:
        yield server, embedder


@pytest.fixture
def server(served) -> Server:
    server, embedder = served
    embedder.reset()
    return server


@pytest.fixture
def switch(served) -> Switchable:
    return served[1]


def remote(server: Server, **kwargs) -> RemoteEmbedder:
    options = {"model": FAKE_MODEL_ID, "api_key": KEY, "backoff_s": 0.01, **kwargs}
    return RemoteEmbedder(f"{server.url}/v1", **options)


def test_vectors_equal_the_local_embedder(server, switch):
    embedder = remote(server)
    assert (embedder.model_id, embedder.dim) == (f"openai:{FAKE_MODEL_ID}", 256)
    got = embedder.embed(TEXTS)
    expected = HashingEmbedder(model_id=FAKE_MODEL_ID).embed(TEXTS)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.min(np.sum(got * expected, axis=1)) >= 0.999
    assert embedder.embed([]).shape == (0, 256)


def test_batches_go_out_several_at_a_time_and_come_back_in_order(server, switch):
    embedder = remote(server, batch_size=5, concurrency=3)
    switch.delay_s = 0.2
    switch.received.clear()
    started = time.perf_counter()
    got = embedder.embed(TEXTS[:30])
    elapsed = time.perf_counter() - started
    assert sorted(len(batch) for batch in switch.received) == [5] * 6
    assert switch.most_in_flight == 3 and elapsed < 6 * 0.2  # six 0.2 s requests, three at a time
    np.testing.assert_allclose(got, HashingEmbedder(model_id=FAKE_MODEL_ID).embed(TEXTS[:30]), atol=1e-6)


def test_e5_models_get_their_prefixes_from_the_client(server, switch):
    switch.inner = HashingEmbedder(model_id="intfloat/multilingual-e5-small")
    embedder = remote(server, model="intfloat/multilingual-e5-small")
    switch.received.clear()
    embedder.embed(["河南的基金"], kind="query")
    embedder.embed(["河南设立基金。"], kind="passage")
    embedder.embed(["原文"], kind="raw")
    assert switch.received == [["query: 河南的基金"], ["passage: 河南设立基金。"], ["原文"]]
    switch.inner = HashingEmbedder(model_id=FAKE_MODEL_ID)
    remote(server).embed(["河南的基金"], kind="query")
    assert switch.received[-1] == ["河南的基金"]  # other models: texts as given


def test_a_server_error_is_retried(server, switch):
    embedder = remote(server)
    switch.fail_next = 2
    assert embedder.embed(["算力"]).shape == (1, 256)
    switch.fail_next = 5
    with pytest.raises(ModelError, match=r"answered 500.*tried 3 times"):
        remote(server, retries=2).embed(["算力"])


def test_a_server_that_is_down_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelError, match=rf"127.0.0.1:{port}/v1/embeddings is not reachable.*tried 3 times.*RAG_EMBED_MODEL"):
        RemoteEmbedder(f"http://127.0.0.1:{port}/v1", model="m", retries=2, backoff_s=0.01)


def test_another_dimension_or_model_behind_the_server_is_refused(server, switch):
    embedder = remote(server)
    switch.inner = HashingEmbedder(dim=128, model_id=FAKE_MODEL_ID)
    with pytest.raises(ModelError, match="dimension 128, not 256"):
        embedder.embed(["算力"])
    switch.inner = HashingEmbedder(model_id="another-model")
    with pytest.raises(ModelError, match="answered with model 'another-model', not 'fake:hashing'"):
        embedder.embed(["算力"])


def test_keys_and_model_names_are_explained(server):
    with pytest.raises(ModelError, match="401.*RAG_EMBED_API_KEY"):
        remote(server, api_key="")
    with pytest.raises(ModelError, match=r"serves 3 models \(rag-zh, rag-zh:default, fake:hashing\).*RAG_EMBED_REMOTE_MODEL"):
        remote(server, model=None)
    with pytest.raises(ModelError, match="give the server's URL"):
        RemoteEmbedder("gpu-box:8000/v1")


def test_make_embedder_reads_the_environment(server, monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_EMBED_REMOTE_MODEL", FAKE_MODEL_ID)
    monkeypatch.setenv("RAG_EMBED_API_KEY", KEY)
    monkeypatch.setenv("RAG_EMBED_CONCURRENCY", "3")
    embedder = make_embedder(f"openai:{server.url}/v1", tmp_path)
    assert isinstance(embedder, RemoteEmbedder) and embedder.model_id == f"openai:{FAKE_MODEL_ID}"
    assert embedder._pool._max_workers == 3
    monkeypatch.setenv("RAG_EMBED_CONCURRENCY", "many")
    with pytest.raises(ModelError, match="RAG_EMBED_CONCURRENCY"):
        make_embedder(f"openai:{server.url}/v1", tmp_path)


def test_an_index_built_remotely_refuses_the_local_model(server, corpus_dir, tmp_path):
    embedder = remote(server)
    index = tmp_path / "index"
    ingest([corpus_dir], index, embedder)
    assert open_store(index).manifest.model_id == f"openai:{FAKE_MODEL_ID}"
    assert "30亿元" in Retriever(open_store(index), embedder).search("河南设立的人工智能产业基金规模是多少", 1)[0].chunk.text
    with pytest.raises(IndexStoreError, match="'openai:fake:hashing'.*'fake:hashing'"):
        Retriever(open_store(index), HashingEmbedder(model_id=FAKE_MODEL_ID))
