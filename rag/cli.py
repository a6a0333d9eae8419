"""The ``rag`` command line: a thin layer over the library, tested in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from rag.accounts.commands import audit_command, audited, conversations_app, kb_app, keys_app, users_app
from rag.accounts.kbs import registry_for
from rag.components import Components
from rag.config import Settings
from rag.console import err, fail, out, shown
from rag.errors import RagError
from rag.index.filters import SearchFilter
from rag.index.locations import redact
from rag.progress import progress_reporter

if TYPE_CHECKING:
    from rag.index.ingest import IngestReport
    from rag.qa.pipeline import QAPipeline
    from rag.qa.retriever import Retriever

app = typer.Typer(
    help="Local, cited question answering over Chinese articles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Prepare the bundled models (offline; done automatically on first use).", no_args_is_help=True)
app.add_typer(models_app, name="models")
eval_app = typer.Typer()  # `rag eval [options]` runs the evaluation; its subcommands turn feedback into test cases
app.add_typer(eval_app, name="eval")
app.add_typer(kb_app, name="kb")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(conversations_app, name="conversations")
app.command("audit")(audit_command)

KbOption = typer.Option(None, "--kb", help="Knowledge base (see `rag kb list`); default: the index at $RAG_INDEX, KB default.")
KbsOption = typer.Option(
    None, "--kb", help="Knowledge base (repeatable: several are searched as one ranking, each passage naming its KB)."
)
IndexOption = typer.Option(
    None,
    "--index",
    "-i",
    help="Index: a directory, milvus-lite:///abs/path/kb.db or milvus://host:19530/collection (default: $RAG_INDEX or index/default).",
)


DateFromOption = typer.Option(None, "--date-from", help="Only articles published on or after this date (2025-09-01).")
DateToOption = typer.Option(None, "--date-to", help="Only articles published on or before this date.")
SourceOption = typer.Option(None, "--source", help="Only chunks of this ingested file (repeatable; any of them).")
TagOption = typer.Option(
    None, "--tag", help="Only documents with this tag: a folder name or a JSONL tag (repeatable; any of them)."
)


def search_filter(
    date_from: Optional[str], date_to: Optional[str], sources: Optional[List[str]], tags: Optional[List[str]]
) -> SearchFilter:
    """The filter the options ask for; a source is a file path, matched as ingested (absolute)."""
    paths = [str(Path(source).expanduser().resolve()) for source in sources or []]
    return SearchFilter.of(date_from, date_to, paths, tags)


def print_problems(report: IngestReport) -> None:
    """What an ingest or sync skipped, and its warnings, one line each on stderr."""
    for path, message in [*report.files_failed, *report.folders_unreadable]:
        err.print(f"[yellow]skipped[/] {shown(path)}: {shown(message)}", highlight=False)
    for warning in report.warnings:
        err.print(f"[yellow]warning[/] {shown(warning)}", highlight=False)


def settings_for(index: Optional[str], kb: Optional[str] = None) -> Settings:
    """The settings with ``--index`` or the index of ``--kb`` (else ``$RAG_INDEX``); a malformed index URI
    or an unknown knowledge base exits 1."""
    try:
        settings = Settings()
        location = kb_location(settings, index, kb)
        return settings.with_index(location) if location else settings
    except RagError as exc:
        fail(exc)
        raise  # not reached: fail() exits


def kb_location(settings: Settings, index: Optional[str], kb: Optional[str]) -> Optional[str]:
    """``--index``, or the index of knowledge base ``--kb`` (not both), or None for the configured index."""
    if index and kb:
        raise RagError("give --kb or --index, not both")
    return registry_for(settings).get(kb).location if kb else index


def searcher_for(index: Optional[str], kbs: Optional[List[str]]) -> Retriever:
    """Search over ``--kb`` knowledge bases (one ranking, hits naming their KB), else ``--index``."""
    kb_location(Settings(), index, kbs[0] if kbs else None)  # not both
    if not kbs:
        return components_for(index).retriever()
    components = components_for(index)
    return components.searcher([components.kbs().get(name) for name in kbs])


def pipeline_for(index: Optional[str], kbs: Optional[List[str]], top_k: int) -> QAPipeline:
    """The pipeline answering from the ``--kb`` knowledge bases, else from ``--index``."""
    kb_location(Settings(), index, kbs[0] if kbs else None)  # not both
    components = components_for(index, top_k=top_k)
    if not kbs:
        return components.pipeline()
    return components.pipeline_for([components.kbs().get(name) for name in kbs])


def audit_write(action: str, settings: Settings, kb: Optional[str], done: str, private: str, failed: bool = False) -> None:
    """An audit row for a CLI write to the index of ``settings`` (``--kb``, or the KB registered there;
    another ``--index`` is named in the row); a warning, not a failure, if the log cannot be written."""
    try:
        kbs = [kb] if kb else [k.name for k in registry_for(Settings()).list() if k.location == settings.index]
        where = "" if kbs else f"index {redact(settings.index)}: "
        audited(action, kbs, where + done, "error" if failed else "ok", private)
    except RagError as exc:
        err.print(f"[yellow]warning[/] the audit log was not written: {shown(str(exc))}", highlight=False)


def components_for(index: Optional[str], top_k: int = 3, kb: Optional[str] = None) -> Components:
    """The assembled components for ``--index`` or ``--kb`` (or the configured index)."""
    return Components(settings_for(index, kb), top_k=top_k)


@app.command()
def ingest(
    paths: List[Path] = typer.Argument(..., help="Files or folders: .txt .md .html .pdf .docx .jsonl"),
    index: Optional[str] = IndexOption,
    kb: Optional[str] = KbOption,
    rebuild: bool = typer.Option(False, "--rebuild", help="Start the index from scratch (e.g. after changing model)."),
    chunk_size: Optional[int] = typer.Option(None, help="Characters per chunk (default $RAG_CHUNK_SIZE or 300)."),
    chunk_overlap: Optional[int] = typer.Option(None, help="Overlap between chunks (default 60)."),
) -> None:
    """Add or update articles in the index (unchanged files are skipped; an interrupted run resumes)."""
    from rag.index.chunking import ChunkingConfig
    from rag.index.ingest import ingest as run_ingest

    components = components_for(index, kb=kb)
    settings = components.settings
    names = ", ".join(map(str, paths))
    try:
        chunking = ChunkingConfig(
            chunk_size or settings.chunk_size, chunk_overlap if chunk_overlap is not None else settings.chunk_overlap
        )
        embedder = components.embedder()
        with progress_reporter(err) as progress:
            report = run_ingest(paths, settings.index, embedder, chunking, rebuild=rebuild, progress=progress)
    except RagError as exc:
        audit_write("ingest", settings, kb, "failed", names, failed=True)
        fail(exc)
        return
    failed = len(report.files_failed) + len(report.folders_unreadable)
    audit_write("ingest", settings, kb, ingest_counts(report), names, failed=bool(failed))
    print_problems(report)
    out.print(
        f"{report.files_seen} files: {len(report.documents_added)} documents added, "
        f"{len(report.documents_replaced)} replaced, {len(report.files_unchanged)} files unchanged, "
        f"{failed} failed; {report.chunks_embedded} chunks embedded, "
        f"{report.chunks_reused} reused; {report.chunks_total or '-'} chunks in {redact(settings.index)} "
        f"({report.seconds:.1f} s)",
        highlight=False,
    )
    if failed:
        raise typer.Exit(2)


def ingest_counts(report: IngestReport) -> str:
    """What an ingest or a sync changed, for the audit log (no file names)."""
    return (
        f"{len(report.documents_added)} added, {len(report.documents_replaced)} replaced, "
        f"{len(report.documents_removed)} removed, {len(report.files_failed) + len(report.folders_unreadable)} failed"
    )


@app.command()
def sync(
    folder: Path = typer.Argument(..., help="The folder the index should match (its subfolders become tags)."),
    index: Optional[str] = IndexOption,
    kb: Optional[str] = KbOption,
    watch: bool = typer.Option(False, "--watch", help="Keep running: sync again whenever the folder changes (Ctrl-C stops)."),
    interval: float = typer.Option(2.0, "--interval", min=0.2, help="With --watch: seconds between looks at the folder."),
    allow_mass_removal: bool = typer.Option(
        False,
        "--allow-mass-removal",
        help="Let a sync remove more than $RAG_SYNC_MAX_REMOVAL % (default 50) of the folder's documents: files deleted on purpose.",
    ),
) -> None:
    """Make the index match a folder: new and changed files in, deleted files out, unchanged ones untouched."""
    from rag.index.chunking import ChunkingConfig
    from rag.index.sync import summary
    from rag.index.sync import sync as run_sync
    from rag.index.sync import watch as watch_folder

    components = components_for(index, kb=kb)
    settings = components.settings
    max_removal = 100.0 if allow_mass_removal else settings.sync_max_removal

    def once() -> None:
        chunking = ChunkingConfig.from_settings(settings)
        try:
            with progress_reporter(err) as progress:
                report = run_sync(folder, settings.index, components.embedder(), chunking, progress, max_removal)
        except RagError:
            audit_write("sync", settings, kb, "failed", str(folder), failed=True)
            raise
        audit_write(
            "sync",
            settings,
            kb,
            ingest_counts(report),
            str(folder),
            failed=bool(report.files_failed or report.folders_unreadable),
        )
        print_problems(report)
        out.print(shown(summary(folder, report)), highlight=False)
        if (report.files_failed or report.folders_unreadable) and not watch:
            raise typer.Exit(2)

    try:
        if not watch:
            once()
            return
        out.print(f"watching {shown(folder)} every {interval:g} s (Ctrl-C stops)", highlight=False)
        watch_folder(
            folder,
            once,
            interval,
            on_error=lambda exc: err.print(f"[bold red]错误 / error:[/] {escape(redact(str(exc)))}", highlight=False),
        )
    except RagError as exc:
        fail(exc)
    except KeyboardInterrupt:
        out.print("stopped watching", highlight=False)


@app.command()
def search(
    query: str = typer.Argument(..., help='The question, e.g. "河南设立的人工智能产业基金规模是多少"'),
    k: int = typer.Option(5, "-k", "--top-k", min=1, max=100, help="How many chunks to show."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid (dense + BM25, RRF), dense or bm25."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
    index: Optional[str] = IndexOption,
    kb: Optional[List[str]] = KbsOption,
    date_from: Optional[str] = DateFromOption,
    date_to: Optional[str] = DateToOption,
    source: Optional[List[str]] = SourceOption,
    tag: Optional[List[str]] = TagOption,
) -> None:
    """Show the chunks that best match a question (filters apply inside the search)."""

    try:
        where = search_filter(date_from, date_to, source, tag)
        hits = searcher_for(index, kb).search(query, k=k, mode=mode, where=where)  # type: ignore[arg-type]
    except RagError as exc:
        fail(exc)
        return
    if as_json:
        sys.stdout.write(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2) + "\n")
        return
    if not hits:
        out.print("没有找到相关段落 (no matching passages)")
    for hit in hits:
        located = f"{hit.chunk.doc_id} {hit.chunk.page_label}".strip()
        out.print(f"[bold]{hit.rank}.[/] {hit.chunk.title}  [dim]{located}  score={hit.score:.4f}[/]", highlight=False)
        out.print(f"   {hit.chunk.text}\n", highlight=False)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question, in Chinese."),
    k: int = typer.Option(3, "-k", "--top-k", min=1, max=10, help="Passages shown to the model (3-5 keeps it faithful)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (answer, citations, passages, timings)."),
    index: Optional[str] = IndexOption,
    kb: Optional[List[str]] = KbsOption,
    date_from: Optional[str] = DateFromOption,
    date_to: Optional[str] = DateToOption,
    source: Optional[List[str]] = SourceOption,
    tag: Optional[List[str]] = TagOption,
) -> None:
    """Answer a question from the index with the local LLM, citing passages as \\[n]."""
    try:
        where = search_filter(date_from, date_to, source, tag)
        pipeline = pipeline_for(index, kb, k)
        answer = None
        for event in pipeline.stream(question, where=where):
            if event.kind == "text" and not as_json:  # verified sentences, as the check keeps them
                out.print(event.text, end="", highlight=False, markup=False)
            elif event.kind == "done":
                answer = event.answer
    except RagError as exc:
        fail(exc)
        return
    assert answer is not None
    if as_json:
        sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return
    out.print()
    if answer.refused:
        out.print("[dim](资料中没有找到答案 / the articles do not answer this)[/]")
    out.print("\n[bold]来源 Sources[/]")
    verified = {c.n: c for c in answer.citations if c.verified}
    for n, hit in enumerate(answer.passages, start=1):
        if hit.parts and (n == 1 or answer.passages[n - 2].parts != hit.parts):
            out.print(f"[bold]· {' / '.join(hit.parts)}[/]", highlight=False)
        mark = "[green]✓ cited[/]" if n in verified else "[dim]shown[/]"
        located = f"{hit.chunk.doc_id} {hit.chunk.page_label}".strip()
        out.print(f"[{n}] {hit.chunk.title} [dim]({located})[/] {mark}", highlight=False)
        if n in verified:
            out.print(f"    “{verified[n].quote}”", highlight=False)
    t = answer.timings
    out.print(
        f"[dim]retrieve {t.get('retrieve_ms', 0):.0f} ms, first token {t.get('first_token_ms', 0) / 1000:.1f} s, "
        f"total {t.get('total_ms', 0) / 1000:.1f} s[/]"
    )


@app.command()
def info(
    index: Optional[str] = IndexOption,
    kb: Optional[str] = KbOption,
    docs: bool = typer.Option(False, "--docs", help="List every document."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise an index: documents, chunks, model, sizes."""
    from rag.index.locations import disk_bytes
    from rag.index.sync import last_sync

    settings = settings_for(index, kb)
    try:
        store = Components(settings).open_store()
    except RagError as exc:
        fail(exc)
        return
    size = disk_bytes(settings.index)
    documents = store.documents()
    summary: dict[str, Any] = {
        "index": redact(settings.index),
        "documents": len(documents),
        "chunks": store.count(),
        "sources": len(store.sources()),
        "embedding_model": store.manifest.model_id,
        "dim": store.manifest.dim,
        "chunking": store.manifest.chunking.to_dict(),
        "size_bytes": size,
        "updated_at": store.manifest.updated_at,
        "versions": store.manifest.versions,
        "last_sync": last_sync(settings.index),
    }
    if as_json:
        payload = {**summary, "document_list": [d.__dict__ for d in documents]} if docs else summary
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        table.add_row(key, f"{value / 1e6:.2f} MB" if key == "size_bytes" and value is not None else str(value))
    out.print(table)
    if docs:
        listing = Table("doc_id", "title", "chunks", "added")
        for doc in documents:
            listing.add_row(doc.doc_id, doc.title, str(doc.n_chunks), doc.added_at)
        out.print(listing)


