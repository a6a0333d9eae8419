"""Check the hard regression set ``eval/hard/questions.jsonl`` against its corpus ``eval/hard/corpus/``.

First every row goes through the regression set's own row checks
(:func:`rag.evaluation.validate.check_file`: fields and types, unique qids, known categories,
answerable rows with answers, evidence and source, unanswerable rows with empty answers and
evidence, evidence and answers found in the normalised source, ``multipart`` rows with two or more
parts, follow-up histories). Then this script adds the hard set's stricter checks:

* categories of :data:`CATEGORIES` only;
* answerable rows: every evidence quote and every accepted answer alternative is an exact
  substring of a source article (not just after normalisation), and every required part has an
  alternative inside the evidence quotes;
* an answer alternative cannot match inside a longer number: in the source articles and the
  other articles of their clusters (``eval/hard/articles.json``: the articles a wrong answer is
  drawn from), no occurrence of it has a digit (or decimal point) right before it when it starts
  with a digit, or right after it when it ends with one (``5.6%`` would also match ``15.6%``;
  ``2879`` would match ``28790``). Comparisons are on the scorer's normalised text
  (:func:`rag.evaluation.metrics.normalise`), leaving out the news header (publication date and
  time, up to ``正文：``) and keeping a space between two digits as a separator;
* ``near_miss`` rows (unanswerable: the subject is in the corpus, the asked fact is not) have an
  empty ``source`` too, and a ``note`` saying where the subject is and what is missing;
* ``paraphrase`` rows copy no run of :data:`MAX_COPY` or more characters from any source article
  (after normalisation): the question must be reworded, not quoted;
* no evidence quote makes a chunk of another article "gold" for retrieval (the scorer counts a
  chunk holding :data:`~rag.evaluation.metrics.PARTIAL_QUOTE_SHARE` of a quote in one piece)
  unless that chunk also holds an accepted answer: a quote must name its fact, not a phrase that
  every province's or company's report repeats;
* minimum counts per category and in total, and (when the chunker can be imported) the number
  of chunks of the corpus at the default chunking (300 characters, 60 overlap).

``--verbose`` also lists answer alternatives that occur in articles other than the row's sources
(for a reviewer: a distractor stating the same figure is fine, a different fact is not).

Usage: python3 scripts/check_hard_eval.py [--questions FILE] [--corpus DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rag.evaluation.metrics import PARTIAL_QUOTE_SHARE, normalise  # noqa: E402
from rag.evaluation.validate import check_file  # noqa: E402
from rag.evaluation.validate import load_corpus as validate_corpus  # noqa: E402

HARD_DIR = REPO_ROOT / "eval" / "hard"
QUESTIONS = HARD_DIR / "questions.jsonl"
CORPUS = HARD_DIR / "corpus"
ARTICLES = HARD_DIR / "articles.json"

CATEGORIES = ("figures", "dates", "entities", "multipart", "paraphrase", "followup", "near_miss")
UNANSWERABLE = "near_miss"
MINIMUMS = {"total": 150, "multipart": 25, "near_miss": 25, "paraphrase": 30, "followup": 8}
MIN_ARTICLES = 30
MIN_CHUNKS = 500
MAX_COPY = 8  # a paraphrase question shares no run of this many characters with its source
DIGIT_EDGE = re.compile(r"[0-9.]")
DIGIT_GAP = re.compile(r"(?<=\d)\s+(?=\d)")  # "2023-08-13 11:00" must not read as "…1311:00"
HEADER = re.compile(r"^.{0,120}?正文[:：]", re.S)  # the CRUD news header: publication date and time


@dataclass
class Result:
    """Problems found, statistics and reviewer notes."""

    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    categories: Counter[str] = field(default_factory=Counter)
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # where, row: the well-formed rows
    articles: int = 0
    chunks: int | None = None

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")


def load_corpus(corpus: Path) -> dict[str, str]:
    """File name -> raw text of every ``.txt`` article."""
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(corpus.glob("*.txt"))}


def longest_copied_run(question: str, text: str) -> int:
    """Length of the longest run of ``question`` (normalised) found in ``text`` (normalised)."""
    q, t = normalise(question), normalise(text)
    best = 0
    for start in range(len(q)):
        length = best + 1
        while start + length <= len(q) and q[start : start + length] in t:
            best = length
            length += 1
    return best


def ambiguous_occurrence(alternative: str, texts: dict[str, str]) -> str | None:
    """A corpus file where ``alternative`` sits inside a longer number, or None."""
    key = normalise(alternative)
    check_before = bool(key) and key[0].isdigit()
    check_after = bool(key) and key[-1].isdigit()
    if not (check_before or check_after):
        return None
    for name, text in texts.items():
        for match in re.finditer(re.escape(key), text):
            before = text[match.start() - 1] if match.start() else ""
            after = text[match.end()] if match.end() < len(text) else ""
            if (check_before and DIGIT_EDGE.fullmatch(before or "x")) or (check_after and DIGIT_EDGE.fullmatch(after or "x")):
                return name
    return None


def load_clusters(path: Path = ARTICLES) -> dict[str, str]:
    """File name -> cluster, from ``articles.json`` ({} when there is none: every article is one cluster)."""
    if not path.is_file():
        return {}
    return {a["file"]: a["cluster"] for a in json.loads(path.read_text(encoding="utf-8"))["articles"]}


def scorer_view(text: str) -> str:
    """``text`` as the scorer compares it, without the news header and with digit groups kept apart."""
    return normalise(DIGIT_GAP.sub("|", HEADER.sub("", text)))


def check_answerable(
    where: str,
    row: dict[str, Any],
    texts: dict[str, str],
    normalised: dict[str, str],
    clusters: dict[str, str],
    result: Result,
    verbose: bool,
) -> None:
    """The hard set's own checks of an answerable row that validate's row checks let through."""
    answers, evidence, source = row["answers"], row["evidence"], row["source"]
    if not evidence or not source or any(s not in texts for s in source):
        return  # reported by validate
    sources = [texts[s] for s in source]
    for quote in evidence:
        if not any(quote in t for t in sources):
            result.error(where, f"evidence is not an exact span of {source}: {quote!r}")
    wanted = {clusters.get(s, "") for s in source}
    competitors = {n: t for n, t in normalised.items() if n in source or clusters.get(n, "") in wanted}
    evidence_text = "\n".join(normalise(q) for q in evidence)
    for i, part in enumerate(answers):
        for alt in part:
            if not any(alt in t for t in sources):
                result.error(where, f"answer {alt!r} is not an exact span of {source}")
            elsewhere = ambiguous_occurrence(alt, competitors)
            if elsewhere:
                result.error(where, f"answer {alt!r} also matches inside a longer number in {elsewhere}")
            if verbose:
                others = [n for n, t in normalised.items() if n not in source and normalise(alt) in t]
                if others:
                    result.notes.append(f"{where}: {alt!r} also in {', '.join(others[:6])}")
        if not any(normalise(alt) in evidence_text for alt in part):
            result.error(where, f"answers[{i}] {part} has no alternative inside the evidence quotes")
    if row["category"] == "paraphrase":
        run = max(longest_copied_run(row["question"], t) for t in sources)
        if run >= MAX_COPY:
            result.error(where, f"paraphrase question copies a run of {run} characters from its source")


def check_rows(
    questions: Path, corpus: Path, clusters: dict[str, str], verbose: bool = False, categories: tuple[str, ...] = CATEGORIES
) -> Result:
    """validate's row checks (:func:`rag.evaluation.validate.check_file`), then the hard set's own;
    ``categories`` lets another set (``scripts/check_near_miss_eval.py``) reuse them with its own."""
    report = check_file(questions, validate_corpus(corpus))
    texts = load_corpus(corpus)
    result = Result(errors=list(report.errors), categories=report.categories, articles=len(texts))
    normalised = {name: scorer_view(text) for name, text in texts.items()}
    for where, row in report.checked:  # the rows whose fields have the right types
        result.rows.append((where, row))
        if row["category"] not in categories:
            result.error(where, f"category {row['category']!r} is not one of the set's {', '.join(categories)}")
        if row["category"] == UNANSWERABLE:
            if row["source"]:
                result.error(where, "near_miss rows need an empty source")
            if not str(row.get("note", "")).strip():
                result.error(where, "near_miss rows need a note (where the subject is, what is missing)")
        elif row["answers"]:
            check_answerable(where, row, texts, normalised, clusters, result, verbose)
    return result


@functools.lru_cache(maxsize=4)
def corpus_chunks(corpus: Path) -> dict[str, list[str]] | None:
    """File name -> the normalised text the retriever indexes for each chunk (title and passage)
    at the default chunking; None when the chunker cannot be imported."""
    try:
        from rag.index.chunking import ChunkingConfig, chunk_document
        from rag.index.documents import load_file
    except ImportError:
        return None
    config = ChunkingConfig()
    return {
        path.name: [normalise(chunk.embed_text) for doc in load_file(path) for chunk in chunk_document(doc, config)]
        for path in sorted(corpus.glob("*.txt"))
    }


def holds_quote(body: str, wanted: str) -> bool:
    """:func:`rag.evaluation.metrics.contains_quote` on normalised text: ``body`` holds ``wanted`` or
    an unbroken run of at least PARTIAL_QUOTE_SHARE of it (every window of that length is tried)."""
    run = math.ceil(PARTIAL_QUOTE_SHARE * len(wanted))
    return bool(wanted) and any(wanted[i : i + run] in body for i in range(len(wanted) - run + 1))


def check_false_gold(rows: list[tuple[str, dict[str, Any]]], chunks: dict[str, list[str]], result: Result) -> None:
    """Evidence quotes that would mark a chunk of a non-source article as gold without an answer in it."""
    joined = {name: "\x00".join(bodies) for name, bodies in chunks.items()}  # a quick first test per file
    for where, row in rows:
        if not row["source"]:
            continue
        alternatives = [normalise(a) for part in row["answers"] for a in part]
        for quote in row["evidence"]:
            wanted = normalise(quote)
            for name, bodies in chunks.items():
                if name in row["source"] or not holds_quote(joined[name], wanted):
                    continue
                for body in bodies:
                    if holds_quote(body, wanted) and not any(alt and alt in body for alt in alternatives):
                        result.error(where, f"evidence {quote!r} also marks a chunk of {name} as gold (no answer there)")
                        break


def check(questions: Path = QUESTIONS, corpus: Path = CORPUS, verbose: bool = False, chunks: bool = True) -> Result:
    """Check the question file against the corpus folder; see the module notes."""
    result = check_rows(questions, corpus, load_clusters(corpus.parent / "articles.json"), verbose)
    counts = {**result.categories, "total": sum(result.categories.values())}
    check_sizes(result, counts, MINIMUMS, corpus, chunks, MIN_ARTICLES, MIN_CHUNKS)
    return result


def check_sizes(
    result: Result,
    counts: dict[str, int],
    minimums: dict[str, int],
    corpus: Path,
    chunks: bool,
    min_articles: int,
    min_chunks: int = 0,
) -> None:
    """The minimum counts of questions (``counts`` against ``minimums``), articles and chunks, and,
    with ``chunks``, the evidence check over the corpus's chunks (:func:`check_false_gold`)."""
    for name, minimum in minimums.items():
        if counts.get(name, 0) < minimum:
            result.errors.append(f"{name}: {counts.get(name, 0)} questions, need at least {minimum}")
    if result.articles < min_articles:
        result.errors.append(f"corpus: {result.articles} articles, need at least {min_articles}")
    if chunks:
        by_file = corpus_chunks(corpus)
        if by_file is not None:
            result.chunks = sum(len(bodies) for bodies in by_file.values())
            if result.chunks < min_chunks:
                result.errors.append(f"corpus: {result.chunks} chunks, need at least {min_chunks}")
            check_false_gold(result.rows, by_file, result)


def report_outcome(result: Result) -> int:
    """Print the notes, then the problems (exit code 1) or OK (0)."""
    for note in result.notes:
        print(f"  note {note}")
    if result.errors:
        print(f"\n{len(result.errors)} problem(s):", file=sys.stderr)
        for message in result.errors:
            print(f"  {message}", file=sys.stderr)
        return 1
    print("OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the hard regression set (eval/hard/questions.jsonl).")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="question file (default: %(default)s)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder of .txt articles (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="list answers that also occur in other articles")
    args = parser.parse_args(argv)

    result = check(args.questions, args.corpus, verbose=args.verbose)
    total = sum(result.categories.values())
    print(f"{args.questions}: {total} questions over {result.articles} articles")
    for name in CATEGORIES:
        print(f"  {name:<12}{result.categories[name]:>4}")
    chunks = "not counted (chunker not importable)" if result.chunks is None else f"{result.chunks}"
    print(f"chunks at the default chunking: {chunks}")
    return report_outcome(result)


if __name__ == "__main__":
    sys.exit(main())
