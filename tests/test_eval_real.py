"""`rag eval` end to end with the real bundled models on the first questions of the regression set."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from rich.console import Console

from rag.config import REPO_ROOT, Settings
from rag.evaluation import run_cli_eval

pytestmark = pytest.mark.real

LIMIT = 12


def test_regression_set_runs_end_to_end_with_real_models(tmp_path):
    out_dir = tmp_path / "eval"
    code = run_cli_eval(
        settings=replace(Settings(), index_dir=tmp_path / "index"),
        index=tmp_path / "index",
        questions=REPO_ROOT / "eval" / "questions.jsonl",
        corpus=[REPO_ROOT / "corpus"],
        out_dir=out_dir,
        baseline=None,
        retrieval_only=False,
        limit=LIMIT,
        mode="hybrid",
        top_k=3,
        console=Console(stderr=True),
    )
    assert code == 0
    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert (out_dir / "report.md").stat().st_size > 0 and (out_dir / "chart.png").stat().st_size > 0
    assert len(report["questions"]) == LIMIT
    overall = report["overall"]
    # the default models must answer most of these (accepted baseline: eval/baseline.json)
    assert overall["hit@5"] >= 0.8
    assert overall["answer_accuracy"] >= 0.5
