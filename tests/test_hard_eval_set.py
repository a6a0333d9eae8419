"""The hard regression set (eval/hard/) stays valid and its checks have teeth (fast tier, no models).

``scripts/check_hard_eval.py`` checks the committed questions against the committed corpus: exact
spans, answers that cannot match inside a longer number, evidence that marks no wrong chunk as
gold, the no-copy rule for paraphrase questions, counts per category and the chunk count.
``scripts/make_hard_eval_corpus.py`` rebuilds the corpus from the shared data by a fixed pid list.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from conftest import load_script

from rag.config import REPO_ROOT

HARD = REPO_ROOT / "eval" / "hard"
CORPUS = HARD / "corpus"
QUESTIONS = HARD / "questions.jsonl"


check_hard_eval = load_script("check_hard_eval")
make_corpus = load_script("make_hard_eval_corpus")


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_one(tmp_path: Path, row: dict[str, Any]) -> list[str]:
    """The errors the checker reports for ``row`` alone (counts are not what is tested here)."""
    path = tmp_path / "questions.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    result = check_hard_eval.check(path, CORPUS)
    return [e for e in result.errors if f"({row['qid']})" in e]


def test_the_hard_set_passes_all_its_checks():
    result = check_hard_eval.check()
    assert result.errors == []
    counts = result.categories
    assert sum(counts.values()) >= 150
    assert counts["multipart"] >= 25 and counts["near_miss"] >= 25 and counts["paraphrase"] >= 30
    assert counts["followup"] >= 8
    assert result.articles >= 30
    assert result.chunks is not None and result.chunks >= 500
    assert check_hard_eval.main([]) == 0


def test_the_committed_corpus_is_the_listed_articles_verbatim():
    articles = json.loads((HARD / "articles.json").read_text(encoding="utf-8"))["articles"]
    assert {a["file"] for a in articles} == {p.name for p in CORPUS.glob("*.txt")}
    for article in articles:
        text = (CORPUS / article["file"]).read_text(encoding="utf-8")
        assert text.endswith("\n") and hashlib.sha256(text[:-1].encode("utf-8")).hexdigest() == article["sha256"]
        assert article["reason"].strip() and article["cluster"].strip()


def test_near_miss_questions_are_encoded_as_unanswerable():
    near = [row for row in _rows() if row["category"] == "near_miss"]
    assert near and all(row["answers"] == [] and row["evidence"] == [] and row["source"] == [] for row in near)
    assert all(row["note"].strip() for row in near)


def test_a_paraphrase_that_copies_its_source_is_reported(tmp_path):
    row = {
        "qid": "h901",
        "question": "上半年，全省地区生产总值5539.1亿元是哪个省？",
        "category": "paraphrase",
        "answers": [["5539.1亿元"]],
        "evidence": ["上半年，全省地区生产总值5539.1亿元"],
        "source": ["gdp-gansu.txt"],
    }
    assert any("copies a run of" in e for e in _check_one(tmp_path, row))
    row["question"] = "甘肃今年前六个月的经济总量有多大？"
    assert _check_one(tmp_path, row) == []


def test_an_answer_that_matches_inside_a_longer_number_is_reported(tmp_path):
    row = {
        "qid": "h902",
        "question": "今年第二季度全国GDP同比增长多少？",
        "category": "figures",
        "answers": [["6.3%"]],  # also inside "16.3%" of the Beijing CPI article
        "evidence": ["一季度GDP同比增长4.5%，二季度增长6.3%"],
        "source": ["mac-gdp-national.txt"],
    }
    assert any("inside a longer number" in e for e in _check_one(tmp_path, row))
    row["answers"] = [["增长6.3%"]]
    assert _check_one(tmp_path, row) == []


def test_evidence_that_marks_another_provinces_chunk_as_gold_is_reported(tmp_path):
    row = {
        "qid": "h903",
        "question": "天津上半年房地产开发投资下降了多少？",
        "category": "figures",
        "answers": [["46.7%"]],
        "evidence": ["房地产开发投资下降46.7%"],  # "房地产开发投资下降" is 60% of it, in three other provinces
        "source": ["gdp-tianjin.txt"],
    }
    assert any("as gold" in e for e in _check_one(tmp_path, row))
    row["evidence"] = ["基础设施投资下降4.9%，房地产开发投资下降46.7%"]
    assert _check_one(tmp_path, row) == []


def test_validate_row_checks_run_first_and_near_miss_rows_need_a_note(tmp_path):
    row = {"qid": "h905", "question": "甘肃上半年的出口额是多少？", "category": "near_miss", "answers": [["5539.1亿元"]],
           "evidence": [], "source": []}
    assert any("near_miss rows need empty answers" in e for e in _check_one(tmp_path, row))
    row["answers"] = []
    assert any("need a note" in e for e in _check_one(tmp_path, row))
    row["note"] = "gdp-gansu.txt gives GDP, not exports"
    assert _check_one(tmp_path, row) == []


def test_answers_and_evidence_must_be_exact_spans(tmp_path):
    row = {
        "qid": "h904",
        "question": "甘肃省上半年地区生产总值是多少？",
        "category": "figures",
        "answers": [["5539亿元"]],
        "evidence": ["上半年 全省地区生产总值5539.1亿元"],
        "source": ["gdp-gansu.txt"],
    }
    errors = _check_one(tmp_path, row)
    assert any("is not an exact span" in e and "5539亿元" in e for e in errors)
    assert any("evidence is not an exact span" in e for e in errors)


def test_the_corpus_builder_writes_the_listed_texts_and_checks_them(tmp_path):
    texts = {"p1": "2023-07-20 16:44，正文：第一篇。", "p2": "2023-07-21 09:00，正文：第二篇。", "p3": "不在列表里。"}
    data = tmp_path / "news.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as handle:
        for pid, text in texts.items():
            handle.write(json.dumps({"pid": pid, "text": text, "title": None}, ensure_ascii=False) + "\n")
    listed = [
        {"file": f"a-{pid}.txt", "pid": pid, "cluster": "c", "reason": "r", "sha256": make_corpus.text_sha256(texts[pid])}
        for pid in ("p1", "p2")
    ]
    articles = tmp_path / "articles.json"
    articles.write_text(json.dumps({"articles": listed}, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "stale.txt").write_text("old\n", encoding="utf-8")
    args = ["--data", str(data), "--articles", str(articles), "--out", str(out)]

    assert make_corpus.main(args) == 0
    assert sorted(p.name for p in out.glob("*.txt")) == ["a-p1.txt", "a-p2.txt"]
    assert (out / "a-p1.txt").read_text(encoding="utf-8") == texts["p1"] + "\n"
    assert make_corpus.main([*args, "--check"]) == 0
    (out / "a-p2.txt").write_text("changed\n", encoding="utf-8")
    assert make_corpus.main([*args, "--check"]) == 1
