"""Verified streaming with the real bundled models on the sample corpus: for questions the articles
cannot answer, what an ``openai`` client assembles from ``rag api``'s stream is the final answer."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_api import FOOTNOTE_RULE, Server
from test_verified_stream import OUR_MARKERS

from rag.components import Components
from rag.config import REPO_ROOT, Settings
from rag.index.ingest import ingest
from rag.qa.prompts import REFUSAL

pytestmark = pytest.mark.real

UNANSWERABLE = [
    "浙江省设立的人工智能产业基金总规模是多少？",  # streamed "…总规模是30亿元[3]" before the refusal
    "天津的人工智能产业基金规模有多大？",
    "河南30亿元人工智能产业基金由哪家机构担任管理人？",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("verified-real")
    settings = replace(Settings(), index_dir=work / "index", db_file=work / "rag.db")
    components = Components(settings)
    ingest([REPO_ROOT / "corpus"], settings.index_dir, components.embedder())
    with Server(components) as running:
        yield running


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_the_streamed_text_is_the_final_answer(server, question):
    stream = server.client().chat.completions.create(model="rag-zh", messages=[{"role": "user", "content": question}], stream=True)
    shown, final = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            shown += chunk.choices[0].delta.content
        if chunk.choices and chunk.choices[0].finish_reason == "stop":
            final = chunk.model_extra
    assert final is not None
    text = shown.split(FOOTNOTE_RULE)[0]
    assert text == final["answer"], (text, final)
    assert not OUR_MARKERS.search(shown)
    assert (text == REFUSAL) == final["refused"]
