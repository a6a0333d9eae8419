"""Check the near-miss refusal set ``eval/near_miss/questions.jsonl`` against its corpus.

The per-row checks are those of the hard set (``scripts/check_hard_eval.py``, imported, with the
qids ``n001``… and this set's categories): the schema of ``eval/questions.jsonl``, unique qids,
every gold answer and evidence quote an exact span of its source article, answers that cannot
match inside a longer number, evidence that marks no chunk of another article as gold, empty
``answers``/``evidence``/``source`` and a ``note`` on ``near_miss`` rows. On top of them:

* a ``near_miss`` row names the ``removed`` article (listed with ``removed: true`` in
  ``eval/near_miss/articles.json`` and absent from ``corpus/``), the ``sibling`` that stays (in
  ``corpus/``), what ``differs`` (:data:`KINDS`) and the ``withheld`` spans: the asked fact as
  written in the removed article;
* every withheld span is an exact span of the removed article's text (read from the shared data
  through ``make_near_miss_corpus.removed_texts``, hash-checked; skipped with a note when the data
  file is absent);
* **no withheld fact is in the kept corpus**: each span is searched in every article of
  ``corpus/`` as the scorer sees it (:func:`check_hard_eval.scorer_view`: NFKC, no whitespace, no
  news header) with thousands separators dropped on both sides (``20,462`` = ``20462``), and each
  number of four or more digits inside a span is also searched alone, at digit boundaries, so
  ``14335台`` in another report of ``14335辆`` is caught;
* the corpus folder holds exactly the kept articles of the list; minimum counts.

Usage: python3 scripts/check_near_miss_eval.py [--questions FILE] [--corpus DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_hard_eval as base  # noqa: E402
import make_near_miss_corpus as corpus_builder  # noqa: E402

NEAR_DIR = base.REPO_ROOT / "eval" / "near_miss"
QUESTIONS = NEAR_DIR / "questions.jsonl"
CORPUS = NEAR_DIR / "corpus"
ARTICLES = NEAR_DIR / "articles.json"

CATEGORIES = ("figures", "dates", "entities", "near_miss")
KINDS = ("company", "model", "place", "scope", "event", "date")
QID_RE = re.compile(r"^n\d{3}$")
MINIMUMS = {"near_miss": 100, "answerable": 100}
MIN_ARTICLES = 100
NEAR_FIELDS = ("removed", "sibling", "differs", "withheld")
THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
LONG_NUMBER = re.compile(r"\d(?:\.?\d){3,}")  # four or more digits, a decimal point allowed


def search_view(text: str) -> str:
    """``text`` as searched for withheld facts: the scorer's view without thousands separators."""
    return THOUSANDS.sub("", base.scorer_view(text))


def withheld_keys(span: str) -> list[str]:
    """What to search for: the span itself, and each number of 4+ digits in it (unit-free)."""
    key = THOUSANDS.sub("", base.normalise(span))
    return [key, *[n for n in LONG_NUMBER.findall(key) if n != key]]


def found_in(key: str, view: str) -> bool:
    """``key`` occurs in ``view``; a bare number only at digit boundaries (``1800`` not in ``18000``)."""
    if not key.replace(".", "").isdigit():
        return key in view
    return re.search(rf"(?<![\d.]){re.escape(key)}(?![\d])", view) is not None


def check_near_miss(
    rows: list[dict[str, Any]],
    texts: dict[str, str],
    listing: list[dict[str, Any]],
    removed: dict[str, str] | None,
    result: base.Result,
) -> Counter[str]:
    """The near-miss checks above; returns the count of near-miss rows per kind of difference."""
    removed_files = {a["file"] for a in listing if a.get("removed")}
    views = {name: search_view(text) for name, text in texts.items()}
    kinds: Counter[str] = Counter()
    for row in rows:
        if row["category"] != base.UNANSWERABLE:
            if any(f in row for f in NEAR_FIELDS):
                result.error(row["qid"], "only near_miss rows name removed/sibling/differs/withheld")
            continue
        where = row["qid"]
        missing = [f for f in NEAR_FIELDS if f not in row]
        if missing:
            result.error(where, f"near_miss row without {missing}")
            continue
        if row["removed"] not in removed_files or row["removed"] in texts:
            result.error(where, f"{row['removed']!r} is not a removed article of the list (or is in the corpus)")
        if row["sibling"] not in texts:
            result.error(where, f"sibling {row['sibling']!r} is not in the corpus")
        if row["differs"] not in KINDS:
            result.error(where, f"differs {row['differs']!r} is not one of {KINDS}")
        kinds[row["differs"]] += 1
        spans = row["withheld"]
        if not isinstance(spans, list) or not spans or not all(isinstance(s, str) and s.strip() for s in spans):
            result.error(where, "withheld must be a non-empty list of strings")
            continue
        for span in spans:
            if removed is not None and row["removed"] in removed and span not in removed[row["removed"]]:
                result.error(where, f"withheld {span!r} is not an exact span of {row['removed']}")
            for key in withheld_keys(span):
                hits = [name for name, view in views.items() if found_in(key, view)]
                if hits:
                    result.error(where, f"withheld fact {key!r} is in the kept corpus: {', '.join(hits[:5])}")
    return kinds


def check(
    questions: Path = QUESTIONS,
    corpus: Path = CORPUS,
    articles: Path = ARTICLES,
    verbose: bool = False,
    chunks: bool = True,
    data: Path = corpus_builder.DATA,
) -> tuple[base.Result, Counter[str]]:
    """Check the question file against the corpus folder and the article list; see the module notes."""
    texts = base.load_corpus(corpus)
    listing = json.loads(articles.read_text(encoding="utf-8"))["articles"]
    clusters = {a["file"]: a["cluster"] for a in listing}
    result = base.check_rows(questions, corpus, clusters, verbose, categories=CATEGORIES)
    for where, row in result.rows:
        if not QID_RE.match(row["qid"]):
            result.error(where, f"qid {row['qid']!r} is not of the form n001")
    kept = {a["file"] for a in corpus_builder.kept(listing)}
    if kept != set(texts):
        result.errors.append(f"corpus: files differ from the kept articles of {articles.name} (rebuild it)")
    removed = None
    if data.is_file():
        removed = corpus_builder.removed_texts(articles, data)
    else:
        result.notes.append(f"{data} absent: withheld spans not checked against the removed articles")
    kinds = check_near_miss([row for _, row in result.rows], texts, listing, removed, result)
    counts = {
        "near_miss": result.categories["near_miss"],
        "answerable": sum(result.categories.values()) - result.categories["near_miss"],
    }
    base.check_sizes(result, counts, MINIMUMS, corpus, chunks, MIN_ARTICLES)
    return result, kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the near-miss refusal set (eval/near_miss/questions.jsonl).")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="question file (default: %(default)s)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder of .txt articles (default: %(default)s)")
    parser.add_argument("--articles", type=Path, default=ARTICLES, help="article list (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="list answers that also occur in other articles")
    args = parser.parse_args(argv)

    result, kinds = check(args.questions, args.corpus, args.articles, verbose=args.verbose)
    total = sum(result.categories.values())
    print(f"{args.questions}: {total} questions over {result.articles} kept articles")
    for name in CATEGORIES:
        print(f"  {name:<12}{result.categories[name]:>4}")
    print("near_miss by what differs: " + ", ".join(f"{k} {kinds[k]}" for k in KINDS))
    print(f"chunks at the default chunking: {'not counted' if result.chunks is None else result.chunks}")
    return base.report_outcome(result)


if __name__ == "__main__":
    sys.exit(main())
