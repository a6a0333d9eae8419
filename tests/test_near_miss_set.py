"""The near-miss refusal set (eval/near_miss/) stays valid and its checks have teeth (fast tier, no models).

``scripts/check_near_miss_eval.py`` runs the hard set's per-row checks (imported from
``scripts/check_hard_eval.py``) and adds the near-miss ones: each near-miss question names the
removed article that alone answers it and the sibling that stays, and the withheld fact is
nowhere in the kept corpus. ``scripts/make_near_miss_corpus.py`` rebuilds the corpus from the
shared data by a fixed pid list and never writes the removed articles.
"""

from __future__ import annotations

import gzip
import hashlib
import json

from conftest import load_script

from rag.config import REPO_ROOT

NEAR = REPO_ROOT / "eval" / "near_miss"
CORPUS = NEAR / "corpus"
QUESTIONS = NEAR / "questions.jsonl"


check_near = load_script("check_near_miss_eval")
make_corpus = load_script("make_near_miss_corpus")


def _listing() -> list[dict]:
    return json.loads((NEAR / "articles.json").read_text(encoding="utf-8"))["articles"]


def test_the_near_miss_set_passes_all_its_checks():
    result, kinds = check_near.check()
    assert result.errors == []
    assert result.categories["near_miss"] >= 100
    assert sum(result.categories.values()) - result.categories["near_miss"] >= 100
    assert len([k for k in kinds if kinds[k]]) >= 4  # several kinds of difference
    assert result.articles >= 100
    assert check_near.main([]) == 0


def test_the_corpus_is_the_kept_articles_verbatim_and_no_removed_one():
    listing = _listing()
    kept = {a["file"] for a in listing if not a["removed"]}
    removed = {a["file"] for a in listing if a["removed"]}
    assert kept and removed and not kept & removed
    assert {p.name for p in CORPUS.glob("*.txt")} == kept
    for article in listing:
        assert article["reason"].strip() and article["cluster"].strip()
        if article["removed"]:
            continue
        text = (CORPUS / article["file"]).read_text(encoding="utf-8")
        assert text.endswith("\n") and hashlib.sha256(text[:-1].encode("utf-8")).hexdigest() == article["sha256"]


def test_near_miss_rows_are_unanswerable_and_name_the_removed_article_and_its_sibling():
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    near = [row for row in rows if row["category"] == "near_miss"]
    assert near and all(row["answers"] == [] and row["evidence"] == [] and row["source"] == [] for row in near)
    assert all(row["removed"] in row["note"] and row["sibling"] in row["note"] for row in near)
    assert {row["sibling"] for row in near} <= {row["source"][0] for row in rows if row["source"]}  # siblings are asked about


def test_a_withheld_fact_left_in_the_corpus_is_reported():
    row = {"qid": "n901", "category": "near_miss", "removed": "ev-zeekr.txt", "sibling": "ev-voyah.txt",
           "differs": "company", "withheld": ["12039辆"]}
    listing = [{"file": "ev-zeekr.txt", "removed": True}, {"file": "ev-voyah.txt", "removed": False}]
    result = check_near.base.Result()
    texts = {"ev-voyah.txt": "2023-08-01 10:00，正文：岚图交付3412辆。另据报道，极氪7月交付12,039台。"}
    check_near.check_near_miss([row], texts, listing, {"ev-zeekr.txt": "极氪7月交付量达到了12039辆"}, result)
    assert any("is in the kept corpus" in e for e in result.errors)  # other unit, thousands separator

    result = check_near.base.Result()
    texts = {"ev-voyah.txt": "2023-08-01 10:00，正文：岚图交付3412辆，累计120390辆。"}
    check_near.check_near_miss([row], texts, listing, {"ev-zeekr.txt": "极氪7月交付量达到了12039辆"}, result)
    assert result.errors == []  # inside a longer number is not the fact

    result = check_near.base.Result()
    check_near.check_near_miss([row], texts, listing, {"ev-zeekr.txt": "极氪7月交付量达到了12038辆"}, result)
    assert any("not an exact span" in e for e in result.errors)


def test_the_builder_writes_only_the_kept_articles(tmp_path):
    texts = {"p1": "2023-07-20 16:44，正文：留下的一篇。", "p2": "2023-07-21 09:00，正文：被移除的一篇。"}
    data = tmp_path / "news.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as handle:
        for pid, text in texts.items():
            handle.write(json.dumps({"pid": pid, "text": text, "title": None}, ensure_ascii=False) + "\n")
    listed = [
        {"file": f"a-{pid}.txt", "pid": pid, "cluster": "c", "reason": "r", "removed": pid == "p2",
         "sha256": hashlib.sha256(texts[pid].encode("utf-8")).hexdigest()}
        for pid in texts
    ]
    articles = tmp_path / "articles.json"
    articles.write_text(json.dumps({"articles": listed}, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "corpus"
    args = ["--data", str(data), "--articles", str(articles), "--out", str(out)]

    assert make_corpus.main(args) == 0
    assert sorted(p.name for p in out.glob("*.txt")) == ["a-p1.txt"]
    assert make_corpus.main([*args, "--check"]) == 0
    assert make_corpus.removed_texts(articles, data) == {"a-p2.txt": texts["p2"]}
    (out / "a-p2.txt").write_text(texts["p2"] + "\n", encoding="utf-8")
    assert make_corpus.main([*args, "--check"]) == 1
