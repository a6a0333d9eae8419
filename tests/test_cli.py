"""The ``rag`` command line, in-process, with the fake embedder (``RAG_EMBED_MODEL=fake:hashing``)."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
from conftest import FAKE_MODEL_ID, index_state
from typer.testing import CliRunner

from rag.cli import app
from rag.errors import RagError
from rag.qa.prompts import REFUSAL

runner = CliRunner()


def flat(text: str) -> str:
    """Output without whitespace, so console line wrapping cannot break a match."""
    return re.sub(r"\s+", "", text)


def run(*args: str, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture
def cli_index(corpus_dir, index_dir) -> Path:
    result = run("ingest", corpus_dir, "--index", index_dir)
    assert result.exit_code == 0, result.output
    return index_dir


@pytest.mark.parametrize(
    "command",
    [[], ["ingest"], ["sync"], ["search"], ["ask"], ["info"], ["remove"], ["serve"], ["eval"], ["models"], ["models", "prepare"]],
    ids=lambda c: " ".join(c) or "rag",
)
def test_help_works_for_every_command(command):
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_top_level_help_lists_the_commands():
    output = run("--help").output
    for name in ("ingest", "search", "ask", "info", "remove", "serve", "eval", "models"):
        assert name in output


def test_ingest_prints_a_summary_and_skips_unchanged_files(corpus_dir, index_dir):
    result = run("ingest", corpus_dir, "--index", index_dir)
    assert result.exit_code == 0, result.output
    assert re.search(r"3 files: 3 documents added, 0 replaced, 0 files unchanged, 0 failed; (\d+) chunks embedded", result.stdout)
    again = run("ingest", corpus_dir, "--index", index_dir)
    assert again.exit_code == 0
    assert "3 files unchanged" in again.stdout and "0 chunks embedded" in again.stdout


def test_ingest_exits_2_when_a_file_failed(corpus_dir, index_dir):
    (corpus_dir / "broken.pdf").write_bytes(b"garbage, not a PDF" * 50)
    result = run("ingest", corpus_dir, "--index", index_dir)
    assert result.exit_code == 2, result.output
    assert "3 documents added" in result.stdout and "1 failed" in result.stdout
    assert "skipped" in result.stderr and "broken.pdf" in result.stderr
    assert json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))["n_chunks"] > 0


def test_ingest_of_a_missing_path_fails_cleanly(tmp_path, cli_index):
    before = index_state(cli_index)
    result = run("ingest", tmp_path / "nope.txt", "--index", cli_index)
    assert result.exit_code == 2
    assert "nosuchfileorfolder" in flat(result.stderr) and "1 failed" in result.stdout
    assert index_state(cli_index) == before


def test_ingest_rejects_bad_chunk_settings(corpus_dir, index_dir):
    result = run("ingest", corpus_dir, "--index", index_dir, "--chunk-size", "100", "--chunk-overlap", "100")
    assert result.exit_code == 1
    assert "chunksizemustbeatleast50" in flat(result.stderr)
    assert not (index_dir / "manifest.json").exists()


def test_ingest_uses_rag_index_when_no_option_is_given(corpus_dir, tmp_path):
    result = run("ingest", corpus_dir)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "default-index" / "manifest.json").is_file()


def test_search_json_schema_and_top_hit(cli_index):
    result = run("search", "河南设立的人工智能产业基金规模是多少", "--json", "-k", "3", "--index", cli_index)
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3
    for hit in hits:
        assert set(hit) == {"rank", "chunk_id", "doc_id", "title", "source", "date", "tags", "page", "text", "score"}
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert "30亿元" in hits[0]["text"] and hits[0]["doc_id"] == "henan"


def test_search_table_output(cli_index):
    result = run("search", "算力枢纽", "--mode", "bm25", "--index", cli_index)
    assert result.exit_code == 0, result.output
    assert "1." in result.stdout and "215.5 EFLOPS" in result.stdout


def test_search_without_an_index_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    result = run("search", "基金", "--index", empty)
    assert result.exit_code == 1
    assert "noindexat" in flat(result.stderr) and "ragingest" in flat(result.stderr)
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["   "], "thequestionisempty"),
        (["问" * 2001], "thelimitis2000"),
        (["基金", "--mode", "fuzzy"], "unknownsearchmode'fuzzy'"),
    ],
    ids=["empty", "too-long", "bad-mode"],
)
def test_search_input_errors_exit_1(cli_index, args, message):
    result = run("search", *args, "--index", cli_index)
    assert result.exit_code == 1
    assert message in flat(result.stderr)


def test_search_with_another_model_names_both(cli_index):
    result = run("search", "基金", "--index", cli_index, env={"RAG_EMBED_MODEL": "fake:hashing-v2"})
    assert result.exit_code == 1
    message = flat(result.stderr)
    assert f"'{FAKE_MODEL_ID}'" in message and "'fake:hashing-v2'" in message


def test_info_json(cli_index):
    result = run("info", "--json", "--index", cli_index)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["documents"] == 3 and summary["sources"] == 3 and summary["chunks"] >= 3
    assert summary["embedding_model"] == FAKE_MODEL_ID and summary["dim"] == 256
    assert summary["chunking"]["chunk_size"] == 300 and summary["size_bytes"] > 0
    assert "document_list" not in summary
    with_docs = json.loads(run("info", "--json", "--docs", "--index", cli_index).stdout)
    assert sorted(d["doc_id"] for d in with_docs["document_list"]) == ["compute", "henan", "robots"]
    assert all(len(d["content_hash"]) == 64 for d in with_docs["document_list"])


def test_info_table_and_missing_index(cli_index, tmp_path):
    result = run("info", "--docs", "--index", cli_index)
    assert result.exit_code == 0 and FAKE_MODEL_ID in result.stdout and "河南设立人工智能产业基金" in result.stdout
    missing = run("info", "--index", tmp_path / "none")
    assert missing.exit_code == 1 and "noindexat" in flat(missing.stderr)


def test_info_on_a_corrupted_manifest_exits_1(cli_index):
    (cli_index / "manifest.json").write_text("{", encoding="utf-8")
    result = run("info", "--index", cli_index)
    assert result.exit_code == 1 and "unreadable" in result.stderr


def test_remove_by_doc_id_and_by_path(cli_index, corpus_dir):
    result = run("remove", "henan", "--index", cli_index)
    assert result.exit_code == 0, result.output
    assert "removed 1 document(s): henan" in result.stdout
    result = run("remove", corpus_dir / "robots.md", "--index", cli_index)
    assert "removed 1 document(s): robots" in result.stdout
    summary = json.loads(run("info", "--json", "--docs", "--index", cli_index).stdout)
    assert [d["doc_id"] for d in summary["document_list"]] == ["compute"]
    hits = json.loads(run("search", "河南 30亿元", "--json", "--mode", "bm25", "--index", cli_index).stdout)
    assert not any("30亿元" in h["text"] for h in hits)


def test_remove_unknown_target_exits_1(cli_index):
    before = index_state(cli_index)
    result = run("remove", "nope", "--index", cli_index)
    assert result.exit_code == 1 and "nodocumentorsource'nope'" in flat(result.stderr)
    assert index_state(cli_index) == before


def test_fast_tier_settings_point_at_throwaway_dirs(session_data_dir, tmp_path):
    from rag.config import Settings

    settings = Settings()
    assert settings.data_dir == session_data_dir and settings.embed_model == FAKE_MODEL_ID
    assert settings.index_dir == tmp_path / "default-index"


def test_ask_prints_only_the_verified_answer_of_a_retry(cli_index, monkeypatch):
    replies = [REFUSAL, "河南设立了总规模30亿元的人工智能产业基金[1]。"]
    monkeypatch.setenv("RAG_LLM_BACKEND", "fake:scripted")
    monkeypatch.setenv("RAG_LLM_MODEL", json.dumps(replies, ensure_ascii=False))
    result = run("ask", "河南设立的人工智能产业基金规模是多少？", "--index", cli_index)
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert REFUSAL not in text and text.startswith("河南设立了总规模30亿元的人工智能产业基金[1]。")
    payload = json.loads(run("ask", "河南设立的人工智能产业基金规模是多少？", "--index", cli_index, "--json").output)
    assert not payload["refused"] and payload["timings"]["attempts"] == 2


# --------------------------------------------------------------------------- sync and filters


@pytest.fixture
def tagged_folder(corpus_dir) -> Path:
    """The corpus with compute.txt moved into a subfolder (its tag) and henan.txt dated by a page header."""
    (corpus_dir / "科技").mkdir()
    (corpus_dir / "compute.txt").rename(corpus_dir / "科技" / "compute.txt")
    henan = corpus_dir / "henan.txt"
    henan.write_text("2025年8月9日 星期六\n\n" + henan.read_text(encoding="utf-8"), encoding="utf-8")
    return corpus_dir


def test_sync_prints_one_summary_line_and_removes_deleted_files(tagged_folder, index_dir):
    first = run("sync", tagged_folder, "--index", index_dir)
    assert first.exit_code == 0, first.output
    assert flat(f"synced {tagged_folder}: 3 added, 0 replaced, 0 removed, 0 files unchanged, 0 failed;") in flat(first.stdout)
    (tagged_folder / "robots.md").unlink()
    second = run("sync", tagged_folder, "--index", index_dir)
    assert second.exit_code == 0 and flat("0 added, 0 replaced, 1 removed, 2 files unchanged") in flat(second.stdout)
    assert "robots" not in run("info", "--docs", "--index", index_dir).stdout
    missing = run("sync", tagged_folder / "nope", "--index", index_dir)
    assert missing.exit_code == 1 and "nosuchfolder" in flat(missing.output)
    last = json.loads(run("info", "--json", "--index", index_dir).stdout)["last_sync"]
    assert last["folder"] == str(tagged_folder.resolve()) and (last["added"], last["removed"]) == (0, 1)


def test_sync_watch_stops_cleanly_on_ctrl_c(tagged_folder, index_dir, monkeypatch):
    def interrupted_watch(folder, run_once, interval, on_error):
        run_once()
        raise KeyboardInterrupt

    monkeypatch.setattr("rag.index.sync.watch", interrupted_watch)
    result = run("sync", tagged_folder, "--watch", "--interval", "0.5", "--index", index_dir)
    assert result.exit_code == 0, result.output
    assert "3added" in flat(result.stdout) and "stoppedwatching" in flat(result.stdout)


def test_sync_refuses_a_mass_removal_unless_allowed(tagged_folder, index_dir, monkeypatch):
    assert run("sync", tagged_folder, "--index", index_dir).exit_code == 0
    before = index_state(index_dir)
    (tagged_folder / "robots.md").unlink()
    (tagged_folder / "henan.txt").unlink()
    refused = run("sync", tagged_folder, "--index", index_dir)
    assert refused.exit_code == 1 and index_state(index_dir) == before
    assert flat("would remove 2 of the 3 documents under it (67 %, 2 files gone), over the 50 % limit") in flat(refused.stderr)
    assert "RAG_SYNC_MAX_REMOVAL" in refused.stderr and "--allow-mass-removal" in refused.stderr
    monkeypatch.setenv("RAG_SYNC_MAX_REMOVAL", "60")
    assert flat("over the 60 % limit") in flat(run("sync", tagged_folder, "--index", index_dir).stderr)
    allowed = run("sync", tagged_folder, "--allow-mass-removal", "--index", index_dir)
    assert allowed.exit_code == 0 and flat("0 added, 0 replaced, 2 removed, 1 files unchanged") in flat(allowed.stdout)


def test_sync_watch_reports_a_refused_round_and_takes_the_flag(tagged_folder, index_dir, monkeypatch):
    assert run("sync", tagged_folder, "--index", index_dir).exit_code == 0
    (tagged_folder / "robots.md").unlink()
    (tagged_folder / "henan.txt").unlink()

    def one_round(folder, run_once, interval, on_error):
        try:
            run_once()
        except RagError as exc:
            on_error(exc)
        raise KeyboardInterrupt

    monkeypatch.setattr("rag.index.sync.watch", one_round)
    refused = run("sync", tagged_folder, "--watch", "--index", index_dir)
    assert refused.exit_code == 0 and flat("would remove 2 of the 3 documents") in flat(refused.stderr)
    allowed = run("sync", tagged_folder, "--watch", "--allow-mass-removal", "--index", index_dir)
    assert allowed.exit_code == 0 and "2removed" in flat(allowed.stdout)


def test_ingest_and_sync_name_an_unreadable_subfolder(tagged_folder, index_dir, monkeypatch):
    """Root reads a chmod 000 folder anyway: listing it fails here as it would for the service's user."""
    real_scandir, denied = os.scandir, str(tagged_folder / "科技")

    def scandir(path):
        if str(path) == denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    assert run("sync", tagged_folder, "--index", index_dir).exit_code == 0
    monkeypatch.setattr(os, "scandir", scandir)
    line = f"skipped {denied}: cannot read this folder (Permission denied); documents indexed from it are kept"
    for command in ("ingest", "sync"):
        result = run(command, tagged_folder, "--index", index_dir)
        assert result.exit_code == 2 and flat(line) in flat(result.stderr), result.output
    assert flat("0 removed, 2 files unchanged, 0 failed, 1 folders unreadable (their documents kept)") in flat(result.stdout)
    assert "compute" in run("info", "--docs", "--index", index_dir).stdout


