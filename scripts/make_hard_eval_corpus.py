"""Rebuild ``eval/hard/corpus/`` (the corpus of the hard regression set) from the shared CRUD news data.

The articles are a fixed list in ``eval/hard/articles.json``: for each one its ``pid`` in
``../shared/data/crud_news.corpus.jsonl.gz``, the file it becomes, its cluster and why it was
picked, and the SHA-256 of its text (so a changed data file is caught, not silently used). Each
article is written verbatim as one ``.txt`` file (its text plus a final newline); ``.txt`` files
in the output folder that are not on the list are removed. The result is the same on every run::

    python3 scripts/make_hard_eval_corpus.py            # rebuild eval/hard/corpus/
    python3 scripts/make_hard_eval_corpus.py --check    # exit 1 if the committed corpus differs

Then score it with ``rag eval --questions eval/hard/questions.jsonl --corpus eval/hard/corpus
--out out/eval-hard``; ``python3 scripts/check_hard_eval.py`` validates the question set.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
HARD_DIR = REPO_ROOT / "eval" / "hard"
ARTICLES = HARD_DIR / "articles.json"
CORPUS_DIR = HARD_DIR / "corpus"
DATA = REPO_ROOT.parent / "shared" / "data" / "crud_news.corpus.jsonl.gz"


def text_sha256(text: str) -> str:
    """The SHA-256 (hex) of an article's text, as recorded in ``articles.json``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_articles(path: Path = ARTICLES) -> list[dict[str, Any]]:
    """The article list of ``articles.json`` (file, pid, cluster, reason, sha256)."""
    articles = json.loads(path.read_text(encoding="utf-8"))["articles"]
    files = [a["file"] for a in articles]
    if len(set(files)) != len(files) or len({a["pid"] for a in articles}) != len(articles):
        raise SystemExit(f"{path}: duplicate file names or pids")
    return articles


def read_texts(data: Path, pids: set[str]) -> dict[str, str]:
    """The texts of ``pids`` in a JSON-lines file of ``{pid, text}`` rows, gzipped (the CRUD news
    file) or plain (the CMRC 2018 corpus); one pass, stopping when all are found."""
    texts: dict[str, str] = {}
    with gzip.open(data, "rt", encoding="utf-8") if data.suffix == ".gz" else data.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["pid"] in pids:
                texts[row["pid"]] = row["text"]
                if len(texts) == len(pids):
                    break
    missing = sorted(pids - texts.keys())
    if missing:
        raise SystemExit(f"{data}: {len(missing)} pid(s) not found, e.g. {missing[:3]}")
    return texts


def render(articles: list[dict[str, Any]], texts: dict[str, str]) -> dict[str, str]:
    """File name -> file content, after checking every text against its recorded hash."""
    files: dict[str, str] = {}
    for article in articles:
        text = texts[article["pid"]]
        if text_sha256(text) != article["sha256"]:
            raise SystemExit(f"{article['pid']}: text differs from the recorded sha256 (another data version?)")
        files[article["file"]] = text + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild eval/hard/corpus/ from the shared CRUD news data.")
    parser.add_argument("--data", type=Path, default=DATA, help="crud_news.corpus.jsonl.gz (default: %(default)s)")
    parser.add_argument("--articles", type=Path, default=ARTICLES, help="article list (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=CORPUS_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)

    articles = load_articles(args.articles)
    files = render(articles, read_texts(args.data, {a["pid"] for a in articles}))
    return sync(files, args.out, args.check)


def sync(files: dict[str, str], out: Path, check: bool) -> int:
    """Write ``files`` (name -> content) into ``out``, removing other ``.txt`` files; with ``check``,
    compare instead and return 1 on a difference. Shared with ``make_near_miss_corpus.py``."""
    existing = {p.name for p in out.glob("*.txt")} if out.is_dir() else set()

    if check:
        stale = sorted(existing - files.keys())
        differ = sorted(
            name for name, content in files.items() if name not in existing or (out / name).read_text(encoding="utf-8") != content
        )
        for name in differ:
            print(f"differs or missing: {name}", file=sys.stderr)
        for name in stale:
            print(f"not on the list: {name}", file=sys.stderr)
        if differ or stale:
            return 1
        print(f"{out}: {len(files)} articles, identical to a rebuild")
        return 0

    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(existing - files.keys()):
        (out / name).unlink()
    for name, content in sorted(files.items()):
        path = out / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
    chars = sum(len(c) for c in files.values())
    print(f"wrote {len(files)} articles ({chars:,} characters) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