@app.command()
def remove(
    target: str = typer.Argument(..., help="A doc_id (see `rag info --docs`) or the path of an ingested file."),
    index: Optional[str] = IndexOption,
    kb: Optional[str] = KbOption,
) -> None:
    """Remove a document, or every document of an ingested file, from the index."""
    from rag.index.ingest import remove as run_remove

    settings = settings_for(index, kb)
    try:
        removed = run_remove(settings.index, target)
    except RagError as exc:
        audit_write("remove", settings, kb, "failed", target, failed=True)
        fail(exc)
        return
    audit_write("remove", settings, kb, f"{len(removed)} removed", ", ".join([target, *removed]))
    out.print(f"removed {len(removed)} document(s): {', '.join(removed)}", highlight=False)


@app.command()
def migrate(
    source: Path = typer.Option(..., "--from", help="The index directory to copy."),
    target: str = typer.Option(
        ..., "--to", help="Where to: milvus-lite:///abs/path/kb.db, milvus://host:19530/collection or a directory."
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="Replace what the target holds."),
) -> None:
    """Copy an index directory into another store (chunks, vectors, documents, sources, model): nothing is embedded again."""
    from rag.index.migrate import migrate as run_migrate

    try:
        report = run_migrate(source, target, rebuild=rebuild)
    except RagError as exc:
        fail(exc)
        return
    out.print(
        f"copied {report.documents} documents, {report.sources} sources and {report.chunks} chunks with their vectors "
        f"from {source} to {redact(target)} ({report.seconds:.1f} s); nothing was embedded",
        highlight=False,
    )


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", help="Address to bind; 0.0.0.0 exposes the chat and the API to the network (add users and keys)."
    ),
    port: int = typer.Option(7860, help="Port of the web chat, the API (/v1) and MCP (/mcp)."),
    index: Optional[str] = IndexOption,
    auth_file: Optional[Path] = typer.Option(
        None, "--auth-file", help="File of 'user:password' lines to require a login (or set RAG_AUTH=user:password)."
    ),
    feedback_file: Optional[Path] = typer.Option(
        None,
        "--feedback-file",
        help="An older version's feedback log (JSONL) to import into RAG_DB once (thumbs up/down go there).",
    ),
    no_api: bool = typer.Option(False, "--no-api", help="Serve the web chat alone: no /v1 API, no /mcp."),
) -> None:
    """Start the web chat (Gradio) with the knowledge-base page, and in the same process the
    OpenAI-compatible API at /v1 and MCP at /mcp: one model, one queue."""
    from rag.server import serve as run_server

    try:
        run_server(
            settings_for(index), host=host, port=port, auth_file=auth_file, feedback_file=feedback_file, with_api=not no_api
        )
    except RagError as exc:
        fail(exc)


