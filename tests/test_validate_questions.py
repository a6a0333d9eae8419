"""The regression set stays valid: every evidence quote and answer is in its corpus (fast tier)."""

from __future__ import annotations

import json

from rag.config import REPO_ROOT
from rag.evaluation.validate import check_file, load_corpus, main

QUESTIONS = REPO_ROOT / "eval" / "questions.jsonl"
CORPUS = REPO_ROOT / "corpus"


def test_the_regression_set_is_valid():
    report = check_file(QUESTIONS, load_corpus(CORPUS))
    assert report.errors == []
    assert sum(report.categories.values()) >= 100 and report.unanswerable >= report.categories["unanswerable"] >= 16
    assert report.quotes_found == report.quotes > 0
    assert main(["--questions", str(QUESTIONS), "--corpus", str(CORPUS)]) == 0


def test_a_quote_missing_from_the_corpus_is_reported(tmp_path):
    row = json.loads(QUESTIONS.read_text(encoding="utf-8").splitlines()[0])
    row["evidence"] = ["这句话不在任何文章里。"]
    broken = tmp_path / "questions.jsonl"
    broken.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    report = check_file(broken, load_corpus(CORPUS))
    assert any("evidence not found" in error for error in report.errors)
    assert main(["--questions", str(broken), "--corpus", str(CORPUS), "--min-total", "1"]) == 1


def test_the_hard_set_is_valid_too():
    hard = REPO_ROOT / "eval" / "hard"
    report = check_file(hard / "questions.jsonl", load_corpus(hard / "corpus"))
    assert report.errors == []
    assert report.unanswerable == report.categories["near_miss"] >= 25 and report.categories["multipart"] >= 25


def _errors(tmp_path, *rows: dict) -> list[str]:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    report = check_file(path, load_corpus(CORPUS))
    return report.errors


def test_an_unanswerable_row_is_one_with_empty_answers_whatever_its_category(tmp_path):
    base = json.loads(QUESTIONS.read_text(encoding="utf-8").splitlines()[0])
    empty = {**base, "qid": "x-1", "category": "figures", "answers": [], "evidence": [], "source": []}
    assert _errors(tmp_path, empty) == []
    assert _errors(tmp_path, {**empty, "evidence": base["evidence"]}) == [
        "line 1 (x-1): unanswerable rows (empty answers) need empty evidence and no excluded items"
    ]
    assert _errors(tmp_path, {**base, "category": "near_miss"}) == [f"line 1 ({base['qid']}): near_miss rows need empty answers"]


def test_qids_are_any_unique_word_and_multipart_rows_need_two_parts(tmp_path):
    base = json.loads(QUESTIONS.read_text(encoding="utf-8").splitlines()[0])
    assert _errors(tmp_path, {**base, "qid": "h001"}) == []
    assert _errors(tmp_path, {**base, "qid": "h 1"}) == ["line 1: bad qid 'h 1'"]
    assert _errors(tmp_path, base, base) == [f"line 2 ({base['qid']}): duplicate qid"]
    assert _errors(tmp_path, {**base, "category": "multipart"}) == [
        f"line 1 ({base['qid']}): multipart rows need two or more parts"
    ]


def test_excluded_items_must_be_in_the_source_and_not_accepted_answers(tmp_path):
    row = next(json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if '"q097"' in line)
    assert row["excluded"] and _errors(tmp_path, row) == []
    assert _errors(tmp_path, {**row, "excluded": ["西藏"]}) == [
        "line 1 (q097): excluded '西藏' is not in ['000_3193559408eabc5b.txt']: it should be an item a wrong answer takes from there"
    ]
    assert _errors(tmp_path, {**row, "excluded": ["浙江"]}) == ["line 1 (q097): excluded '浙江' is part of an accepted answer"]
    assert _errors(tmp_path, {**row, "excluded": "山东"}) == ["line 1 (q097): excluded must be a list of non-empty strings"]
