"""Hybrid retrieval: RRF, exact figures, refresh, validation of questions."""

from __future__ import annotations

import pytest
from conftest import FAKE_MODEL_ID

from rag.errors import IndexStoreError, InputError
from rag.index.ingest import ingest, remove
from rag.models.fakes import HashingEmbedder
from rag.qa.retriever import MAX_QUERY_CHARS, RRF_K, Retriever, reciprocal_rank_fusion

HENAN_QUESTION = "河南设立的人工智能产业基金规模是多少"


def test_rrf_sums_reciprocal_ranks():
    fused = reciprocal_rank_fusion([[10, 20, 30], [30, 10]], k=60)
    assert [row for row, _ in fused] == [10, 30, 20]
    scores = dict(fused)
    assert scores[10] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[30] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[20] == pytest.approx(1 / 62)


def test_rrf_agreement_beats_one_first_place_and_ties_break_by_row():
    fused = reciprocal_rank_fusion([[5, 7], [7, 9]])
    assert fused[0][0] == 7  # second and first beats first and absent
    assert fused[0][1] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert reciprocal_rank_fusion([[4], [2]]) == [(2, 1 / 61), (4, 1 / 61)]
    assert reciprocal_rank_fusion([]) == []


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_henan_fund_question_finds_the_30_billion_chunk_first(sample_index, embedder, mode):
    hits = Retriever(sample_index, embedder).search(HENAN_QUESTION, k=5, mode=mode)
    assert "30亿" in hits[0].chunk.text
    assert "河南" in hits[0].chunk.text
    assert hits[0].lexical_overlap
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_exact_figure_is_found_by_bm25(sample_index, embedder):
    hits = Retriever(sample_index, embedder).search("不低于 100亿元 的基金是哪里的", k=3, mode="bm25")
    assert any("100亿元" in h.chunk.text and "广西" in h.chunk.text for h in hits)


def test_dense_mode_returns_cosine_scores(sample_index, embedder):
    hits = Retriever(sample_index, embedder).search(HENAN_QUESTION, k=3, mode="dense")
    assert len(hits) == 3
    assert all(-1.0 <= h.score <= 1.0 for h in hits)
    assert hits[0].score >= hits[-1].score


def test_hit_json_has_exactly_the_documented_keys(sample_index, embedder):
    [hit] = Retriever(sample_index, embedder).search(HENAN_QUESTION, k=1)
    row = hit.to_dict()
    assert set(row) == {"rank", "chunk_id", "doc_id", "title", "source", "date", "tags", "page", "text", "score"}
    assert row["rank"] == 1 and row["text"] == hit.chunk.text and row["doc_id"].endswith("#1")
    assert row["title"] == "多地设立人工智能产业基金 助力AI+“破局”"


def test_refresh_picks_up_a_new_generation(corpus_dir, index_dir, embedder, tmp_path):
    ingest([corpus_dir / "compute.txt"], index_dir, embedder)
    retriever = Retriever(index_dir, embedder)
    assert retriever.refresh() is False
    assert not any("30亿元" in h.chunk.text for h in retriever.search(HENAN_QUESTION, k=5, mode="bm25"))
    ingest([corpus_dir / "henan.txt"], index_dir, embedder)
    assert retriever.refresh() is True
    assert "30亿元" in retriever.search(HENAN_QUESTION, k=1, mode="bm25")[0].chunk.text
    remove(index_dir, "henan")
    assert retriever.refresh() is True
    assert not any("30亿元" in h.chunk.text for h in retriever.search(HENAN_QUESTION, k=5))


def test_empty_index_returns_no_hits(corpus_dir, index_dir, embedder):
    ingest([corpus_dir / "henan.txt"], index_dir, embedder)
    remove(index_dir, "henan")
    assert Retriever(index_dir, embedder).search(HENAN_QUESTION) == []


@pytest.mark.parametrize("query", ["", "   \n\t", "问" * (MAX_QUERY_CHARS + 1)], ids=["empty", "blank", "too-long"])
def test_bad_questions_are_input_errors(sample_index, embedder, query):
    with pytest.raises(InputError, match="empty|limit"):
        Retriever(sample_index, embedder).search(query)


def test_longest_allowed_question_is_accepted(sample_index, embedder):
    assert Retriever(sample_index, embedder).search("基金" * (MAX_QUERY_CHARS // 2), k=1)


def test_unknown_mode_and_bad_k_are_input_errors(sample_index, embedder):
    retriever = Retriever(sample_index, embedder)
    with pytest.raises(InputError, match="unknown search mode 'fuzzy'.*hybrid"):
        retriever.search(HENAN_QUESTION, mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="k must be"):
        retriever.search(HENAN_QUESTION, k=0)


def test_index_of_another_model_is_refused(sample_index):
    with pytest.raises(IndexStoreError) as excinfo:
        Retriever(sample_index, HashingEmbedder(dim=384, model_id="bundled:multilingual-e5-small"))
    assert FAKE_MODEL_ID in str(excinfo.value) and "bundled:multilingual-e5-small" in str(excinfo.value)


def test_missing_index_is_refused(tmp_path, embedder):
    with pytest.raises(IndexStoreError, match="no index at"):
        Retriever(tmp_path / "none", embedder)


def test_rankings_show_each_list_and_their_fusion(sample_index, embedder):
    retriever = Retriever(sample_index, embedder)
    rankings = retriever.rankings(HENAN_QUESTION, k=4)
    for mode in ("dense", "bm25", "hybrid"):
        expected = retriever.search(HENAN_QUESTION, k=4, mode=mode)
        assert getattr(rankings, mode) == expected
    with pytest.raises(InputError):
        retriever.rankings(HENAN_QUESTION, k=0)
