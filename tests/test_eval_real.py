"""The regression set, and the first questions of the harder set, through `rag eval` with the real
bundled models, each gated by its baseline (the harder set's full run is in benchmarks/)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from rich.console import Console

from rag.config import REPO_ROOT, Settings
from rag.evaluation.baseline import GATED_METRICS, RATE_GATE
from rag.evaluation.command import run_cli_eval
from rag.evaluation.scoring import load_questions

pytestmark = pytest.mark.real

HARD = REPO_ROOT / "eval" / "hard"
HARD_SLICE = 40  # about 5 minutes on 2 cores; the whole harder set takes about 25


@pytest.mark.parametrize(
    ("questions", "corpus", "baseline", "limit"),
    [
        (REPO_ROOT / "eval" / "questions.jsonl", REPO_ROOT / "corpus", REPO_ROOT / "eval" / "baseline.json", None),
        (HARD / "questions.jsonl", HARD / "corpus", HARD / "baseline.json", HARD_SLICE),
    ],
    ids=["regression-set", "hard-set-slice"],
)
def test_eval_set_runs_end_to_end_and_holds_its_baseline(tmp_path, questions, corpus, baseline, limit):
    out_dir = tmp_path / "eval"
    code = run_cli_eval(
        settings=replace(Settings(), index_dir=tmp_path / "index"),
        index=tmp_path / "index",
        questions=questions,
        corpus=[corpus],
        out_dir=out_dir,
        baseline=baseline,
        retrieval_only=False,
        limit=limit,
        mode="hybrid",
        top_k=3,
        console=Console(stderr=True),
    )
    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert all((out_dir / name).stat().st_size > 0 for name in ("report.md", "report.html", "chart.png"))
    assert len(report["questions"]) == len(load_questions(questions, limit))
    assert all(row["answer"] for row in report["questions"])  # every question got an answer or the refusal
    stored = json.loads(baseline.read_text(encoding="utf-8"))
    assert stored["config"]["questions"]["count"] == len(load_questions(questions))  # the baseline is the full set
    # Quality must hold by the gate's paired test on the questions that flipped (RATE_GATE). Latency
    # is printed but not gated (no --gate-latency): the CI machine is not the one the baseline was timed on.
    gate = report["baseline"]
    # a slice is judged on the baseline's rows for the same questions, less those it marks unstable
    unstable = set(stored.get("unstable") or [])
    assert gate["compared"] == len({row["qid"] for row in report["questions"]} - unstable)
    assert gate["unstable"] == sorted(unstable & {row["qid"] for row in report["questions"]})
    quality = [d for d in gate["deltas"] if d["kind"] != "latency" and d["gated"]]
    assert {d["metric"] for d in quality} == set(GATED_METRICS)
    assert all(d["broken"] is not None for d in quality)  # paired on the baseline's per-question rows
    assert not gate["latency_gated"] and not any(d["regressed"] for d in gate["deltas"] if d["kind"] == "latency")
    regressed = [
        f"{d['metric']}: {d['baseline']:.3f} -> {d['current']:.3f}, broken {d['broken']}" for d in quality if d["regressed"]
    ]
    assert not regressed, f"{gate['decision']} ({RATE_GATE.describe()}): {regressed}"
    assert code == 0 and not gate["regressed"]
