"""jieba tokenization and the BM25 index."""

from __future__ import annotations

from rag.index.lexical import STOPWORDS, BM25Index, tokenize


def test_numbers_and_units_are_kept_as_tokens():
    tokens = tokenize("设立总规模30亿元的人工智能产业基金，2025年规模达5347.9亿元。")
    assert "30" in tokens and "亿元" in tokens
    assert "2025" in tokens and "5347.9" in tokens
    assert "人工智能" in tokens and "基金" in tokens


def test_stopwords_and_punctuation_are_dropped():
    tokens = tokenize("河南设立的人工智能产业基金规模是多少？请问，在哪里！")
    assert not set(tokens) & STOPWORDS
    assert not set(tokens) & {"的", "是", "多少", "请问", "？", "，", "！"}
    assert tokens[:2] == ["河南", "设立"]
    assert tokenize("。，！？、；：“”（）《》 ...") == []


def test_latin_is_lower_cased():
    assert "eflops" in tokenize("总算力规模达215.5 EFLOPS")
    assert "ai" in tokenize("AI产业基金")


def test_question_and_statement_share_content_tokens():
    question = set(tokenize("河南设立的人工智能产业基金规模是多少"))
    statement = set(tokenize("河南省设立总规模30亿元的人工智能产业基金"))
    assert {"设立", "人工智能", "产业", "基金", "规模"} <= question & statement


def test_bm25_ranks_the_matching_chunk_first():
    corpus = [
        tokenize("广西计划组建认缴总规模不低于100亿元的广西人工智能产业基金。"),
        tokenize("河南省设立总规模30亿元的人工智能产业基金，壮大耐心资本。"),
        tokenize("八大算力枢纽节点总算力规模达215.5 EFLOPS。"),
    ]
    index = BM25Index(corpus)
    hits = index.search(tokenize("河南的产业基金有多大"), k=3)
    assert hits[0][0] == 1
    assert all(score > 0 for _, score in hits)
    assert [row for row, _ in index.search(tokenize("215.5"), k=3)] == [2]


def test_bm25_returns_only_positive_scores_and_handles_empty_input():
    index = BM25Index([tokenize("人工智能产业基金"), tokenize("算力枢纽节点")])
    assert index.search(tokenize("脑机接口"), k=5) == []
    assert index.search([], k=5) == []
    assert BM25Index([]).search(["基金"], k=5) == []
    assert len(index.search(tokenize("基金 算力"), k=10)) == 2
