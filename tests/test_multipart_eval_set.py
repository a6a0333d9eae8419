"""The multi-part question set (eval/multipart/) stays valid and its checks have teeth (fast tier, no models).

``scripts/check_multipart_eval.py`` runs the hard set's per-row checks (imported from
``scripts/check_hard_eval.py``) with this set's categories and minimum counts (multi-part rows,
CMRC pairs, single-part controls). ``scripts/make_multipart_corpus.py`` rebuilds the corpus from
the shared CRUD news and CMRC data by a fixed pid list.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from conftest import load_script

from rag.config import REPO_ROOT

MULTIPART = REPO_ROOT / "eval" / "multipart"
CORPUS = MULTIPART / "corpus"

check_multipart = load_script("check_multipart_eval")
make_corpus = load_script("make_multipart_corpus")


def _check_one(tmp_path: Path, row: dict[str, Any]) -> list[str]:
    """The errors the checker reports for ``row`` alone (counts are not what is tested here)."""
    path = tmp_path / "questions.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    result, _ = check_multipart.check(path, CORPUS, chunks=False)
    return [e for e in result.errors if f"({row['qid']})" in e]


def test_the_multipart_set_passes_all_its_checks():
    result, found = check_multipart.check()
    assert result.errors == []
    assert found["multipart"] >= 80 and found["cmrc_pairs"] >= 25 and found["single"] >= 20
    assert result.articles >= 80
    assert check_multipart.main([]) == 0


def test_the_committed_corpus_is_the_listed_articles_verbatim():
    articles = json.loads((MULTIPART / "articles.json").read_text(encoding="utf-8"))["articles"]
    assert {a["file"] for a in articles} == {p.name for p in CORPUS.glob("*.txt")}
    assert any(a.get("data") == "cmrc" for a in articles) and any("data" not in a for a in articles)
    for article in articles:
        text = (CORPUS / article["file"]).read_text(encoding="utf-8")
        assert text.endswith("\n") and hashlib.sha256(text[:-1].encode("utf-8")).hexdigest() == article["sha256"]
        assert article["reason"].strip() and article["cluster"].strip()


def test_a_single_part_row_with_two_parts_and_a_short_number_are_reported(tmp_path):
    row = {
        "qid": "m901",
        "question": "三星Galaxy Z Flip 5在中国发布会上的售价是多少？",
        "category": "figures",
        "answers": [["7499元"], ["8499元"]],
        "evidence": ["Galaxy Z Flip 5的8+256GB版本售价7499元，8+512GB版本售价8499元"],
        "source": ["ph-flip5-china.txt"],
    }
    assert any("not one" in e for e in _check_one(tmp_path, row))
    row["category"] = "multipart"
    assert _check_one(tmp_path, row) == []
    row["answers"] = [["499元"], ["8499元"]]  # inside 7499元
    assert any("inside a longer number" in e for e in _check_one(tmp_path, row))


def test_the_builder_reads_news_and_cmrc_rows(tmp_path):
    news = {"p1": "2023-07-20 16:44，正文：一篇新闻。", "p2": "不在列表里。"}
    cmrc = {"DEV_1": "一段百科。"}
    data = tmp_path / "news.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as handle:
        for pid, text in news.items():
            handle.write(json.dumps({"pid": pid, "text": text, "title": None}, ensure_ascii=False) + "\n")
    paragraphs = tmp_path / "cmrc.jsonl"
    paragraphs.write_text("".join(json.dumps({"pid": p, "text": t}, ensure_ascii=False) + "\n" for p, t in cmrc.items()), encoding="utf-8")
    listed = [
        {"file": "a.txt", "pid": "p1", "cluster": "c", "reason": "r", "sha256": make_corpus.base.text_sha256(news["p1"])},
        {"file": "b.txt", "pid": "DEV_1", "data": "cmrc", "cluster": "c", "reason": "r", "sha256": make_corpus.base.text_sha256(cmrc["DEV_1"])},
    ]
    articles = tmp_path / "articles.json"
    articles.write_text(json.dumps({"articles": listed}, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "corpus"
    args = ["--data", str(data), "--cmrc", str(paragraphs), "--articles", str(articles), "--out", str(out)]

    assert make_corpus.main(args) == 0
    assert (out / "b.txt").read_text(encoding="utf-8") == cmrc["DEV_1"] + "\n"
    assert make_corpus.main([*args, "--check"]) == 0
    (out / "a.txt").write_text("changed\n", encoding="utf-8")
    assert make_corpus.main([*args, "--check"]) == 1
