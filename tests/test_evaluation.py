"""The evaluation: metrics on hand-made cases, both question formats, baselines, `rag eval` end to end."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from rag.cli import app
from rag.components import Components
from rag.config import Settings
from rag.errors import InputError
from rag.evaluation.baseline import compare_with_baseline, pair_rows, question_changes
from rag.evaluation.calibration import CALIBRATION_MESSAGES
from rag.evaluation.command import (
    JOURNAL_NAME,
    MISMATCH_EXIT_CODE,
    REGRESSION_CORPUS,
    REGRESSION_QUESTIONS,
    eval_corpus,
    run_cli_eval,
    sync_index,
)
from rag.evaluation.metrics import (
    all_parts_found,
    answer_span_recall,
    contains_any,
    contains_quote,
    first_relevant_rank,
    hit_at,
    list_items,
    list_precision,
    normalise,
    percentile,
    reciprocal_rank,
    refusal_precision_recall,
)
from rag.evaluation.report import (
    baseline_values,
    category_label,
    chart_values,
    failure_kind,
    failure_lines,
    render_markdown,
    worst_failures,
)
from rag.evaluation.run_settings import MISMATCH_ALLOWED
from rag.evaluation.scoring import (
    OUTCOMES,
    RETRIEVAL_K,
    SCORER_VERSION,
    EvalQuestion,
    QuestionRow,
    RowJournal,
    answer_part_recall,
    is_correct,
    load_questions,
    parse_question,
    summarise,
    summarise_by_category,
)
from rag.index.chunking import Chunk
from rag.index.faiss_store import FaissStore
from rag.index.filters import SearchFilter
from rag.models.fakes import ScriptedGenerator
from rag.models.generators import Message
from rag.qa.prompts import REFUSAL, REWRITE_SYSTEM
from rag.qa.retriever import Retriever

# --- metrics ------------------------------------------------------------------------------


def test_normalise_ignores_whitespace_and_width():
    assert normalise("总规模 30亿元\n") == normalise("总规模３０亿元") == "总规模30亿元"
    assert normalise("ＡＩ　产业") == "ai产业"


def test_quote_matches_across_spacing_and_partly_across_chunk_boundaries():
    quote = "设立总规模 30亿元的人工智能产业基金"
    assert contains_quote("河南省设立总规模30亿元的人工智能产业基金，壮大耐心资本。", quote)
    assert contains_quote("……设立总规模30亿元的人工智能", quote)  # 14 of 19 characters in one piece
    assert not contains_quote("……设立总规模30亿", quote)  # 8 of 19
    assert not contains_quote("anything", "")


def test_answer_needs_every_part_with_any_alternative():
    parts = [["骨干企业数智化转型升级基金", "数智化转型升级基金"], ["专项并购基金"]]
    assert all_parts_found("包括数智化转型升级基金和专项 并购基金[1]。", parts)
    assert not all_parts_found("包括数智化转型升级基金[1]。", parts)
    assert not all_parts_found("anything", [])
    assert contains_any("８月９日发布", ["8月9日", "8月9号"])


def test_answer_span_recall_scores_the_longest_unbroken_piece_of_each_part():
    assert answer_span_recall("建筑总面积为5.6万平方米[1]。", [["近5.6万平方米"]]) == pytest.approx(7 / 8)
    assert answer_span_recall("分为两个部分", [["分为两个部份。"]]) == pytest.approx(5 / 7)
    assert answer_span_recall("巴 西", [["巴西"]]) == 1.0  # spacing is ignored, as everywhere
    assert answer_span_recall("巴，西", [["巴西"]]) == 0.5  # scattered characters do not add up
    parts = [["骨干企业数智化转型升级基金", "数智化转型升级基金"], ["专项并购基金"]]
    assert answer_span_recall("包括数智化转型升级基金[1]", parts) == pytest.approx((1 + 2 / 6) / 2)  # only 基金 of 专项并购基金
    assert answer_span_recall("anything", []) == 0.0


def test_citation_markers_inside_a_gold_span_of_several_sentences_do_not_break_the_match():
    gold = [["身体呈褐色，有一些小斑点。臀部较浅色。"]]
    checked = "马鹿的身体呈褐色，有一些小斑点[1]。臀部较浅色[1][2?]。"  # the citation check marks every sentence
    assert all_parts_found(checked, gold) and answer_span_recall(checked, gold) == 1.0
    assert all_parts_found("数字为12[1,2]3", [["123"]])  # markers are removed, never replaced by a separator
    assert not all_parts_found("身体呈褐色。臀部较浅色[1]。", gold)  # the words must still all be there


def test_span_recall_in_the_summary_counts_refusals_of_answerable_questions_as_zero():
    rows = [
        _row(expected=[["近5.6万平方米"]], answer="5.6万平方米[1]", refused=False, correct=False),
        _row(expected=[["巴西"]], answer=REFUSAL, refused=True, correct=False),
        _row(category="unanswerable", expected=[], answerable=False, has_gold=False, rank=None,
             answer=REFUSAL, refused=True, correct=True),
    ]
    assert summarise(rows)["answer_span_recall"] == pytest.approx((7 / 8 + 0) / 2)


def test_ranks_hits_and_reciprocal_rank():
    assert first_relevant_rank([False, False, True, True]) == 3
    assert first_relevant_rank([False, False]) is None
    assert [hit_at(rank, 1) for rank in (1, 3, None)] == [1.0, 0.0, 0.0]
    assert [hit_at(rank, 5) for rank in (1, 3, 6)] == [1.0, 1.0, 0.0]
    assert [reciprocal_rank(rank, 10) for rank in (1, 4, 11, None)] == [1.0, 0.25, 0.0, 0.0]


def test_refusal_precision_and_recall_with_zero_division():
    should = [True, True, False, False]
    assert refusal_precision_recall(should, [True, False, True, False]) == (0.5, 0.5)
    assert refusal_precision_recall(should, [False] * 4) == (None, 0.0)  # never refused
    assert refusal_precision_recall([False, False], [True, False]) == (0.0, None)  # nothing to refuse
    assert refusal_precision_recall([], []) == (None, None)


@pytest.mark.parametrize("q", [0, 50, 95, 100])
def test_percentile_matches_numpy(q):
    values = [120.0, 3.0, 48.5, 7.0, 300.0, 11.0]
    assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([42.0], q) == 42.0
    assert percentile([], q) is None


def _row(**fields) -> QuestionRow:
    base = dict(qid="q", category="figures", question="?", expected=[["x"]], answerable=True, has_gold=True,
                rank=1, retrieved=[], retrieve_ms=1.0)
    return QuestionRow(**{**base, **fields})


def _cite(gold: bool) -> dict:
    return {"n": 1, "doc_id": "d", "chunk_id": "c", "title": "t", "text": "...", "gold": gold}


def test_summary_of_hand_made_rows():
    rows = [
        _row(rank=1, answer="a", refused=False, correct=True, citations=[_cite(True), _cite(False)],
             first_token_ms=100.0, total_ms=1000.0),
        _row(rank=4, answer="b", refused=False, correct=False, citations=[_cite(False)], first_token_ms=300.0, total_ms=3000.0),
        _row(rank=None, answer=REFUSAL, refused=True, correct=False),  # wrongly refused
        _row(category="unanswerable", expected=[], answerable=False, has_gold=False, rank=None,
             answer=REFUSAL, refused=True, correct=True),
        _row(category="unanswerable", expected=[], answerable=False, has_gold=False, rank=None,
             answer="编的", refused=False, correct=False, citations=[_cite(False)]),
    ]
    summary = summarise(rows)
    assert summary["questions"] == 5
    assert summary["hit@1"] == pytest.approx(1 / 3)
    assert summary["hit@5"] == pytest.approx(2 / 3)
    assert summary["mrr@10"] == pytest.approx((1 + 0.25 + 0) / 3)
    assert summary["answer_accuracy"] == pytest.approx(2 / 5)
    assert summary["refusal_precision"] == pytest.approx(1 / 2)
    assert summary["refusal_recall"] == pytest.approx(1 / 2)
    assert summary["citation_precision"] == pytest.approx(1 / 3)  # citations of answerable questions only
    assert summary["citation_recall"] == pytest.approx(1 / 2)  # of the two answered answerable questions
    assert summary["first_token_ms_p50"] == pytest.approx(200.0)
    assert summary["retrieve_ms_p95"] == pytest.approx(1.0)
    by_category = summarise_by_category(rows)
    assert list(by_category) == ["figures", "unanswerable"]
    assert by_category["unanswerable"]["hit@1"] is None
    assert by_category["unanswerable"]["refusal_recall"] == 0.5


def test_retrieval_only_rows_leave_answer_metrics_undefined():
    summary = summarise([_row(rank=2), _row(rank=None)])
    assert summary["hit@5"] == 0.5
    assert all(summary[m] is None for m in ("answer_accuracy", "refusal_precision", "citation_recall", "total_ms_p50"))


def test_worst_failures_put_wrong_answers_and_misses_first():
    rows = [
        {**_row(qid="ok").__dict__, "correct": True},
        {**_row(qid="late", rank=3).__dict__},
        {**_row(qid="wrong", rank=2).__dict__, "correct": False},
        {**_row(qid="wrong-miss", rank=None).__dict__, "correct": False},
    ]
    assert [row["qid"] for row in worst_failures(rows)] == ["wrong-miss", "wrong", "late"]


def test_failure_kinds_name_what_went_wrong():
    def kind(**fields) -> str | None:
        return failure_kind(_row(**fields).__dict__, top_k=3)

    assert kind(answer="x", refused=False, correct=True) is None
    assert kind(answerable=False, expected=[], has_gold=False, rank=None, answer="甲", refused=False, correct=False) == (
        "answered the unanswerable"
    )
    assert kind(rank=5, answer=REFUSAL, refused=True, correct=False) == "gold not shown"
    assert kind(answer=REFUSAL, draft="资料中没有提到。", refused=True, correct=False) == "refused"
    assert kind(answer=REFUSAL, draft="规模为999亿元[1]。", refused=True, correct=False) == "withheld by the check"
    assert kind(expected=[["30亿元"]], answer="30[1]", refused=False, correct=False) == "partial answer"
    assert kind(expected=[["30亿元"]], answer="河南[1]", refused=False, correct=False) == "wrong answer"


def test_failures_are_counted_and_listed_per_category_with_the_withheld_attempt():
    rows = [
        _row(qid="f1", answer="河南[1]", refused=False, correct=False).__dict__,
        _row(qid="f2", answer="30亿元[1]", refused=False, correct=True).__dict__,
        _row(qid="u1", category="unanswerable", expected=[], answerable=False, has_gold=False, rank=None, answer="甲[1]",
             draft="甲[1]", refused=False, correct=False, retry="refusal", withheld="资料中没有提到。").__dict__,
    ]
    text = "\n".join(failure_lines(rows, top_k=3))
    assert "| figures | 0 | 0 | 0 | 1 | 0 | 0 |" in text and "| unanswerable | 0 | 0 | 0 | 0 | 0 | 1 |" in text
    assert "## Worst failures: figures (1 shown)" in text and "### f1 (figures: wrong answer" in text
    assert "### u1 (unanswerable: answered the unanswerable" in text and "f2" not in text
    assert "- retried after a refusal; the attempt not shown: 资料中没有提到。" in text


def test_category_labels_stay_ascii_without_a_cjk_font():
    assert category_label("figures", chinese=True) == "数字\nfigures"
    assert category_label("figures", chinese=False) == "figures"
    assert category_label("数字", chinese=False).isascii()


# --- question formats ---------------------------------------------------------------------


def _write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


REGRESSION_ROWS = [
    {"qid": "q001", "question": "河南设立的人工智能产业基金总规模是多少？", "category": "figures",
     "answers": [["30亿元", "30亿"]], "evidence": ["设立总规模30亿元的人工智能产业基金"], "source": ["henan.txt"]},
    {"qid": "q002", "question": "那机器人呢？", "category": "followup",
     "answers": [["27.6亿元", "27.6亿"]], "evidence": ["2024年我国人形机器人市场规模约为27.6亿元"], "source": ["robots.md"],
     "followup_of": "q001",
     "history": [{"role": "user", "content": "河南设立的人工智能产业基金总规模是多少？"},
                 {"role": "assistant", "content": "总规模30亿元。"}]},
    {"qid": "q003", "question": "浙江省设立的人工智能产业基金总规模是多少？", "category": "unanswerable",
     "answers": [], "evidence": [], "source": []},
    {"qid": "q004", "question": "河南省人民政府哪天发布了政策措施？", "category": "dates",
     "answers": [["8月9日", "8月9号"]], "evidence": ["8月9日，河南省人民政府发布"], "source": ["henan.txt"]},
]


def test_load_regression_format(tmp_path):
    questions = load_questions(_write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS))
    first, followup, unanswerable = questions[:3]
    assert first.parts == (("30亿元", "30亿"),) and first.answerable and first.has_gold
    assert first.retrieval_query == first.question
    assert followup.history[0]["role"] == "user"
    assert followup.retrieval_query == "河南设立的人工智能产业基金总规模是多少？ 那机器人呢？"
    assert not unanswerable.answerable and not unanswerable.has_gold and unanswerable.category == "unanswerable"
    assert len(load_questions(tmp_path / "q.jsonl", limit=2)) == 2


def test_load_external_format(tmp_path):
    path = _write_jsonl(tmp_path / "cmrc.jsonl", [
        {"qid": "DEV_0_QUERY_1", "question": "这一模式是由谁改编的？", "answers": ["村雨城", "任天堂游戏谜之村雨城"],
         "gold_pids": ["DEV_0"]},
    ])
    (question,) = load_questions(path)
    assert question.parts == (("村雨城", "任天堂游戏谜之村雨城"),)
    assert question.gold_doc_ids == frozenset({"DEV_0"}) and question.evidence == ()
    assert question.category == "answerable"


def test_malformed_rows_name_their_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    rows = [json.dumps(REGRESSION_ROWS[0], ensure_ascii=False), json.dumps({"qid": "x", "question": "?"})]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        load_questions(path)
    with pytest.raises(InputError, match="no questions"):
        load_questions(_write_jsonl(tmp_path / "empty.jsonl", []))


def test_gold_chunks_by_quote_part_of_quote_or_document():
    question = EvalQuestion("q", "?", "figures", (("30亿元",),), evidence=("设立总规模 30亿元的人工智能产业基金",))
    chunk = Chunk("c", "d", "河南", "s", "……设立总规模30亿元的人工智能", 0)
    assert question.is_gold(chunk)
    assert not question.is_gold(replace(chunk, text="设立总规模30亿"))
    assert question.supported_by(replace(chunk, text="总规模30亿元"))  # holds an accepted answer
    external = EvalQuestion("q", "?", "answerable", (("x",),), gold_doc_ids=frozenset({"DEV_0"}))
    assert external.is_gold(replace(chunk, doc_id="DEV_0")) and not external.is_gold(chunk)


# --- baseline -----------------------------------------------------------------------------


def _answered(qid: str, correct: bool, category: str = "figures", rank: int | None = 1) -> QuestionRow:
    return _row(qid=qid, category=category, rank=rank, expected=[["对"]], answer="对" if correct else "错", refused=False,
                correct=correct, citations=[_cite(True)])


def _stored(rows: Sequence[QuestionRow], sha: str = "s" * 64) -> dict:
    return {"config": {"questions": {"sha256": sha}, "scorer": SCORER_VERSION}, "overall": summarise(rows),
            "per_category": summarise_by_category(rows), "questions": [row.__dict__ for row in rows]}


def test_question_changes_list_broken_before_fixed():
    before = [_answered("a", True), _answered("b", False, rank=3), _answered("c", True), _row(qid="r", rank=2)]
    after = [_answered("a", False), _answered("b", True, rank=1), _answered("c", True), _row(qid="r", rank=1),
             _answered("new", True)]
    pairs = pair_rows(before, after)
    assert [new.qid for _, new in pairs] == ["a", "b", "c", "r"]  # "new" has nothing to compare with
    changes = question_changes(pairs)
    assert [(c["qid"], c["broken"], c["fixed"]) for c in changes] == [
        ("a", ["answer_accuracy", "answer_span_recall"], []),
        ("b", [], ["hit@1", "mrr@10", "answer_accuracy", "answer_span_recall"]),
        ("r", [], ["hit@1", "mrr@10"]),
    ]
    assert [c["kind"] for c in changes] == ["correct → wrong", "wrong → correct", "no answers compared (fixed: hit@1, mrr@10)"]
    assert (changes[0]["baseline"], changes[0]["current"]) == ("gold rank 1 · 对", "gold rank 1 · 错")
    assert (changes[2]["baseline"], changes[2]["current"]) == ("gold rank 2", "gold rank 1")


def test_a_subset_run_is_compared_with_the_baseline_on_the_same_questions():
    baseline_rows = [_answered("a", True), _answered("b", True), _answered("c", False), _answered("d", False)]
    run = [_answered("a", True), _answered("b", True)]  # as with --limit 2: the same outcomes
    comparison = compare_with_baseline(_stored(baseline_rows), run, Path("b.json"), "s" * 64)
    accuracy = next(d for d in comparison.deltas if d.metric == "answer_accuracy")
    assert (accuracy.baseline, accuracy.current) == (1.0, 1.0)  # not the baseline's overall 0.5
    assert comparison.compared == 2 and not comparison.regressed and comparison.changes == []
    assert comparison.notes == ["compared on the 2 questions both runs scored (this run 2, baseline 4)"]
    figures = comparison.per_category["figures"]
    assert figures["questions"] == 2 and figures["answer_accuracy"] == {"baseline": 1.0, "current": 1.0}


def test_the_same_questions_are_compared_with_the_accepted_figures_as_stored():
    rows = [_answered("a", True), _answered("b", False, category="dates")]
    stored = _stored(rows, sha="other")
    stored["overall"]["answer_accuracy"] = 0.9  # accepted figures are the stored ones
    comparison = compare_with_baseline(stored, rows, Path("b.json"), "s" * 64)
    accuracy = next(d for d in comparison.deltas if d.metric == "answer_accuracy")
    assert (accuracy.baseline, accuracy.current) == (0.9, 0.5) and comparison.compared == 2
    assert not comparison.regressed  # worse on paper, but no question flipped: the gate judges the flips
    assert comparison.notes == ["the baseline was made from a different question file"]
    assert comparison.per_category["dates"]["answer_accuracy"] == {"baseline": 0.0, "current": 0.0}
    no_rows = {"overall": {"answer_accuracy": 0.9}}  # a trimmed report: its summary is all there is
    overall_only = compare_with_baseline(no_rows, rows, Path("b.json"), "s" * 64)
    assert [d.metric for d in overall_only.deltas] == ["answer_accuracy"] and overall_only.changes == []
    assert not overall_only.regressed and "not tested" in overall_only.decision
    assert "no per-question rows" in overall_only.notes[-1]


# --- end to end ---------------------------------------------------------------------------

STANDALONE = "2024年我国人形机器人市场规模是多少？"
FACTS = {  # question put to the LLM -> (figure its passage holds, answer sentence)
    REGRESSION_ROWS[0]["question"]: ("30亿元", "河南设立了总规模30亿元的人工智能产业基金"),
    STANDALONE: ("27.6亿元", "2024年我国人形机器人市场规模约为27.6亿元"),
}


def scripted_reply(messages: Sequence[Message]) -> str:
    """Rewrites the follow-up; answers what FACTS know, citing the passage with the figure; refuses the rest."""
    if messages[0]["content"] == REWRITE_SYSTEM:
        return STANDALONE
    prompt = messages[-1]["content"]
    for question, (figure, sentence) in FACTS.items():
        if question in prompt and figure in prompt:
            n = re.findall(r"^\[(\d+)\]", prompt[: prompt.index(figure)], flags=re.M)[-1]
            return f"{sentence}[{n}]。"
    return REFUSAL


def _eval(tmp_path: Path, questions: Path, corpus: Sequence[Path], out: str, **options) -> tuple[int, str]:
    console = Console(file=io.StringIO(), width=160)
    kwargs = dict(settings=Settings(), index=None, questions=questions, corpus=list(corpus), out_dir=tmp_path / out,
                  baseline=None, retrieval_only=False, limit=None, mode="hybrid", top_k=3, console=console,
                  generator=ScriptedGenerator(scripted_reply))
    code = run_cli_eval(**{**kwargs, **options})
    return code, console.file.getvalue()  # type: ignore[attr-defined]


def test_eval_asks_the_components_for_its_pipeline_and_each_question_for_the_run_mode(tmp_path, corpus_dir, monkeypatch):
    built, pipeline = [], Components.pipeline
    monkeypatch.setattr(Components, "pipeline", lambda self: built.append(pipeline(self)) or built[-1])
    searched, search = [], Retriever.search

    def spy(self, query, k=5, mode="hybrid", where=None):
        searched.append((k, mode))
        return search(self, query, k, mode, where)

    monkeypatch.setattr(Retriever, "search", spy)
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    code, _ = _eval(tmp_path, questions, [corpus_dir], "dense", mode="dense", top_k=2)
    config = json.loads((tmp_path / "dense" / "report.json").read_text(encoding="utf-8"))["config"]
    assert code == 0 and len(built) == 1 and built[0].queue.capacity == Settings().queue_capacity  # with its queue
    assert {mode for _, mode in searched} == {"dense"} and {k for k, _ in searched} == {RETRIEVAL_K, 2}
    assert (config["mode"], config["top_k"]) == ("dense", 2)


def test_end_to_end_report_with_scripted_llm(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    code, printed = _eval(tmp_path, questions, [corpus_dir], "run")
    assert code == 0 and "report.json" in printed
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    overall = report["overall"]
    assert overall["questions"] == 4 and overall["hit@5"] == 1.0
    assert overall["answer_accuracy"] == 0.75  # q004 refused although answerable
    assert (overall["refusal_precision"], overall["refusal_recall"]) == (0.5, 1.0)
    assert (overall["citation_precision"], overall["citation_recall"]) == (1.0, 1.0)
    assert overall["total_ms_p50"] is not None and overall["first_token_ms_p95"] is not None
    assert report["per_category"]["followup"]["answer_accuracy"] == 1.0
    assert report["per_category"]["dates"]["answer_accuracy"] == 0.0
    followup = next(row for row in report["questions"] if row["qid"] == "q002")
    assert followup["standalone_question"] == STANDALONE and followup["citations"][0]["gold"]
    config = report["config"]
    assert config["models"] == {"embedder": "fake:hashing", "llm": "fake:scripted"}
    assert config["index"]["path"] == str(tmp_path / "run" / "index") and config["index"]["documents"] == 3
    assert len(config["questions"]["sha256"]) == 64 and config["date"]
    markdown = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert "## Scores" in markdown and "### q004 (dates" in markdown and REFUSAL in markdown
    assert (tmp_path / "run" / "chart.png").read_bytes().startswith(b"\x89PNG")


def test_report_shows_what_the_model_wrote_when_the_check_withheld_it(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    _eval(tmp_path, questions, [corpus_dir], "run")
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    rows = {row["qid"]: row for row in report["questions"]}
    assert rows["q001"]["draft"] == rows["q001"]["answer"]  # verified: the check left it as it was
    rows["q004"]["draft"] = "发布于2099年1月1日[1]。"  # as if the check had withheld a made-up date
    markdown = render_markdown(report)
    assert "- the model wrote (before the citation check): 发布于2099年1月1日[1]。" in markdown
    assert markdown.count("before the citation check") == 1


def test_end_to_end_baseline_gate_and_index_reuse(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    assert _eval(tmp_path, questions, [corpus_dir], "base")[0] == 0
    manifest = tmp_path / "base" / "index" / "manifest.json"
    generation = json.loads(manifest.read_text())["generation"]
    stored = json.loads((tmp_path / "base" / "report.json").read_text(encoding="utf-8"))

    same, printed = _eval(tmp_path, questions, [corpus_dir], "base", baseline=tmp_path / "base" / "report.json")
    assert same == 0 and "Gate: PASS: no rate metric got worse (latency not gated)" in printed
    assert json.loads(manifest.read_text())["generation"] == generation  # unchanged corpus: index reused
    baseline = tmp_path / "baseline.json"  # better figures on paper, the same outcome for every question
    baseline.write_text(json.dumps({**stored, "overall": {**stored["overall"], "answer_accuracy": 0.9}}), encoding="utf-8")
    code, _ = _eval(tmp_path, questions, [corpus_dir], "worse", baseline=baseline)
    gate = (tmp_path / "worse" / "report.md").read_text(encoding="utf-8").splitlines()[2]
    assert code == 0 and gate.startswith("**Gate:** PASS: no regression beyond chance; worse: answer_accuracy 0.900 → 0.750")


def test_end_to_end_limited_run_against_a_full_baseline_lists_changed_questions(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    assert _eval(tmp_path, questions, [corpus_dir], "base")[0] == 0
    stored = json.loads((tmp_path / "base" / "report.json").read_text(encoding="utf-8"))
    q001 = next(row for row in stored["questions"] if row["qid"] == "q001")
    q001.update(correct=False, answer="不知道")  # as if the baseline had got q001 wrong
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")

    code, printed = _eval(tmp_path, questions, [corpus_dir], "limited", limit=2, baseline=baseline)
    assert code == 0 and "fixed 1: q001(answer_accuracy,answer_span_recall)" in printed and "broken 0" in printed
    section = json.loads((tmp_path / "limited" / "report.json").read_text(encoding="utf-8"))["baseline"]
    assert section["compared"] == 2 and section["notes"] == ["compared on the 2 questions both runs scored (this run 2, baseline 4)"]
    accuracy = next(d for d in section["deltas"] if d["metric"] == "answer_accuracy")
    assert (accuracy["baseline"], accuracy["current"]) == (0.5, 1.0)  # q001 + q002 on both sides
    markdown = (tmp_path / "limited" / "report.md").read_text(encoding="utf-8")
    assert "### Questions that flipped: 0 broken, 1 fixed" in markdown
    assert "- ✓ **q001** (figures; fixed: answer_accuracy, answer_span_recall)" in markdown
    assert "  - baseline: gold rank 1 · 不知道\n  - current: gold rank 1 · 河南设立了总规模30亿元" in markdown
    assert "| figures | 1 | 1.000 | 0.000 → 1.000 |" in markdown
    limited = json.loads((tmp_path / "limited" / "report.json").read_text(encoding="utf-8"))
    assert baseline_values(limited, "answer_accuracy", ["overall", "figures", "nowhere"]) == [0.5, 0.0, None]
    assert baseline_values(stored, "answer_accuracy", ["overall"]) == [None]  # a run with no baseline: no ticks
    retrieval_only, _ = _eval(tmp_path, questions, [corpus_dir], "ro", retrieval_only=True, generator=None, baseline=baseline)
    markdown = (tmp_path / "ro" / "report.md").read_text(encoding="utf-8")
    assert retrieval_only == 0 and "| category | n | hit@1 |\n" in markdown  # only what this run measured


def test_a_baseline_sharing_no_question_is_refused_before_anything_runs(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    assert _eval(tmp_path, questions, [corpus_dir], "base")[0] == 0
    stored = json.loads((tmp_path / "base" / "report.json").read_text(encoding="utf-8"))
    for row in stored["questions"]:
        row["qid"] = "other-" + row["qid"]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(stored), encoding="utf-8")
    never = ScriptedGenerator(lambda messages: pytest.fail("the LLM ran before the baseline was checked"))
    with pytest.raises(InputError, match="shares no question"):
        _eval(tmp_path, questions, [corpus_dir], "run", baseline=baseline, generator=never)


def _asked_question(prompt: str) -> str:
    """The ``问题：`` line of an answer prompt's user message."""
    return re.search(r"问题：(.*)", prompt).group(1)


