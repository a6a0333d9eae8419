"""Feedback becomes test cases: `rag eval candidates` gathers them, `rag eval validate` checks them once labelled."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.accounts.db import Database
from rag.cli import app
from rag.components import Components
from rag.config import Settings
from rag.index.ingest import ingest
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.qa.prompts import REFUSAL
from rag.web.conversations import ConversationStore
from rag.web.feedback import FeedbackStore, feedback_record
from rag.web.render import ChatTurn

HENAN = "河南设立的人工智能产业基金总规模是多少亿元？"  # the fake answers with the figure
SHANGHAI = "上海的人工智能产业基金规模是多少？"  # no passage names 上海: refused without the LLM
COMPUTE = "八大算力枢纽节点总算力规模达到多少？"


def run(*args: object):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def web_history(tmp_path, corpus_dir) -> Settings:
    """An index of the small corpus with an older version's feedback log next to it and the conversations in RAG_DB."""
    settings = Settings().with_index(tmp_path / "index")
    ingest([corpus_dir], settings.index, HashingEmbedder(model_id="fake:hashing"))
    pipeline = Components(settings, generator=ScriptedGenerator()).pipeline()
    henan, shanghai, compute = (pipeline.ask(question) for question in (HENAN, SHANGHAI, COMPUTE))
    assert shanghai.refused and not henan.refused
    old_log = [
        {**feedback_record(henan, "down", " 应该是30亿元 "), "time": "2025-09-02T10:00:00+0800"},
        {**feedback_record(henan, "up"), "time": "2025-09-02T10:01:00+0800"},  # a thumbs-up: no candidate
        {**feedback_record(henan, "down", "again"), "time": "2025-09-03T09:00:00+0800"},  # the same question
        {**feedback_record(compute, "down"), "time": "2025-08-01T09:00:00+0800"},  # before --since
    ]
    settings.feedback_file.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in old_log]
    settings.feedback_file.write_text("".join(lines) + '{"vote": "down", "quest\n', encoding="utf-8")  # cut off by a crash
    turns = [ChatTurn(a.question, a.answer, list(a.passages), a) for a in (henan, shanghai)]
    ConversationStore(settings.db_file).save("alice", None, turns)
    return settings


def test_thumbs_down_and_refused_questions_become_rows_to_label(web_history, tmp_path):
    out = tmp_path / "labels" / "candidates.jsonl"
    result = run("eval", "candidates", "--index", web_history.index, "--out", out, "--since", "2025-09-01")
    assert result.exit_code == 0, result.output
    assert "2 new candidates (1 thumbs-down, 1 refused; 1 repeated or listed already)" in result.output
    down, refused = read_rows(out)
    assert list(down) == ["qid", "question", "answer_given", "passages", "comment", "date", "kind", "category", "answers",
                          "evidence", "source"]
    assert (down["qid"], down["question"], down["comment"], down["kind"]) == ("c001", HENAN, "应该是30亿元", "thumbs_down")
    assert down["date"] == "2025-09-02T10:00:00+0800" and down["answer_given"].endswith("[1]。")
    assert "30亿元" in down["passages"][0]["text"] and down["passages"][0]["source"].endswith("henan.txt")  # from the index
    assert (down["category"], down["answers"], down["evidence"], down["source"]) == ("", [], [], [])
    assert (refused["qid"], refused["question"], refused["answer_given"], refused["kind"]) == ("c002", SHANGHAI, REFUSAL, "refused")
    assert refused["passages"] and refused["passages"][0]["title"] and refused["comment"] == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # questions of every user, like the files they come from

    down["category"] = "figures"  # the evaluator starts labelling
    out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in (down, refused)), encoding="utf-8")
    assert "imported 4 feedback record(s)" in result.output  # the old log, once; the page now writes to RAG_DB
    FeedbackStore(Database(web_history.db_file)).add({"time": "2025-09-05T08:00:00+0800", "vote": "down", "comment": "",
                                                      "question": COMPUTE, "answer": "不知道", "passage_chunk_ids": ["gone"]})
    again = run("eval", "candidates", "--index", web_history.index, "--out", out, "--since", "2025-09-01")
    assert again.exit_code == 0 and "imported" not in again.output
    assert f"1 new candidates (1 thumbs-down, 0 refused; 3 repeated or listed already); {out} holds 3 rows" in again.output
    rows = read_rows(out)
    assert rows[:2] == [down, refused] and rows[2]["qid"] == "c003" and rows[2]["question"] == COMPUTE
    assert rows[2]["passages"] == [{"chunk_id": "gone", "title": "", "text": "", "source": ""}]  # no longer indexed


