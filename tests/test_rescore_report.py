"""scripts/rescore_report.py scores a stored report's answers against a changed question file, without an LLM (fast tier)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_script

from rag.config import REPO_ROOT
from rag.index.documents import file_sha256

BASELINE = REPO_ROOT / "eval" / "baseline.json"
QUESTIONS = REPO_ROOT / "eval" / "questions.jsonl"


rescore_report = load_script("rescore_report")


def _questions(tmp_path: Path, change: dict[str, dict]) -> Path:
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({**r, **change.get(r["qid"], {})}, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_the_committed_baseline_is_scored_against_the_committed_question_file(tmp_path):
    baseline = json.loads(BASELINE.read_text(encoding="utf-8"))
    sha = file_sha256(QUESTIONS)
    assert baseline["config"]["questions"]["sha256"] == baseline["settings"]["configuration"]["questions_sha256"] == sha
    out = tmp_path / "again.json"
    assert rescore_report.main([str(BASELINE), "--questions", str(QUESTIONS), "--out", str(out)]) == 0
    again = json.loads(out.read_text(encoding="utf-8"))
    assert again["config"]["rescored"]["changed"] == [] and again["overall"] == baseline["overall"]


def test_a_gold_fix_rescores_the_answers_and_records_the_new_file(tmp_path, capsys):
    questions = _questions(tmp_path, {"q001": {"answers": [["不在答案里"]]}, "q003": {"question": "广西的基金有多大？"}})
    out = tmp_path / "baseline.json"
    assert rescore_report.main([str(BASELINE), "--questions", str(questions), "--out", str(out)]) == 0
    before, after = json.loads(BASELINE.read_text(encoding="utf-8")), json.loads(out.read_text(encoding="utf-8"))
    rows = {row["qid"]: row for row in after["questions"]}
    assert rows["q001"]["correct"] is False and rows["q001"]["expected"] == [["不在答案里"]]
    assert after["config"]["rescored"]["changed"] == ["q001"] and after["config"]["rescored"]["reworded"] == ["q003"]
    assert after["overall"]["answer_accuracy"] < before["overall"]["answer_accuracy"]
    assert after["config"]["questions"]["sha256"] == after["settings"]["configuration"]["questions_sha256"] == file_sha256(questions)
    assert "changed: q001; reworded (answer given to the earlier wording): q003" in capsys.readouterr().out


def test_a_change_only_a_run_can_score_is_refused(tmp_path, capsys):
    questions = _questions(tmp_path, {"q001": {"answers": [], "evidence": [], "source": []}})
    assert rescore_report.main([str(BASELINE), "--questions", str(questions), "--out", str(tmp_path / "x.json")]) == 1
    assert "q001: answerable or gold evidence changed; that needs a new run" in capsys.readouterr().err