def test_interrupted_run_resumes_without_asking_again(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    asked: list[str] = []

    def reply_then_crash(messages: Sequence[Message]) -> str:
        if messages[0]["content"] != REWRITE_SYSTEM and list(messages) != list(CALIBRATION_MESSAGES):
            asked.append(messages[-1]["content"])
            if len(asked) == 3:
                raise KeyboardInterrupt  # the evaluator presses Ctrl-C during the third answer
        return scripted_reply(messages)

    with pytest.raises(KeyboardInterrupt):
        _eval(tmp_path, questions, [corpus_dir], "run", generator=ScriptedGenerator(reply_then_crash))
    journal = tmp_path / "run" / JOURNAL_NAME
    # key + three finished rows: q003 is refused without the LLM (no passage names 浙江)
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 1 + 3
    assert not (tmp_path / "run" / "report.json").exists()

    counting = ScriptedGenerator(scripted_reply)
    code, printed = _eval(tmp_path, questions, [corpus_dir], "run", generator=counting)
    assert code == 0 and "resuming: 3 of 4" in printed
    answers = [call for call in counting.calls if call[0]["content"] != REWRITE_SYSTEM and call != list(CALIBRATION_MESSAGES)]
    answered = {_asked_question(call[-1]["content"]) for call in answers}
    finished = {_asked_question(text) for text in asked[:2]}
    assert answered and not answered & finished  # only the rest (a refusal's retry asks the same question again)
    resumed = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert [row["qid"] for row in resumed["questions"]] == [row["qid"] for row in REGRESSION_ROWS]
    assert not journal.exists()  # a finished run leaves no journal behind

    code, _ = _eval(tmp_path, questions, [corpus_dir], "whole")
    whole = json.loads((tmp_path / "whole" / "report.json").read_text(encoding="utf-8"))
    assert resumed["overall"]["answer_accuracy"] == whole["overall"]["answer_accuracy"]
    assert resumed["overall"]["refusal_recall"] == whole["overall"]["refusal_recall"]


def test_journal_of_another_run_is_not_reused(tmp_path):
    journal = RowJournal(tmp_path / JOURNAL_NAME, {"mode": "hybrid"})
    journal.start([_row(qid="a")])
    journal.append(_row(qid="b"))
    assert set(journal.load()) == {"a", "b"}
    assert RowJournal(tmp_path / JOURNAL_NAME, {"mode": "bm25"}).load() == {}
    with journal.path.open("a", encoding="utf-8") as handle:
        handle.write('{"qid": "c", "categ')  # cut off mid-line by a crash
    assert set(journal.load()) == {"a", "b"}  # the cut-off row is scored again, the others kept


def test_duplicate_qids_are_refused(tmp_path):
    questions = _write_jsonl(tmp_path / "q.jsonl", [REGRESSION_ROWS[0], REGRESSION_ROWS[0]])
    with pytest.raises(InputError, match="used twice"):
        load_questions(questions)


def test_retrieval_only_on_an_external_set(tmp_path):
    corpus = _write_jsonl(tmp_path / "corpus.jsonl", [
        {"pid": "P1", "title": "战国无双3", "text": "《战国无双3》是由光荣和ω-force开发的战国无双系列的正统第三续作。"},
        {"pid": "P2", "title": "算力网络", "text": "截至2025年一季度，八大算力枢纽节点总算力规模达215.5 EFLOPS。"},
        {"pid": "P3", "title": "人形机器人", "text": "2024年我国人形机器人市场规模约为27.6亿元。"},
    ])
    queries = _write_jsonl(tmp_path / "queries.jsonl", [
        {"qid": "A", "question": "《战国无双3》是由哪两个公司合作开发的？", "answers": ["光荣和ω-force"], "gold_pids": ["P1"]},
        {"qid": "B", "question": "八大算力枢纽节点总算力规模达到多少？", "answers": ["215.5 EFLOPS"], "gold_pids": ["P2"]},
        {"qid": "C", "question": "人形机器人市场规模是多少？", "answers": ["27.6亿元"], "gold_pids": ["P3"]},
    ])
    code, _ = _eval(tmp_path, queries, [corpus], "cmrc", retrieval_only=True, mode="bm25", limit=2, generator=None)
    report = json.loads((tmp_path / "cmrc" / "report.json").read_text(encoding="utf-8"))
    assert code == 0 and report["config"]["models"]["llm"] is None and report["config"]["mode"] == "bm25"
    assert report["overall"]["questions"] == 2 and report["overall"]["hit@1"] == 1.0
    assert report["overall"]["answer_accuracy"] is None
    assert all(row["answer"] is None for row in report["questions"])


def test_cli_eval_retrieval_only(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["eval", "-q", str(questions), "--corpus", str(corpus_dir), "--retrieval-only", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.md", "report.html", "chart.png", "index"}
    again = CliRunner().invoke(app, ["eval", "-q", str(questions), "--corpus", str(corpus_dir), "--retrieval-only",
                                     "--out", str(tmp_path / "again"), "--baseline", str(out / "report.json"), "--gate-latency"])
    assert again.exit_code == 0 and "Gate: PASS: no rate metric got worse (latency gated by --gate-latency)" in again.output
    bad = CliRunner().invoke(app, ["eval", "-q", str(questions), "--retrieval-only", "--mode", "fuzzy", "--out", str(out)])
    assert bad.exit_code == 1 and "fuzzy" in bad.output


def test_the_regression_set_defaults_to_its_own_corpus_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.chdir(REGRESSION_QUESTIONS.parent.parent)
    assert eval_corpus(Path("eval/questions.jsonl"), [], None) == [REGRESSION_CORPUS]  # the CLI default, relative
    assert eval_corpus(REGRESSION_QUESTIONS, [tmp_path], None) == [tmp_path]  # --corpus wins
    assert eval_corpus(REGRESSION_QUESTIONS, [], tmp_path / "index") == []  # --index: that index, as it is
    assert eval_corpus(tmp_path / "other.jsonl", [], None) == []  # another set: the configured index


def test_the_regression_set_runs_on_its_own_index_of_the_sample_corpus(tmp_path):
    code, _ = _eval(tmp_path, REGRESSION_QUESTIONS, [], "regress", retrieval_only=True, limit=3, generator=None)
    index = json.loads((tmp_path / "regress" / "report.json").read_text(encoding="utf-8"))["config"]["index"]
    assert code == 0 and index["corpus"] == [str(REGRESSION_CORPUS)]
    assert index["path"] == str(tmp_path / "regress" / "index") and index["documents"] >= 2


def test_sync_index_drops_files_no_longer_in_the_corpus(tmp_path, corpus_dir, embedder):
    settings = replace(Settings(), index_dir=tmp_path / "index")
    sync_index([corpus_dir], settings, embedder, progress=lambda *_: None)
    assert len(FaissStore.load(settings.index_dir).documents()) == 3
    sync_index([corpus_dir / "henan.txt"], settings, embedder, progress=lambda *_: None)
    assert [d.title for d in FaissStore.load(settings.index_dir).documents()] == ["河南设立人工智能产业基金"]


def test_eval_retrieval_uses_the_filter_and_records_it(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    henan = str((corpus_dir / "henan.txt").resolve())
    code, _ = _eval(tmp_path, questions, [corpus_dir], "filtered", retrieval_only=True, where=SearchFilter(sources=(henan,)))
    report = json.loads((tmp_path / "filtered" / "report.json").read_text(encoding="utf-8"))
    assert code == 0 and report["config"]["filters"] == {"sources": [henan]}
    retrieved = [passage["doc_id"] for row in report["questions"] for passage in row["retrieved"]]
    assert retrieved and set(retrieved) == {"henan"}  # robots.md answers q002, but the filter leaves it out


# --- settings against the baseline ---------------------------------------------------------


def test_a_configuration_mismatch_exits_4_before_generating_and_allow_mismatch_compares(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    assert _eval(tmp_path, questions, [corpus_dir], "base")[0] == 0
    baseline = tmp_path / "base" / "report.json"
    settings = json.loads(baseline.read_text(encoding="utf-8"))["settings"]
    assert settings["configuration"]["top_k"] == 3 and len(settings["configuration"]["eval_index"]) == 64
    assert settings["environment"]["threads"] == 1 and "rag" in settings["environment"]["packages"]
    never = ScriptedGenerator(lambda messages: pytest.fail("an answer was generated despite the mismatch"))

    code, printed = _eval(tmp_path, questions, [corpus_dir], "k2", baseline=baseline, top_k=2, generator=never)
    assert code == MISMATCH_EXIT_CODE == 4 and "configuration: top_k: 3 → 2" in printed
    assert not (tmp_path / "k2").exists()  # known up front: not even the index was synced

    henan = corpus_dir / "henan.txt"
    henan.write_text(henan.read_text(encoding="utf-8") + "\n新的一段：基金首期规模10亿元。\n", encoding="utf-8")
    code, printed = _eval(tmp_path, questions, [corpus_dir], "edited", baseline=baseline, generator=never)
    assert code == MISMATCH_EXIT_CODE and re.search(r"configuration: eval_index: [0-9a-f]{12} → [0-9a-f]{12}", printed)
    assert not (tmp_path / "edited" / "report.json").exists()  # known after the index sync, before any answer

    code, printed = _eval(tmp_path, questions, [corpus_dir], "allowed", baseline=baseline, top_k=2, allow_mismatch=True)
    section = json.loads((tmp_path / "allowed" / "report.json").read_text(encoding="utf-8"))["baseline"]
    assert code == 0 and "Gate: PASS: no rate metric got worse" in printed  # compared, and nothing flipped
    assert [line.split(":")[0] for line in section["settings"]["configuration"]] == ["eval_index", "top_k"]
    assert section["settings"]["allowed_mismatch"] and MISMATCH_ALLOWED in section["notes"]
    top = (tmp_path / "allowed" / "report.md").read_text(encoding="utf-8").split("## ")[0]
    assert "- configuration: top_k: 3 → 2" in top
    assert f"- note: {MISMATCH_ALLOWED}" in (tmp_path / "allowed" / "report.md").read_text(encoding="utf-8")


def test_an_environment_difference_is_printed_and_does_not_block(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    assert _eval(tmp_path, questions, [corpus_dir], "base")[0] == 0
    stored = json.loads((tmp_path / "base" / "report.json").read_text(encoding="utf-8"))
    stored["settings"]["environment"].update(cpu="Another CPU", threads=64)
    stored["settings"]["environment"]["packages"]["torch"] = "0.1"
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")
    code, printed = _eval(tmp_path, questions, [corpus_dir], "run", baseline=baseline)
    assert code == 0 and "configuration: the same" in printed
    assert "environment (information): cpu: Another CPU → " in printed and "threads: 64 → 1" in printed
    section = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))["baseline"]
    assert len(section["settings"]["environment"]) == 3 and section["notes"] == []


def test_a_baseline_without_settings_is_compared_as_before_with_a_note(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    assert _eval(tmp_path, questions, [corpus_dir], "base")[0] == 0
    stored = json.loads((tmp_path / "base" / "report.json").read_text(encoding="utf-8"))
    del stored["settings"]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")
    code, printed = _eval(tmp_path, questions, [corpus_dir], "run", baseline=baseline, top_k=2)  # unknowable: compared
    assert code == 0 and "the baseline records no settings; record a new one" in printed
    section = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))["baseline"]
    assert section["notes"][0] == "the baseline records no settings; record a new one" and section["deltas"]


def test_cli_eval_documents_the_exit_codes_and_the_settings_split():
    result = CliRunner().invoke(app, ["eval", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert "Exit codes: 0 pass (or no --baseline), 1 error, 3 regression, 4 configuration mismatch." in text
    assert "--allow-mismatch" in text and "Environment (CPU model, llama.cpp build, threads, package versions)" in text


# --- scoring that long answers cannot game -------------------------------------------------


def test_numbers_match_as_whole_tokens():
    assert not contains_any("公司成立于2023年。", ["3年"]) and contains_any("已经运行3年。", ["3年"])
    assert contains_any("总投资200亿元", ["200亿"]) and not contains_any("总投资1200亿元", ["200亿"])
    assert not contains_any("共300家", ["30"]) and contains_any("共30家", ["30"])
    assert not contains_any("增长5.6%", ["5"]) and not contains_any("约为0.5", ["5"]) and not contains_any("13.5亿", ["3.5亿"])
    assert contains_any("3年后，2024年", ["3年"])  # the second occurrence is a whole token
    assert contains_any("总规模３０亿元", ["30亿元"]) and contains_any("第三年", ["三年"])  # only digits are tokens
    assert not all_parts_found("分别是2023年、2013年、1993年[1]。", [["3年"]])  # listing figures does not help


def test_part_recall_is_recorded_per_question_and_summarised_for_lists():
    parts = [["骨干企业数智化转型升级基金", "数智化转型升级基金"], ["专项并购基金"]]
    assert answer_part_recall(False, "包括数智化转型升级基金[1]。", parts) == 0.5
    assert answer_part_recall(True, REFUSAL, parts) == 0.0 and answer_part_recall(True, REFUSAL, []) is None
    rows = [
        _row(expected=parts, answer="包括数智化转型升级基金[1]。", refused=False, correct=False, part_recall=0.5),
        _row(expected=[["x"]], answer="x", refused=False, correct=True, part_recall=1.0),  # one part: not a list
    ]
    assert summarise(rows)["list_part_recall"] == 0.5


def test_unverified_citations_count_against_citation_precision():
    rows = [
        _row(answer="a[1][2?]", refused=False, correct=True, citations=[_cite(True)], unsupported_citations=1),
        _row(answer=REFUSAL, refused=True, correct=False, unsupported_citations=2),  # withheld: its citations never shown
    ]
    assert summarise(rows)["citation_precision"] == 0.5
    assert OUTCOMES["citation_precision"](rows[0]) == 0.5 and OUTCOMES["citation_precision"](rows[1]) is None


def test_undefined_figures_show_as_a_dash_in_the_report(tmp_path, corpus_dir):
    questions = _write_jsonl(tmp_path / "q.jsonl", REGRESSION_ROWS)
    _eval(tmp_path, questions, [corpus_dir], "run")
    markdown = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    unanswerable = next(line for line in markdown.splitlines() if line.startswith("| unanswerable | 1 |"))
    assert unanswerable.startswith("| unanswerable | 1 | — | — | — |") and " 0.000 " not in unanswerable.split("|")[3]
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "<tr><td>unanswerable</td><td>1</td><td>—</td><td>—</td><td>—</td>" in html


def test_list_items_split_on_list_punctuation_numbering_and_lines():
    assert list_items("浙江、山东和河南[1]；四川及湖北与安徽。") == ["浙江", "山东", "河南", "四川", "湖北", "安徽"]
    assert list_items("1. 消费提质[1]2. 产业升级\n- 治理效能\n（规模5347.9亿元）") == ["消费提质", "产业升级", "治理效能", "(规模5347.9亿元)"]
    assert list_items("科创与产业投资基金、专项并购基金", keep=["科创与产业投资基金"]) == ["科创与产业投资基金", "专项并购基金"]


def test_list_precision_counts_listed_items_that_match_no_gold_part():
    parts = [["浙江"], ["河南"]]
    assert list_precision("浙江、河南[1]", parts) == 1.0
    assert list_precision("浙江、山东、湖北、河南、四川[1]", parts) == 0.4  # a padded list scores all parts, precision falls
    assert list_precision("", parts) is None
    rows = [
        _row(expected=parts, answer="浙江、山东、湖北、河南[1]", refused=False, correct=True),
        _row(expected=parts, answer="浙江和河南", refused=False, correct=True),
        _row(expected=parts, answer=REFUSAL, refused=True, correct=False),  # a refusal lists nothing
        _row(expected=[["x"]], answer="x、y", refused=False, correct=True),  # one part: not a list question
    ]
    assert summarise(rows)["list_precision"] == 0.75
    assert summarise_by_category(rows[3:])["figures"]["list_precision"] is None


def test_an_answer_naming_an_excluded_item_is_wrong():
    row = {"qid": "q1", "question": "哪些省份两者都有？", "answers": [["浙江"], ["河南"]], "excluded": ["山东"]}
    question = parse_question(row)
    assert question.excluded == ("山东",)
    assert is_correct(True, False, "浙江、河南[1]", question.parts, question.excluded)
    assert not is_correct(True, False, "浙江、山东、河南[1]", question.parts, question.excluded)
    assert is_correct(True, False, "浙江、山东、河南[1]", question.parts)  # without the excluded items it was credited


def test_the_chart_draws_refusals_and_refused_answerable_as_a_share():
    rows = [
        _row(qid="a", answer=REFUSAL, refused=True, correct=False),
        _row(qid="b", answer="x", refused=False, correct=True),
        _row(qid="c", category="unanswerable", expected=[], answerable=False, has_gold=False, rank=None, answer=REFUSAL,
             refused=True, correct=True),
    ]
    report = {"overall": summarise(rows), "per_category": summarise_by_category(rows), "questions": [r.__dict__ for r in rows]}
    assert chart_values(report, "refused_answerable") == [0.5, 0.5, None]
    assert chart_values(report, "refusal_recall") == [1.0, None, 1.0]
