"""Mark the questions whose outcome differed between two runs of the same code as unstable in a baseline.

Run the same evaluation twice (same commit and settings) and mark the questions whose outcome
for a gated metric (answer correct, refused, hit@1, citation precision) differs: the gate then
leaves them out of its flips and lists them (``baseline.unstable`` in report.json)::

    python3 scripts/mark_unstable.py out/run-a/report.json out/run-b/report.json --into eval/baseline.json

Questions the baseline marks already stay marked; the file is rewritten atomically.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rag.errors import InputError
from rag.evaluation.baseline import load_report, marked_unstable, pair_rows, report_rows, unstable_questions
from rag.files import write_json_atomic


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_a", type=Path, help="report.json of the first run")
    parser.add_argument("report_b", type=Path, help="report.json of the second run, same code")
    parser.add_argument("--into", type=Path, required=True, help="the baseline report.json to mark (eval/baseline.json)")
    args = parser.parse_args(argv)
    try:
        pairs = pair_rows(report_rows(args.report_a), report_rows(args.report_b))
        baseline = load_report(args.into)
        before = marked_unstable(baseline, args.into)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    found = unstable_questions(pairs)
    marked = sorted({*before, *found})
    write_json_atomic(args.into, {**baseline, "unstable": marked})
    print(f"{len(found)} of {len(pairs)} questions differ between the runs: {', '.join(found) or '-'}")
    print(f"{args.into} marks {len(marked)} questions unstable ({len(set(marked) - set(before))} new)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