def test_without_out_the_rows_go_to_stdout_and_files_can_be_named(web_history, tmp_path):
    result = run("eval", "candidates", "--index", tmp_path / "other" / "index", "--feedback-file", web_history.feedback_file,
                 "--conversations-db", web_history.db_file)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["qid"], row["question"]) for row in rows] == [("c001", HENAN), ("c002", COMPUTE), ("c003", SHANGHAI)]
    assert rows[0]["passages"][0]["text"] == ""  # --index names no index: the chunk ids only
    elsewhere = {"RAG_DB": str(tmp_path / "other" / "rag.db")}  # the conversations are the server's, in RAG_DB
    nothing = CliRunner().invoke(app, ["eval", "candidates", "--index", str(tmp_path / "other" / "index")], env=elsewhere)
    assert nothing.exit_code == 0 and nothing.stdout == "" and "0 new candidates" in nothing.output
    bad = run("eval", "candidates", "--since", "last week")
    assert bad.exit_code == 1 and "--since 'last week' is not a date like 2025-09-01" in bad.output


LABELLED = [
    {"qid": "c001", "question": HENAN, "category": "figures", "answers": [["30亿元", "30亿"]],
     "evidence": ["设立总规模30亿元的人工智能产业基金"], "source": ["henan.txt"]},
    {"qid": "c002", "question": SHANGHAI, "category": "unanswerable", "answers": [], "evidence": [], "source": []},
    {"qid": "c003", "question": "河南基金投向哪里？", "category": "policy", "answers": [["50亿元"]],
     "evidence": ["重点投向算力基础设施"], "source": ["henan.txt"]},
    {"qid": "c004", "question": COMPUTE, "category": "", "answers": [], "evidence": [], "source": []},
    {"qid": "c005", "question": "河南哪天发布了政策？", "category": "dates", "answers": [["8月9日"]], "evidence": [], "source": []},
]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps({**row, "kind": "refused"}, ensure_ascii=False) + "\n" for row in rows), "utf-8")
    return path


def test_validate_reports_each_invalid_row_and_lists_the_unlabelled(tmp_path, corpus_dir):
    labelled = write(tmp_path / "candidates.jsonl", LABELLED)
    result = run("eval", "validate", labelled, "--corpus", corpus_dir)
    lines = result.output.splitlines()
    assert result.exit_code == 1 and lines[0] == f"{labelled}: 5 rows: 2 labelled and valid, 1 to label, 2 invalid"
    assert lines[1:] == [
        "to label (fill in category, answers, evidence and source):",
        f"  line 4 (c004): {COMPUTE}",
        "invalid:",
        "  line 3 (c003): answers[0] ['50亿元'] not found verbatim in source text",
        "  line 5 (c005): answerable rows need non-empty answers, evidence and source",
    ]
    fixed = [*LABELLED[:2], {**LABELLED[2], "answers": [["算力基础设施"]]}, LABELLED[3],
             {**LABELLED[4], "answers": [["8月9日"]], "evidence": ["8月9日，河南省人民政府发布"], "source": ["henan.txt"]}]
    write(labelled, fixed)
    result = run("eval", "validate", labelled, "--corpus", corpus_dir / "henan.txt")
    assert result.exit_code == 0 and "5 rows: 4 labelled and valid, 1 to label, 0 invalid" in result.output
    strict = run("eval", "validate", labelled, "--corpus", corpus_dir, "--strict")
    assert strict.exit_code == 1 and "line 4 (c004): not labelled yet: fill in category, answers, evidence and source" in (
        strict.output)
    missing = run("eval", "validate", tmp_path / "missing.jsonl", "--corpus", corpus_dir)
    assert missing.exit_code == 1 and "no such file or folder: " in missing.output


def test_rag_eval_is_a_group_whose_help_shows_the_options_and_the_subcommands():
    text = " ".join(run("eval", "--help").output.split())
    assert "--retrieval-only" in text and "--baseline" in text and "candidates" in text and "validate" in text