@app.command("api")
def api(
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback needs --keys-file."),
    port: int = typer.Option(8000, help="Port of the API."),
    index: Optional[str] = IndexOption,
    keys_file: Optional[Path] = typer.Option(
        None, "--keys-file", help="File of API keys, one per line; clients send 'Authorization: Bearer KEY'."
    ),
) -> None:
    """Serve the knowledge base over an OpenAI-compatible HTTP API (and MCP at /mcp), without the web chat."""
    from rag.api.server import serve_api

    try:
        serve_api(settings_for(index), host=host, port=port, keys_file=keys_file)
    except RagError as exc:
        fail(exc)


@app.command("mcp")
def mcp(index: Optional[str] = IndexOption) -> None:
    """Serve the knowledge base as an MCP server on stdio (for Claude Desktop, Cherry Studio, IDE agents)."""
    from rag.api.server import serve_mcp_stdio

    try:
        serve_mcp_stdio(settings_for(index))
    except RagError as exc:
        fail(exc)


@eval_app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    questions: Path = typer.Option(Path("eval/questions.jsonl"), "--questions", "-q", help="Question set (JSONL)."),
    corpus: Optional[List[Path]] = typer.Option(
        None,
        "--corpus",
        help="Corpus to ingest into the eval's own index (<out>/index). Default for the regression set: corpus/.",
    ),
    index: Optional[str] = typer.Option(
        None, "--index", "-i", help="Index to score: a directory or a Milvus URI (with --corpus, synced to it first)."
    ),
    kb: Optional[str] = KbOption,
    out_dir: Path = typer.Option(Path("out/eval"), "--out", help="Folder for report.json, report.md, report.html, chart.png."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Compare with a stored report.json."),
    retrieval_only: bool = typer.Option(False, "--retrieval-only", help="Score retrieval only; no LLM."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N questions."),
    mode: str = typer.Option("hybrid", "--mode", help="Retrieval mode: hybrid, dense or bm25."),
    k: int = typer.Option(3, "-k", "--top-k", min=1, max=10, help="Passages shown to the model."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore the rows of an interrupted run in --out; score everything again."),
    gate_latency: bool = typer.Option(
        False, "--gate-latency", help="Also fail on slower p50 latencies (only meaningful on the baseline's machine)."
    ),
    allow_mismatch: bool = typer.Option(
        False, "--allow-mismatch", help="Compare with --baseline even when the configuration differs (the report notes it)."
    ),
    date_from: Optional[str] = DateFromOption,
    date_to: Optional[str] = DateToOption,
    source: Optional[List[str]] = SourceOption,
    tag: Optional[List[str]] = TagOption,
) -> None:
    """Run the regression set (or an external set) and write a report; --baseline fails on regressions (exit 3).

    The gate: answer_accuracy, refused_answerable, hit@1 and citation_precision regress when worse, with at least 2 more questions broken than fixed, and the one-sided exact McNemar test of their flips, Holm-corrected across the four at alpha 0.05, rejects chance. Other metrics are shown, not gated. The report states the margin: how many more broken questions would fail the run.

    Configuration (embedder and precision, LLM file sha256, generation settings, passage chars, top-k, mode, filters, question file, eval index fingerprint) must match the baseline's; it is checked before any answer is generated, and a mismatch exits 4 without comparing (--allow-mismatch compares anyway). Environment (CPU model, llama.cpp build, threads, package versions) is printed for information and never blocks: CI machines differ in CPU, and the few flips that causes are what the gate's test absorbs.

    Exit codes: 0 pass (or no --baseline), 1 error, 3 regression, 4 configuration mismatch.

    An interrupted run resumes: run the same command again and questions already scored are kept.

    Feedback becomes test cases: `rag eval candidates` gathers thumbs-down and refused questions to label, `rag eval validate` checks the labelled file.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rag.evaluation.command import run_cli_eval

    try:
        where = search_filter(date_from, date_to, source, tag)
        settings = Settings()
        code = run_cli_eval(
            settings=settings,
            index=kb_location(settings, index, kb),
            questions=questions,
            corpus=corpus or [],
            out_dir=out_dir,
            baseline=baseline,
            retrieval_only=retrieval_only,
            limit=limit,
            mode=mode,
            top_k=k,
            console=out,
            fresh=fresh,
            gate_latency=gate_latency,
            where=where,
            allow_mismatch=allow_mismatch,
        )
    except RagError as exc:
        fail(exc)
        return
    raise typer.Exit(code)


@eval_app.command("candidates")
def eval_candidates(
    out_file: Optional[Path] = typer.Option(
        None, "--out", help="JSONL file to add the new candidates to (its rows, labels included, are kept); default: stdout."
    ),
    since: Optional[str] = typer.Option(None, "--since", help="Only feedback and conversations from this date on (2025-09-01)."),
    feedback_file: Optional[Path] = typer.Option(
        None,
        "--feedback-file",
        help="An older version's feedback log (JSONL) to import into RAG_DB first (default: the one it wrote next to the index).",
    ),
    conversations_db: Optional[Path] = typer.Option(
        None, "--conversations-db", help="The saved conversations (default: those in $RAG_DB, an older file imported first)."
    ),
    index: Optional[str] = IndexOption,
) -> None:
    """Gather thumbs-down answers (with the comment) and refused questions as test cases to label (JSONL).

    One row per question, in the schema of eval/questions.jsonl: qid (c001, ...), question, answer_given, passages, comment, date, kind (thumbs_down or refused), and category, answers, evidence, source left empty for the evaluator. Label them, then check them with `rag eval validate FILE`.
    """
    from rag.accounts.db import Database
    from rag.evaluation.candidates import collect, jsonl
    from rag.index.filters import iso_date
    from rag.web.conversations import import_conversations
    from rag.web.feedback import import_feedback

    settings = settings_for(index)
    try:
        day = iso_date(since, "--since") if since else ""
        db = Database(settings.db_file)
        import_feedback(db, feedback_file or settings.feedback_file)
        if conversations_db is None:
            import_conversations(db, settings.conversations_file)
        collected = collect(settings, out_file, db, conversations_db or settings.db_file, day)
    except RagError as exc:
        fail(exc)
        return
    if out_file is None:
        sys.stdout.write(jsonl(collected.added))
    err.print(shown(collected.summary(out_file)), highlight=False, soft_wrap=True)


@eval_app.command("validate")
def eval_validate(
    file: Path = typer.Argument(..., help="Candidates labelled by an evaluator (from `rag eval candidates`)."),
    corpus: Optional[List[Path]] = typer.Option(
        None, "--corpus", help="Folders or .txt files holding the articles named in `source` (default: corpus/)."
    ),
    strict: bool = typer.Option(False, "--strict", help="Rows not labelled yet are errors too."),
) -> None:
    """Check labelled candidates: every gold answer and evidence quote a span of its source; exit 1 when a row is invalid.

    Rows not labelled yet (empty category and answers) are listed to label, not errors, unless --strict.
    """
    from rag.evaluation.command import REGRESSION_CORPUS
    from rag.evaluation.validate import candidate_lines, check_candidates

    try:
        report = check_candidates(file, corpus or [REGRESSION_CORPUS], strict)
    except RagError as exc:
        fail(exc)
        return
    for line in candidate_lines(file, report):
        out.print(shown(line), highlight=False)
    raise typer.Exit(1 if report.errors else 0)


@models_app.command("prepare")
def models_prepare(
    embedder: bool = typer.Option(True, help="Convert the bundled e5 embedding model."),
    llm: bool = typer.Option(True, help="Join and verify the bundled GGUF LLM."),
) -> None:
    """Convert/join the bundled model weights into the data dir ($RAG_DATA_DIR)."""
    settings = Settings()
    try:
        if embedder:
            from rag.models.e5_convert import ensure_bundled_e5

            out.print(f"embedding model: {ensure_bundled_e5(settings.data_dir)}", highlight=False)
        if llm:
            from rag.models.llm_weights import ensure_bundled_gguf

            out.print(f"LLM: {ensure_bundled_gguf(settings.data_dir)}", highlight=False)
    except RagError as exc:
        fail(exc)
