"""Check the multi-part question set ``eval/multipart/questions.jsonl`` against its corpus.

The per-row checks are those of the hard set (``scripts/check_hard_eval.py``, imported, with the
qids ``m001``… and this set's categories): the schema of ``eval/questions.jsonl`` (``multipart``
rows with two or more parts, ``excluded`` items found in the sources and not accepted answers),
unique qids, every gold answer and evidence quote an exact span of its source article, every part
with an alternative inside the evidence, answers that cannot match inside a longer number in the
articles of their clusters, evidence that marks no chunk of another article as gold. On top of them:

* the corpus folder holds exactly the listed articles, and no listed pid is one of
  ``eval/hard``'s or ``eval/near_miss``'s articles (the set is held out from what was tuned on);
* single-part rows (``figures``, ``dates``, ``entities``) have exactly one part;
* minimum counts (:data:`MINIMUMS`): multi-part rows, multi-part rows that pair two or more
  different CMRC paragraphs (``cmrc_pairs``), single-part rows.

Usage: python3 scripts/check_multipart_eval.py [--questions FILE] [--corpus DIR] [--articles FILE] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_hard_eval as base  # noqa: E402
import make_multipart_corpus as corpus_builder  # noqa: E402

MULTIPART_DIR = base.REPO_ROOT / "eval" / "multipart"
QUESTIONS = MULTIPART_DIR / "questions.jsonl"
CORPUS = MULTIPART_DIR / "corpus"
ARTICLES = MULTIPART_DIR / "articles.json"
HELD_OUT_FROM = (base.ARTICLES, base.REPO_ROOT / "eval" / "near_miss" / "articles.json")

CATEGORIES = ("multipart", "figures", "dates", "entities")
QID_RE = re.compile(r"^m\d{3}$")
MINIMUMS = {"multipart": 80, "cmrc_pairs": 25, "single": 20}
MIN_ARTICLES = 80


def counts(rows: list[dict[str, Any]], cmrc_files: set[str]) -> dict[str, int]:
    """Multi-part rows, those among them over two or more different CMRC paragraphs, single-part rows."""
    multipart = [row for row in rows if row["category"] == "multipart"]
    return {
        "multipart": len(multipart),
        "cmrc_pairs": sum(len(set(row["source"])) >= 2 and set(row["source"]) <= cmrc_files for row in multipart),
        "single": sum(row["category"] != "multipart" for row in rows),
    }


def check(
    questions: Path = QUESTIONS,
    corpus: Path = CORPUS,
    articles: Path = ARTICLES,
    verbose: bool = False,
    chunks: bool = True,
) -> tuple[base.Result, dict[str, int]]:
    """Check the question file against the corpus folder and the article list; see the module notes."""
    listing = json.loads(articles.read_text(encoding="utf-8"))["articles"]
    clusters = {a["file"]: a["cluster"] for a in listing}
    result = base.check_rows(questions, corpus, clusters, verbose, categories=CATEGORIES)
    rows = [row for _, row in result.rows]
    for where, row in result.rows:
        if not QID_RE.match(row["qid"]):
            result.error(where, f"qid {row['qid']!r} is not of the form m001")
        if row["category"] != "multipart" and len(row["answers"]) != 1:
            result.error(where, f"a {row['category']} row has {len(row['answers'])} parts, not one")
    if set(clusters) != set(base.load_corpus(corpus)):
        result.errors.append(f"corpus: files differ from the articles of {articles.name} (rebuild it)")
    for other in HELD_OUT_FROM:
        if other.is_file():
            shared = {a["pid"] for a in listing} & {a["pid"] for a in json.loads(other.read_text(encoding="utf-8"))["articles"]}
            if shared:
                result.errors.append(f"articles: {len(shared)} pid(s) also in {other}, e.g. {sorted(shared)[0]}")
    found = counts(rows, {a["file"] for a in listing if a.get("data") == corpus_builder.CMRC_DATA})
    base.check_sizes(result, found, MINIMUMS, corpus, chunks, MIN_ARTICLES)
    return result, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the multi-part question set (eval/multipart/questions.jsonl).")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="question file (default: %(default)s)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder of .txt articles (default: %(default)s)")
    parser.add_argument("--articles", type=Path, default=ARTICLES, help="article list (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="list answers that also occur in other articles")
    args = parser.parse_args(argv)

    result, found = check(args.questions, args.corpus, args.articles, verbose=args.verbose)
    total = sum(result.categories.values())
    print(f"{args.questions}: {total} questions over {result.articles} articles")
    for name in CATEGORIES:
        print(f"  {name:<12}{result.categories[name]:>4}")
    print(", ".join(f"{name} {found[name]}" for name in MINIMUMS))
    print(f"chunks at the default chunking: {'not counted' if result.chunks is None else result.chunks}")
    return base.report_outcome(result)


if __name__ == "__main__":
    sys.exit(main())
