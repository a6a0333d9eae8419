"""The ``rag eval`` command: sync the eval corpus, score every question, report, compare, resume.

With a baseline, the settings are checked before any answer is generated (see
:mod:`rag.evaluation.run_settings`): a different configuration exits :data:`MISMATCH_EXIT_CODE`
unless ``--allow-mismatch``; a different environment is printed and compared anyway.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from rag.components import Components
from rag.config import REPO_ROOT, Settings
from rag.errors import InputError
from rag.evaluation.baseline import check_comparable, compare_with_baseline, load_report
from rag.evaluation.calibration import calibrate
from rag.evaluation.report import print_baseline, print_gate, print_settings_diff, print_summary, write_report
from rag.evaluation.run_settings import (
    DECODING,
    SettingsDiff,
    index_fingerprint,
    run_configuration,
    run_environment,
    uses_llama,
)
from rag.evaluation.scoring import (
    RETRIEVAL_K,
    SCORER_VERSION,
    QuestionRow,
    RowJournal,
    SearchOptions,
    load_questions,
    run_questions,
    summarise,
    summarise_by_category,
)
from rag.index.chunking import ChunkingConfig
from rag.index.documents import file_sha256, iter_input_files
from rag.index.filters import SearchFilter
from rag.index.ingest import ingest, remove
from rag.models.embedders import Embedder
from rag.models.generators import Generator
from rag.progress import ProgressCallback, progress_reporter
from rag.qa.pipeline import QAPipeline
from rag.qa.retriever import Retriever, search_mode

REGRESSION_EXIT_CODE = 3
MISMATCH_EXIT_CODE = 4  # the configuration differs from the baseline's: not compared
JOURNAL_NAME = "rows.partial.jsonl"  # rows of an unfinished run, in the --out folder
REGRESSION_QUESTIONS = REPO_ROOT / "eval" / "questions.jsonl"
REGRESSION_CORPUS = REPO_ROOT / "corpus"  # the articles the regression set was written from


def eval_corpus(questions: Path, corpus: Sequence[Path], index: str | Path | None) -> list[Path]:
    """``--corpus`` if given; the sample corpus for the regression set with no ``--index``; else none.

    The regression set is scored against its own articles in its own index, so a working index
    that staff have added to (or removed the samples from) cannot shift the figures.
    """
    if corpus or index is not None:
        return list(corpus)
    return [REGRESSION_CORPUS] if questions.resolve() == REGRESSION_QUESTIONS.resolve() else []


def eval_index_dir(index: str | Path | None, corpus: Sequence[Path], out_dir: Path, default: str | Path) -> str | Path:
    """``--index`` (a directory or a Milvus URI) if given; else ``<out>/index`` for an eval corpus, or the default index."""
    if index is not None:
        return index
    return out_dir / "index" if corpus else default


def sync_index(corpus: Sequence[Path], settings: Settings, embedder: Embedder, progress: ProgressCallback) -> None:
    """Make the index of ``settings`` hold exactly ``corpus`` (unchanged files are skipped)."""
    chunking = ChunkingConfig.from_settings(settings)
    report = ingest(corpus, settings.index, embedder, chunking, progress=progress)
    if report.files_failed or report.folders_unreadable:
        failed = "; ".join(f"{path}: {message}" for path, message in report.files_failed + report.folders_unreadable)
        raise InputError(f"the eval corpus could not be ingested: {failed}")
    wanted = {str(path.resolve()) for path in iter_input_files(corpus)}
    for source in set(Components(settings).open_store().sources()) - wanted:
        remove(settings.index, source)


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """``git describe --always --dirty`` of the checkout, or None outside git."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def build_report(
    rows: Sequence[QuestionRow], config: dict[str, Any], settings: dict[str, Any], calibration: dict[str, Any]
) -> dict[str, Any]:
    """The ``report.json`` payload (a ``baseline`` section is added when comparing)."""
    return {
        "config": config,
        "settings": settings,
        "calibration": calibration,
        "overall": summarise(rows),
        "per_category": summarise_by_category(rows),
        "questions": [asdict(row) for row in rows],
    }


def open_eval(
    settings: Settings,
    corpus: Sequence[Path],
    retrieval_only: bool,
    generator: Generator | None,
    progress: ProgressCallback,
) -> tuple[Retriever, QAPipeline | None]:
    """The retriever (after syncing ``corpus`` into the index) and, unless retrieval only, the pipeline.

    Both come from :class:`Components`, as for every other entry point; the search mode, top-k
    and filter of the run go with each question (:class:`SearchOptions`).
    """
    components = Components(settings, generator=generator)
    if corpus:
        sync_index(corpus, settings, components.embedder(), progress)
    return components.retriever(), None if retrieval_only else components.pipeline()


def run_config(
    questions: Path,
    count: int,
    retriever: Retriever,
    pipeline: QAPipeline | None,
    corpus: Sequence[Path],
    options: SearchOptions,
    threads: int,
) -> dict[str, Any]:
    """The ``config`` section of a report: what was run, on what, when, and what makes it repeatable."""
    store = retriever.store
    return {
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "questions": {"path": str(questions), "sha256": file_sha256(Path(questions)), "count": count},
        "models": {"embedder": retriever.embedder.model_id, "llm": pipeline.generator.model_id if pipeline else None},
        "index": {
            "path": store.location,
            "documents": len(store.documents()),
            "chunks": store.count(),
            "chunking": store.manifest.chunking.to_dict(),
            "corpus": [str(path) for path in corpus],
        },
        "mode": options.mode,
        **({"filters": options.where.to_dict()} if options.where else {}),
        "top_k": options.top_k,
        **({"passage_chars": pipeline.shown_chars} if pipeline else {}),
        "retrieval_k": RETRIEVAL_K,
        "retrieval_only": pipeline is None,
        "threads": threads,
        "decoding": DECODING,
        "scorer": SCORER_VERSION,
    }


