"""jieba tokenization and the BM25 index."""

from __future__ import annotations

import pytest

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


NEWS = [
    "国家统计局发布数据，前三季度国内生产总值同比增长5.2%。",
    "新能源汽车出口量持续增长，比亚迪海外销量创新高。",
    "气象台发布暴雨蓝色预警，部分地区有大到暴雨。",
    "教育部印发通知，要求做好高校毕业生就业服务工作。",
    "人工智能大模型在医疗影像诊断中的应用不断拓展。",
    "铁路部门增开旅客列车，满足春运期间出行需求。",
    "央行下调存款准备金率0.25个百分点，释放长期资金。",
    "国产大飞机C919完成首次商业载客飞行。",
] * 3


def test_bm25_scores_match_bm25s_lucene_variant():
    import bm25s

    corpus = [tokenize(f"{text}第{n}条") for n, text in enumerate(NEWS)]
    reference = bm25s.BM25()
    reference.index([list(t) for t in corpus], show_progress=False)
    index = BM25Index(corpus)
    for query in ("国内生产总值增长", "新能源汽车出口", "春运旅客列车", "大模型医疗", "存款准备金率"):
        tokens = tokenize(query)
        rows, scores = reference.retrieve([tokens], k=len(corpus), show_progress=False)
        expected = {int(r): float(s) for r, s in zip(rows[0], scores[0]) if s > 0}
        got = dict(index.search(tokens, k=len(corpus)))
        assert got.keys() == expected.keys()
        assert all(abs(got[row] - expected[row]) < 1e-4 for row in got)


def test_bm25_add_and_remove_equal_a_fresh_index():
    corpus = [tokenize(f"{text}第{n}条") for n, text in enumerate(NEWS)]
    grown = BM25Index(corpus[:10])
    grown.add(corpus[10:17])
    grown.add(corpus[17:])
    grown.remove([0, 11, len(corpus) - 1])  # rows as numbered before the call; later rows move up
    kept = [tokens for row, tokens in enumerate(corpus) if row not in (0, 11, len(corpus) - 1)]
    fresh = BM25Index(kept)
    assert grown.size == fresh.size == len(kept)
    for query in ("增长", "列车 出行", "第5条", "降准 资金", "暴雨预警"):
        assert grown.search(tokenize(query), k=10) == fresh.search(tokenize(query), k=10)


def test_bm25_compacts_many_small_additions_without_changing_results():
    corpus = [tokenize(text) for text in NEWS]
    index = BM25Index()
    for tokens in corpus:
        index.add([tokens])
    index.remove([2, 3])
    assert len(index._blocks) <= BM25Index.max_blocks
    fresh = BM25Index([t for row, t in enumerate(corpus) if row not in (2, 3)])
    assert index.search(tokenize("商业载客飞行"), k=5) == fresh.search(tokenize("商业载客飞行"), k=5)


def test_bm25_refuses_rows_out_of_range():
    index = BM25Index([tokenize("基金"), tokenize("算力")])
    with pytest.raises(IndexError):
        index.remove([2])
    assert index.size == 2
