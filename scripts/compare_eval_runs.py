"""Per-question outcome flips between two `rag eval` reports, and the flip rate.

Run the same evaluation twice (same commit, same RAG_THREADS; on one machine or two) and compare:
every flip is run-to-run noise, and the flip rate is how repeatable the runs are::

    python3 scripts/compare_eval_runs.py out/run-a/report.json out/run-b/report.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rag.errors import InputError
from rag.evaluation.baseline import Flips, pair_rows, question_changes, report_rows
from rag.evaluation.scoring import OUTCOMES


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_a", type=Path, help="report.json of the first run")
    parser.add_argument("report_b", type=Path, help="report.json of the second run")
    args = parser.parse_args(argv)
    try:
        pairs = pair_rows(report_rows(args.report_a), report_rows(args.report_b))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    changes = question_changes(pairs)
    for change in changes:
        moves = "; ".join(f"{label} in B: {', '.join(change[label])}" for label in ("broken", "fixed") if change[label])
        print(f"{change['qid']} ({change['category']}) {moves}\n  A: {change['baseline']}\n  B: {change['current']}")
    for metric in OUTCOMES:
        flips = Flips.of(metric, pairs)
        if flips.broken or flips.fixed:
            print(f"{metric}: {len(flips.broken)} worse in B, {len(flips.fixed)} better in B")
    share = len(changes) / len(pairs) if pairs else 0.0
    print(f"flip rate: {len(changes)} of {len(pairs)} questions changed outcome ({share:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
