"""Rebuild ``eval/multipart/corpus/`` (the corpus of the multi-part question set) from the shared data.

The articles are a fixed list in ``eval/multipart/articles.json``, as for the hard set
(``scripts/make_hard_eval_corpus.py``, whose reading, hashing and writing this script reuses):
``pid``, output ``file``, ``cluster``, ``reason`` and ``sha256`` of each text. Most are CRUD news
articles (``../shared/data/crud_news.corpus.jsonl.gz``); those marked ``"data": "cmrc"`` are
CMRC 2018 dev paragraphs (``../shared/data/cmrc2018_dev.corpus.jsonl``). Each is written
verbatim as one ``.txt`` file; other ``.txt`` files in the output folder are removed::

    python3 scripts/make_multipart_corpus.py            # rebuild eval/multipart/corpus/
    python3 scripts/make_multipart_corpus.py --check    # exit 1 if the committed corpus differs

``python3 scripts/check_multipart_eval.py`` validates the questions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_hard_eval_corpus as base  # noqa: E402

REPO_ROOT = base.REPO_ROOT
MULTIPART_DIR = REPO_ROOT / "eval" / "multipart"
ARTICLES = MULTIPART_DIR / "articles.json"
CORPUS_DIR = MULTIPART_DIR / "corpus"
DATA = base.DATA
CMRC = DATA.parent / "cmrc2018_dev.corpus.jsonl"
CMRC_DATA = "cmrc"  # the value of an article's "data" field for a CMRC paragraph


def read_all(articles: list[dict[str, Any]], data: Path = DATA, cmrc: Path = CMRC) -> dict[str, str]:
    """pid -> text of every listed article, each read from its own data file (one pass per file)."""
    wanted = {a["pid"] for a in articles if a.get("data") != CMRC_DATA}
    paragraphs = {a["pid"] for a in articles if a.get("data") == CMRC_DATA}
    texts = base.read_texts(data, wanted) if wanted else {}
    if paragraphs:
        texts.update(base.read_texts(cmrc, paragraphs))
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild eval/multipart/corpus/ from the shared CRUD news and CMRC data.")
    parser.add_argument("--data", type=Path, default=DATA, help="crud_news.corpus.jsonl.gz (default: %(default)s)")
    parser.add_argument("--cmrc", type=Path, default=CMRC, help="cmrc2018_dev.corpus.jsonl (default: %(default)s)")
    parser.add_argument("--articles", type=Path, default=ARTICLES, help="article list (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=CORPUS_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)

    articles = base.load_articles(args.articles)
    files = base.render(articles, read_all(articles, args.data, args.cmrc))  # every hash checked
    return base.sync(files, args.out, args.check)


if __name__ == "__main__":
    sys.exit(main())
