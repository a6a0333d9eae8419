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
    assert sum(report.categories.values()) >= 100 and report.categories["unanswerable"] >= 16
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
