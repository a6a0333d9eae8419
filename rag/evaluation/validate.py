"""Validate a question set (``eval/questions.jsonl``, ``eval/hard/questions.jsonl``) against its corpus.

Each line must be one JSON object with the fields ``qid``, ``question``,
``category``, ``answers``, ``evidence`` and ``source`` (follow-up rows also carry
``history`` and ``followup_of``). The checker verifies:

* every line parses as a JSON object and has the required fields with the right types;
* qids are unique words (``q001``, ``h001``, ``c001``); categories come from the fixed list;
* a row with empty ``answers`` is unanswerable, whatever its category, and needs empty
  ``evidence``; the categories ``unanswerable`` and ``near_miss`` are always unanswerable;
  answerable rows have non-empty ``answers``/``evidence``/``source``; ``multipart`` rows
  have two or more parts;
* the optional ``excluded`` items (that a correct answer does not name) occur in the sources and
  are not part of an accepted answer;
* every evidence quote occurs in one of its source files after normalization: lines
  within a paragraph of the raw text are joined (a newline between two non-blank lines
  is removed), then both are normalised as the scoring does (:func:`metrics.normalise`:
  NFKC, lower case, no whitespace);
* every required answer part has at least one alternative that occurs in the normalised
  text of its source files;
* follow-up rows have a two-turn ``history`` (user, then assistant) whose user turn is
  the question of the earlier row named by ``followup_of``.

It prints per-category counts and sanity statistics, and exits with status 1 if any
problem was found (0 otherwise).

Usage: python -m rag.evaluation.validate [--questions FILE] [--corpus DIR]

``rag eval validate FILE`` checks candidates from feedback (``rag eval candidates``) the same way
(:func:`check_candidates`): rows not labelled yet (no category, no answers) are listed to label
rather than reported, unless ``strict``. ``scripts/check_hard_eval.py`` runs :func:`check_file`
on the hard set and adds its own stricter checks to the rows it returns (:attr:`Report.checked`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rag.config import REPO_ROOT as ROOT
from rag.errors import InputError
from rag.evaluation.metrics import contains_token, normalise

CATEGORIES: tuple[str, ...] = (
    "figures",
    "dates",
    "entities",
    "policy",
    "multi_passage",
    "multipart",
    "paraphrase",
    "near_miss",
    "unanswerable",
    "followup",
)
UNANSWERABLE_CATEGORIES: tuple[str, ...] = ("unanswerable", "near_miss")
"""Categories whose rows must have empty ``answers``; a row of another category with none is unanswerable too."""
REQUIRED_FIELDS: tuple[str, ...] = ("qid", "question", "category", "answers", "evidence", "source")
QID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # q001, h001, c001 (candidates from feedback), ...
NOT_LABELLED = "not labelled yet: fill in category, answers, evidence and source"


def join_wrapped_lines(raw: str) -> str:
    """Join hard-wrapped lines: drop each newline that sits between two non-blank lines.

    Blank lines (paragraph breaks) are kept as a single ``\\n\\n`` separator.
    """
    paragraphs: list[str] = []
    current: list[str] = []
    for line in raw.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append("".join(current))
            current = []
    if current:
        paragraphs.append("".join(current))
    return "\n\n".join(paragraphs)


@dataclass
class SourceText:
    """One corpus file in its normalized and whitespace-stripped forms."""

    normalized: str
    stripped: str


@dataclass
class Report:
    """Problems and statistics collected while checking."""

    errors: list[str] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)  # where each row with a problem is
    to_label: list[str] = field(default_factory=list)  # candidates not labelled yet: where, and the question
    rows: int = 0
    checked: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # where and row of each well-formed row
    categories: Counter[str] = field(default_factory=Counter)
    unanswerable: int = 0  # rows with empty answers
    quotes: int = 0
    quotes_found: int = 0
    quotes_exact: int = 0
    alternatives: int = 0
    alternatives_in_evidence: int = 0
    alternatives_in_source: int = 0
    parts: int = 0
    parts_in_evidence: int = 0

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")
        self.invalid.add(where)


def source_text(path: Path) -> SourceText:
    """One corpus file, its wrapped lines joined, and normalised."""
    normalized = join_wrapped_lines(path.read_text(encoding="utf-8"))
    return SourceText(normalized=normalized, stripped=normalise(normalized))


def load_corpus(corpus_dir: Path) -> dict[str, SourceText]:
    """Read every ``*.txt`` file of the corpus directory, keyed by file name."""
    return {path.name: source_text(path) for path in sorted(corpus_dir.glob("*.txt"))}


def load_corpora(paths: Sequence[Path]) -> dict[str, SourceText]:
    """The ``*.txt`` files of each folder and each file given, keyed by file name."""
    texts: dict[str, SourceText] = {}
    for path in paths:
        texts.update(load_corpus(path) if path.is_dir() else {path.name: source_text(path)})
    return texts


def is_str_list(value: Any) -> bool:
    """True if ``value`` is a list of non-blank strings."""
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def check_answers(where: str, answers: Any, report: Report) -> bool:
    """Check the shape of ``answers``: a list of parts, each a non-empty list of strings."""
    if not isinstance(answers, list):
        report.error(where, "answers must be a list")
        return False
    ok = True
    for i, part in enumerate(answers):
        if not isinstance(part, list) or not part or not is_str_list(part):
            report.error(where, f"answers[{i}] must be a non-empty list of non-empty strings")
            ok = False
    return ok


class Problems(Protocol):
    """Where problems go: :class:`Report`, or another checker's own collection (scripts/check_hard_eval.py)."""

    def error(self, where: str, message: str) -> None: ...