def test_sync_report_lines_show_odd_file_names_and_links_out_literally(tagged_folder, index_dir, tmp_path):
    (tagged_folder / "坏\u202e[bold]fdp.pdf").write_bytes(b"garbage, not a PDF" * 50)
    (tmp_path / "secret.txt").write_text("机密", encoding="utf-8")
    (tagged_folder / "leak.txt").symlink_to(tmp_path / "secret.txt")
    result = run("sync", tagged_folder, "--index", index_dir)
    assert result.exit_code == 2, result.output
    assert "\u202e" not in result.stderr and flat("坏\\u202e[bold]fdp.pdf") in flat(result.stderr)
    link = f"warning skipped the link {tagged_folder / 'leak.txt'} -> {tmp_path.resolve() / 'secret.txt'}"
    assert flat(link) in flat(result.stderr)
    assert "机密" not in run("search", "机密", "--index", index_dir).stdout
    odd = run("sync", tmp_path / "x[" / "bold]", "--index", index_dir)  # an error naming it: markup, literally
    assert odd.exit_code == 1 and flat("x[/bold]: no such folder") in flat(odd.stderr)


def test_search_filters_narrow_the_hits(tagged_folder, index_dir):
    assert run("sync", tagged_folder, "--index", index_dir).exit_code == 0
    question = "人工智能产业基金 算力规模 机器人"

    def doc_ids(*options: str) -> set[str]:
        result = run("search", question, "--json", "-k", "10", "--index", index_dir, *options)
        assert result.exit_code == 0, result.output
        return {hit["doc_id"] for hit in json.loads(result.stdout)}

    assert doc_ids() == {"henan", "compute", "robots"}
    assert doc_ids("--tag", "科技") == {"compute"}
    assert doc_ids("--date-from", "2025-08-01", "--date-to", "2025-08-31") == {"henan"}
    assert doc_ids("--source", str(tagged_folder / "robots.md"), "--source", str(tagged_folder / "henan.txt")) == {"robots", "henan"}
    bad = run("search", question, "--date-from", "last week", "--index", index_dir)
    assert bad.exit_code == 1 and flat("date_from 'last week' is not a date like 2025-09-01") in flat(bad.output)


def test_ask_answers_from_the_filtered_passages_only(tagged_folder, index_dir, monkeypatch):
    monkeypatch.setenv("RAG_LLM_BACKEND", "fake:scripted")
    assert run("sync", tagged_folder, "--index", index_dir).exit_code == 0
    result = run("ask", "人工智能产业基金的规模是多少？", "--json", "--tag", "科技", "--index", index_dir)
    assert result.exit_code == 0, result.output
    passages = json.loads(result.stdout)["passages"]
    assert passages and {p["doc_id"] for p in passages} == {"compute"}
