"""Score a stored report.json's answers again against the current question file, without an LLM.

A fix to a gold answer changes the question file, whose sha256 is part of the configuration a
baseline records (``settings.configuration.questions_sha256``): without this script every gold fix
would need a new 20-minute LLM run. It re-reads each question's ``answers``, ``excluded`` items,
``category`` and wording from the question file, scores the stored answers again with
:mod:`rag.evaluation`'s own scorer (:func:`rag.evaluation.baseline.rescored`), recomputes the
overall and per-category figures, and records the new file's sha256 and the scorer version::

    python3 scripts/rescore_report.py eval/baseline.json --questions eval/questions.jsonl

Retrieval (ranks, gold passages) and the gold flags of citations are kept from the run: a change
of ``evidence`` needs a new run, and so does a question that becomes answerable or unanswerable
(refused here). A reworded question is listed: its stored answer was given to the earlier wording.
What changed is kept in ``config.rescored``; a stale ``baseline`` comparison section is dropped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rag.errors import InputError  # noqa: E402
from rag.evaluation.baseline import load_report, report_rows, rescored  # noqa: E402
from rag.evaluation.scoring import (  # noqa: E402
    SCORER_VERSION,
    EvalQuestion,
    QuestionRow,
    load_questions,
    summarise,
    summarise_by_category,
)
from rag.files import write_json_atomic  # noqa: E402
from rag.index.documents import file_sha256  # noqa: E402


def regraded(row: QuestionRow, question: EvalQuestion) -> QuestionRow:
    """``row`` with the gold of ``question`` and its answer scored again; an :class:`InputError` when only a run can tell."""
    if question.answerable != row.answerable or question.has_gold != row.has_gold:
        raise InputError(f"{row.qid}: answerable or gold evidence changed; that needs a new run")
    gold = replace(
        row,
        category=question.category,
        question=question.question,
        expected=[list(part) for part in question.parts],
        excluded=list(question.excluded),
    )
    return rescored(gold)


def rescore(
    report: dict[str, Any], rows: Sequence[QuestionRow], questions: Sequence[EvalQuestion], sha256: str
) -> dict[str, Any]:
    """``report`` with ``rows`` scored against ``questions`` (whose file hashes to ``sha256``)."""
    by_qid = {q.qid: q for q in questions}
    missing = [row.qid for row in rows if row.qid not in by_qid]
    if missing:
        raise InputError(f"the question file lacks {', '.join(missing)}: that needs a new run")
    new_rows = [regraded(row, by_qid[row.qid]) for row in rows]
    config = dict(report["config"])
    stored_outcomes = {row["qid"]: row.get("correct") for row in report["questions"]}
    config["rescored"] = {
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "questions_sha256_before": config.get("questions", {}).get("sha256"),
        "scorer_before": config.get("scorer"),
        "changed": [row.qid for row in new_rows if row.correct != stored_outcomes[row.qid]],
        "reworded": [new.qid for old, new in zip(rows, new_rows, strict=True) if old.question != new.question],
    }
    config["questions"] = {**config.get("questions", {}), "sha256": sha256}
    config["scorer"] = SCORER_VERSION
    result = {name: value for name, value in report.items() if name != "baseline"}
    result["config"] = config
    if isinstance(report.get("settings"), dict) and "configuration" in report["settings"]:
        result["settings"] = {
            **report["settings"],
            "configuration": {**report["settings"]["configuration"], "questions_sha256": sha256},
        }
    result["overall"] = summarise(new_rows)
    result["per_category"] = summarise_by_category(new_rows)
    result["questions"] = [asdict(row) for row in new_rows]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a report.json written by `rag eval` (eval/baseline.json)")
    parser.add_argument(
        "--questions", type=Path, default=REPO_ROOT / "eval" / "questions.jsonl", help="question file (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, help="where to write the result (default: over REPORT)")
    args = parser.parse_args(argv)
    try:
        report = load_report(args.report)
        result = rescore(report, report_rows(args.report), load_questions(args.questions), file_sha256(args.questions))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_json_atomic(args.out or args.report, result)
    done = result["config"]["rescored"]
    before, after = report["overall"].get("answer_accuracy"), result["overall"]["answer_accuracy"]
    print(f"{len(result['questions'])} answers scored again against {args.questions}: answer accuracy {before} -> {after}")
    print(
        f"changed: {', '.join(done['changed']) or '-'}; reworded (answer given to the earlier wording): {', '.join(done['reworded']) or '-'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