def check_history(where: str, row: dict[str, Any], questions: dict[str, str], report: Problems) -> None:
    """Check ``history`` and ``followup_of`` of a follow-up row."""
    history = row.get("history")
    if not isinstance(history, list) or len(history) != 2:
        report.error(where, "followup needs a history of exactly two turns")
        return
    for turn, role in zip(history, ("user", "assistant")):
        if not isinstance(turn, dict) or turn.get("role") != role:
            report.error(where, f"history turn must have role {role!r}")
            return
        content = turn.get("content")
        if not isinstance(content, str) or not content.strip():
            report.error(where, f"history {role} turn needs non-empty content")
            return
    parent = row.get("followup_of")
    if not isinstance(parent, str) or parent not in questions:
        report.error(where, f"followup_of {parent!r} does not name an earlier question")
    elif questions[parent] != history[0]["content"]:
        report.error(where, f"history user turn differs from the question of {parent}")


def check_row(where: str, row: dict[str, Any], corpus: dict[str, SourceText], questions: dict[str, str], report: Report) -> None:
    """Check one parsed row (field presence already verified)."""
    category = row["category"]
    if category not in CATEGORIES:
        report.error(where, f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}")
    if not isinstance(row["question"], str) or not row["question"].strip():
        report.error(where, "question must be a non-empty string")
    answers, evidence, source = row["answers"], row["evidence"], row["source"]
    if not isinstance(evidence, list) or not all(isinstance(q, str) for q in evidence):
        report.error(where, "evidence must be a list of strings")
        return
    if not isinstance(source, list) or not all(isinstance(s, str) for s in source):
        report.error(where, "source must be a list of strings")
        return
    excluded = row.get("excluded", [])
    if not is_str_list(excluded):
        report.error(where, "excluded must be a list of non-empty strings")
        return
    if not check_answers(where, answers, report):
        return
    report.checked.append((where, row))

    if category == "followup":
        check_history(where, row, questions, report)
    elif "history" in row or "followup_of" in row:
        report.error(where, "only followup rows may have history/followup_of")

    if category in UNANSWERABLE_CATEGORIES and answers:
        report.error(where, f"{category} rows need empty answers")
        return
    if not answers:
        report.unanswerable += 1
        if evidence or excluded:
            report.error(where, "unanswerable rows (empty answers) need empty evidence and no excluded items")
        return
    if not evidence or not source:
        report.error(where, "answerable rows need non-empty answers, evidence and source")
        return
    if category == "multipart" and len(answers) < 2:
        report.error(where, "multipart rows need two or more parts")

    unknown = [s for s in source if s not in corpus]
    if unknown:
        report.error(where, f"unknown source file(s) {unknown}")
        return
    texts = [corpus[s] for s in source]
    stripped_sources = "\n".join(t.stripped for t in texts)
    for quote in evidence:
        report.quotes += 1
        if not normalise(quote):
            report.error(where, "empty evidence quote")
        elif not any(normalise(quote) in t.stripped for t in texts):
            report.error(where, f"evidence not found in {source}: {quote!r}")
        else:
            report.quotes_found += 1
            report.quotes_exact += any(quote in t.normalized for t in texts)
    for item in excluded:
        if not any(normalise(item) in t.stripped for t in texts):
            report.error(where, f"excluded {item!r} is not in {source}: it should be an item a wrong answer takes from there")
        if any(contains_token(normalise(alt), normalise(item)) for part in answers for alt in part):
            report.error(where, f"excluded {item!r} is part of an accepted answer")
    stripped_evidence = "\n".join(normalise(q) for q in evidence)
    for i, part in enumerate(answers):
        report.parts += 1
        in_source = False
        in_evidence = False
        for alt in part:
            key = normalise(alt)
            report.alternatives += 1
            if key in stripped_evidence:
                report.alternatives_in_evidence += 1
                in_evidence = True
            if key in stripped_sources:
                report.alternatives_in_source += 1
                in_source = True
        report.parts_in_evidence += in_evidence
        if not in_source:
            report.error(where, f"answers[{i}] {part} not found verbatim in source text")


def is_unlabelled(row: dict[str, Any]) -> bool:
    """A candidate the evaluator has not labelled yet: no category and no answers."""
    return not row["category"] and not row["answers"]


