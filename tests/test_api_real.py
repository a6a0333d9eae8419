"""``rag api`` with the real bundled models: the official openai client, embeddings equal to the
local model's, and eight users at once on one model."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
from test_api import FOOTNOTE_RULE, QUESTIONS, Server, _stream_answer

from rag.components import Components
from rag.config import REPO_ROOT, Settings
from rag.index.ingest import ingest

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("api-real")
    settings = replace(Settings(), index_dir=work / "index", db_file=work / "rag.db", queue_capacity=8)
    components = Components(settings)
    ingest([REPO_ROOT / "corpus"], settings.index_dir, components.embedder())
    with Server(components) as running:
        yield running


def test_cited_answer_streamed_and_not(server):
    client = server.client()
    question = "河南设立的人工智能产业基金规模是多少？"
    whole = client.chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": question}])
    assert "30亿" in whole.choices[0].message.content and "[1]" in whole.choices[0].message.content
    assert whole.usage.prompt_tokens > 100 and whole.usage.completion_tokens > 3
    chunks = list(client.chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": question}], stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.split(FOOTNOTE_RULE)[0] == whole.choices[0].message.content.split(FOOTNOTE_RULE)[0]  # greedy: same answer


def test_embeddings_equal_the_local_model(server):
    texts = ["passage: 河南省设立总规模30亿元的人工智能产业基金。", "query: 八大算力枢纽节点总算力规模"]
    remote = server.client().embeddings.create(model="multilingual-e5-small", input=texts)
    local = server.components.embedder().embed(texts, kind="raw")
    cosines = [float(np.dot(np.asarray(item.embedding), row)) for item, row in zip(remote.data, local)]
    assert min(cosines) >= 0.999, cosines


def test_eight_users_at_once_each_get_their_own_answer(server):
    records: list[dict[str, object]] = [{} for _ in QUESTIONS]
    threads = [threading.Thread(target=_stream_answer, args=(server, q, r)) for q, r in zip(QUESTIONS, records)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    assert all("answer" in record for record in records), records
    assert "30亿" in str(records[0]["answer"]) and "215.5" in str(records[1]["answer"])
    waited = [record["positions"] for record in records if record["positions"]]
    assert len(waited) >= 6 and all(p == sorted(p, reverse=True) for p in waited)