def run_key(config: Mapping[str, Any]) -> dict[str, Any]:
    """What must match for rows of an earlier, interrupted run to be reused: not its date or size."""
    key = {name: value for name, value in config.items() if name not in ("date", "git_commit")}
    key["questions"] = {name: value for name, value in config["questions"].items() if name != "count"}
    return key


def check_settings(
    stored: Mapping[str, Any], settings: Mapping[str, Any], allow_mismatch: bool, console: Console, quiet: bool = False
) -> SettingsDiff:
    """``settings`` against the baseline's; the differences printed (``quiet``: only when they block the run)."""
    check = SettingsDiff.of(stored, settings, allow_mismatch)
    if check.blocks or not quiet:
        print_settings_diff(check.to_dict(), console)
    if check.blocks:
        console.print(
            f"[bold red]Gate: NOT COMPARED[/]: the configuration differs from the baseline's (exit {MISMATCH_EXIT_CODE}); "
            "record a new baseline, or compare anyway with --allow-mismatch",
            highlight=False,
        )
    return check


def run_cli_eval(
    *,
    settings: Settings,
    index: str | Path | None,
    questions: Path,
    corpus: Sequence[Path],
    out_dir: Path,
    baseline: Path | None,
    retrieval_only: bool,
    limit: int | None,
    mode: str,
    top_k: int,
    console: Console,
    generator: Generator | None = None,
    fresh: bool = False,
    gate_latency: bool = False,
    where: SearchFilter | None = None,
    allow_mismatch: bool = False,
) -> int:
    """``rag eval``: score, write report.json/.md/.html and chart.png to ``out_dir``, return the exit code.

    The code is :data:`REGRESSION_EXIT_CODE` when the gate (:data:`rag.evaluation.baseline.GATES`)
    finds a regression against ``baseline``, :data:`MISMATCH_EXIT_CODE` when the configuration
    differs from the baseline's (checked before anything is generated; ``allow_mismatch``
    compares anyway), else 0. ``gate_latency`` gates the p50 latencies too (meaningful on the
    baseline's machine only). ``where`` restricts retrieval (search filters). ``generator``
    replaces the configured LLM (tests pass a fake). Rows are journalled in ``out_dir`` as they
    are scored, so an interrupted run resumes where it stopped; ``fresh`` discards such a journal.
    """
    options = SearchOptions(search_mode(mode), top_k, where or SearchFilter())
    stored = load_report(baseline) if baseline else None
    items = load_questions(questions, limit)
    if stored and baseline:
        check_comparable(stored, [q.qid for q in items], baseline)
    corpus = eval_corpus(questions, corpus, index)
    settings = settings.with_index(eval_index_dir(index, corpus, out_dir, settings.index))
    configuration = run_configuration(
        settings,
        generator=generator,
        questions_sha256=file_sha256(Path(questions)),
        mode=options.mode,
        top_k=options.top_k,
        retrieval_only=retrieval_only,
        where=options.where,
    )
    if stored and check_settings(stored, {"configuration": configuration}, allow_mismatch, console, quiet=True).blocks:
        return MISMATCH_EXIT_CODE  # known before the index is synced
    with progress_reporter(console) as progress:
        retriever, pipeline = open_eval(settings, corpus, retrieval_only, generator, progress)
        configuration["eval_index"] = index_fingerprint(retriever.store)
        environment = run_environment(settings, uses_llama(settings, generator, retrieval_only))
        run_settings = {"configuration": configuration, "environment": environment}
        check = check_settings(stored, run_settings, allow_mismatch, console) if stored else None
        if check and check.blocks:
            return MISMATCH_EXIT_CODE  # known before any answer is generated
        config = run_config(questions, len(items), retriever, pipeline, corpus, options, settings.threads)
        journal = RowJournal(out_dir / JOURNAL_NAME, {**run_key(config), "configuration": configuration})
        if fresh:
            journal.finish()
        resumed = len(set(journal.load()) & {q.qid for q in items})
        if resumed:
            console.print(f"resuming: {resumed} of {len(items)} questions already scored in {journal.path}", highlight=False)
        rows = run_questions(items, retriever, pipeline, options, progress, journal)
    calibration = calibrate(retriever.embedder, pipeline.generator if pipeline else None)  # models warm by now
    report = build_report(rows, config, run_settings, calibration)
    comparison = None
    if stored and baseline:
        sha256 = config["questions"]["sha256"]
        comparison = compare_with_baseline(stored, rows, baseline, sha256, calibration, gate_latency, check)
        report["baseline"] = comparison.to_dict()
    written = write_report(report, out_dir)
    print_gate(report, console)
    print_summary(report, console)
    if comparison:
        print_baseline(report["baseline"], console)
    journal.finish()
    console.print("wrote " + ", ".join(str(path) for path in written), highlight=False)
    return REGRESSION_EXIT_CODE if comparison and comparison.regressed else 0