def check_file(path: Path, corpus: dict[str, SourceText], candidates: bool = False, strict: bool = False) -> Report:
    """Check every line of the questions file and return the collected report.

    ``candidates``: unlabelled rows are listed in :attr:`Report.to_label` (reported as not
    labelled with ``strict``).
    """
    report = Report()
    questions: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        report.rows += 1
        where = f"line {lineno}"
        if not line.strip():
            report.error(where, "blank line")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            report.error(where, f"invalid JSON ({exc})")
            continue
        if not isinstance(row, dict):
            report.error(where, "not a JSON object")
            continue
        missing = [f for f in REQUIRED_FIELDS if f not in row]
        if missing:
            report.error(where, f"missing field(s) {missing}")
            continue
        qid = row["qid"]
        if not isinstance(qid, str) or not QID_RE.match(qid):
            report.error(where, f"bad qid {qid!r}")
            continue
        where = f"line {lineno} ({qid})"
        if qid in questions:
            report.error(where, "duplicate qid")
            continue
        if candidates and is_unlabelled(row):
            questions[qid] = str(row["question"])
            if strict:
                report.error(where, NOT_LABELLED)
            else:
                report.to_label.append(f"{where}: {row['question']}")
            continue
        report.categories[str(row["category"])] += 1
        check_row(where, row, corpus, questions, report)
        questions[qid] = row["question"] if isinstance(row["question"], str) else ""
    return report


def check_candidates(path: Path, corpus_paths: Sequence[Path], strict: bool = False) -> Report:
    """Check labelled candidates (``rag eval validate``) against the ``.txt`` articles of ``corpus_paths``."""
    missing = [str(p) for p in [path, *corpus_paths] if not p.exists()]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(missing)}")
    corpus = load_corpora(corpus_paths)
    if not corpus:
        raise InputError(f"no .txt articles in {', '.join(map(str, corpus_paths))}")
    return check_file(path, corpus, candidates=True, strict=strict)


def candidate_lines(path: Path, report: Report) -> list[str]:
    """What ``rag eval validate`` prints: a count line, the rows to label, the problems row by row."""
    valid = report.rows - len(report.to_label) - len(report.invalid)
    lines = [
        f"{path}: {report.rows} rows: {valid} labelled and valid, {len(report.to_label)} to label, {len(report.invalid)} invalid"
    ]
    if report.to_label:
        lines += ["to label (fill in category, answers, evidence and source):", *(f"  {item}" for item in report.to_label)]
    if report.errors:
        lines += ["invalid:", *(f"  {error}" for error in report.errors)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate a question set against its corpus (default: the regression set eval/questions.jsonl)."
    )
    parser.add_argument(
        "--questions", type=Path, default=ROOT / "eval" / "questions.jsonl", help="questions file (default: %(default)s)"
    )
    parser.add_argument(
        "--corpus", type=Path, default=ROOT / "corpus", help="directory holding the source .txt files (default: %(default)s)"
    )
    parser.add_argument("--min-total", type=int, default=85, help="minimum number of questions")
    parser.add_argument(
        "--min-unanswerable", type=int, default=16, help="minimum number of unanswerable questions (empty answers)"
    )
    parser.add_argument("--min-followup", type=int, default=6, help="minimum number of follow-up questions")
    args = parser.parse_args(argv)

    corpus = load_corpus(args.corpus)
    if not corpus:
        print(f"error: no .txt files in {args.corpus}", file=sys.stderr)
        return 1
    report = check_file(args.questions, corpus)

    total = sum(report.categories.values())
    counts = {"total": total, "unanswerable": report.unanswerable, "followup": report.categories["followup"]}
    for name, minimum in (("total", args.min_total), ("unanswerable", args.min_unanswerable), ("followup", args.min_followup)):
        count = counts[name]
        if count < minimum:
            report.errors.append(f"{name}: {count} questions, need at least {minimum}")

    print(f"{args.questions}: {total} questions, {report.unanswerable} unanswerable (empty answers)")
    for name in CATEGORIES:
        if report.categories[name]:
            print(f"  {name:<14}{report.categories[name]:>4}")
    for name in sorted(set(report.categories) - set(CATEGORIES)):
        print(f"  {name:<14}{report.categories[name]:>4}  (unknown)")
    print(
        f"evidence quotes: {report.quotes}, {report.quotes_found} found after whitespace "
        f"stripping, {report.quotes_exact} also exact in the line-joined text"
    )
    print(f"answer parts: {report.parts}, {report.parts_in_evidence} with an alternative in the evidence quotes")
    print(
        f"answer alternatives: {report.alternatives}, {report.alternatives_in_evidence} "
        f"verbatim in evidence, {report.alternatives_in_source} verbatim in source"
    )

    if report.errors:
        print(f"\n{len(report.errors)} problem(s):", file=sys.stderr)
        for message in report.errors:
            print(f"  {message}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
