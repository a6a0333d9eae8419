"""Traditional Chinese with the real models: a question in one script answered, with a verified
citation, from an article in the other, and the answer written in the script of the question."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from conftest import FUND_ARTICLE
from test_traditional import TRAFFIC_ARTICLE

from rag.config import Settings
from rag.index.ingest import ingest
from rag.models.embedders import embedder_for
from rag.models.generators import make_generator
from rag.qa.pipeline import QAPipeline
from rag.qa.retriever import Retriever
from rag.text_script import detect_script

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> QAPipeline:
    workdir = tmp_path_factory.mktemp("real-traditional")
    corpus = workdir / "corpus"
    corpus.mkdir()
    (corpus / "henan.txt").write_text(FUND_ARTICLE, encoding="utf-8")
    (corpus / "taipei.txt").write_text(TRAFFIC_ARTICLE, encoding="utf-8")
    settings = replace(Settings(), index_dir=workdir / "index")
    embedder = embedder_for(settings)
    ingest([corpus], settings.index_dir, embedder)
    return QAPipeline(Retriever(settings.index_dir, embedder), make_generator(settings))


def cited_docs(answer) -> set[str]:
    return {answer.passages[c.n - 1].chunk.doc_id for c in answer.citations if c.verified}


def test_a_traditional_question_is_answered_in_traditional_from_a_simplified_article(pipeline):
    answer = pipeline.ask("河南設立的人工智能產業基金規模是多少？")
    assert not answer.refused, answer.to_dict()
    assert "30億" in re.sub(r"\s+", "", answer.answer), answer.answer
    assert detect_script(answer.answer) == "traditional", answer.answer
    assert any(doc.endswith("henan") for doc in cited_docs(answer)), answer.to_dict()


def test_a_simplified_question_is_answered_in_simplified_from_a_traditional_article(pipeline):
    answer = pipeline.ask("台北市号志更新的总经费是多少？")
    assert not answer.refused, answer.to_dict()
    assert "12亿" in re.sub(r"\s+", "", answer.answer), answer.answer
    assert detect_script(answer.answer) == "simplified", answer.answer
    assert any(doc.endswith("taipei") for doc in cited_docs(answer)), answer.to_dict()
