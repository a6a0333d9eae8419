"""Convert a CMRC-format corpus and question set to Traditional Chinese with OpenCC (``s2tw``).

Every string field is converted (paragraph text and title; question and gold answers); ids stay,
so the gold paragraphs still match. The same conversion answers Traditional questions
(:func:`rag.text_script.to_traditional`)::

    python3 scripts/make_traditional_cmrc.py ../shared/data/cmrc2018_dev out/cmrc-trad/cmrc2018_dev_trad
    # -> out/cmrc-trad/cmrc2018_dev_trad.corpus.jsonl and .queries.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.text_script import to_traditional

FIELDS = ("text", "title", "question", "answers")  # converted where present


def converted(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its text fields (strings or lists of strings) in Traditional characters."""
    out = dict(row)
    for name in FIELDS:
        value = row.get(name)
        if isinstance(value, str):
            out[name] = to_traditional(value)
        elif isinstance(value, list):
            out[name] = [to_traditional(v) if isinstance(v, str) else v for v in value]
    return out


def convert_file(source: Path, target: Path) -> int:
    """Write ``source`` (JSONL) converted into ``target``; returns the number of rows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with source.open(encoding="utf-8") as reader, target.open("w", encoding="utf-8") as writer:
        for line in reader:
            if line.strip():
                writer.write(json.dumps(converted(json.loads(line)), ensure_ascii=False) + "\n")
                rows += 1
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="prefix of <prefix>.corpus.jsonl and <prefix>.queries.jsonl")
    parser.add_argument("target", help="prefix of the converted files")
    args = parser.parse_args(argv)
    for part in ("corpus", "queries"):
        source, target = Path(f"{args.source}.{part}.jsonl"), Path(f"{args.target}.{part}.jsonl")
        print(f"{target}: {convert_file(source, target)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
