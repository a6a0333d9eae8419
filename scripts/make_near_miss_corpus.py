"""Rebuild ``eval/near_miss/corpus/`` (the corpus of the near-miss refusal set) from the shared CRUD news data.

The articles are a fixed list in ``eval/near_miss/articles.json``, as for the hard set
(``scripts/make_hard_eval_corpus.py``, whose reading, hashing and writing this script reuses):
``pid``, output ``file``, ``cluster``, ``reason`` and ``sha256`` of each text, plus ``removed``.
A removed article is the only one that answers some near-miss question; it is hashed like the
others (so the set stays reproducible) but NOT written to ``corpus/``: its sibling on the same
subject stays, and a careless system answers with the sibling's year, place or company::

    python3 scripts/make_near_miss_corpus.py            # rebuild eval/near_miss/corpus/
    python3 scripts/make_near_miss_corpus.py --check    # exit 1 if the committed corpus differs

``python3 scripts/check_near_miss_eval.py`` validates the questions (and reads the removed
articles' texts through :func:`removed_texts` to check that every withheld fact is in one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_hard_eval_corpus as base  # noqa: E402

REPO_ROOT = base.REPO_ROOT
NEAR_DIR = REPO_ROOT / "eval" / "near_miss"
ARTICLES = NEAR_DIR / "articles.json"
CORPUS_DIR = NEAR_DIR / "corpus"
DATA = base.DATA


def kept(articles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The articles written to the corpus (those not marked ``removed``)."""
    return [a for a in articles if not a.get("removed")]


def removed_texts(articles_path: Path = ARTICLES, data: Path = DATA) -> dict[str, str]:
    """File name -> text of every removed article, checked against its hash (reads the data file)."""
    removed = [a for a in base.load_articles(articles_path) if a.get("removed")]
    texts = base.read_texts(data, {a["pid"] for a in removed})
    return {name: content[:-1] for name, content in base.render(removed, texts).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild eval/near_miss/corpus/ from the shared CRUD news data.")
    parser.add_argument("--data", type=Path, default=DATA, help="crud_news.corpus.jsonl.gz (default: %(default)s)")
    parser.add_argument("--articles", type=Path, default=ARTICLES, help="article list (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=CORPUS_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)

    articles = base.load_articles(args.articles)
    files = base.render(articles, base.read_texts(args.data, {a["pid"] for a in articles}))  # every hash checked
    written = {a["file"] for a in kept(articles)}
    print(f"{len(articles)} listed, {len(articles) - len(written)} removed (not written)")
    return base.sync({name: content for name, content in files.items() if name in written}, args.out, args.check)


if __name__ == "__main__":
    sys.exit(main())
