"""Progress without a terminal: plain periodic lines a log file shows (and no carriage returns)."""

from __future__ import annotations

import io
import subprocess
import sys

from conftest import SAMPLE_CORPUS

from rag.progress import PlainProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_prints_a_line_every_interval_and_at_the_end():
    out, clock = io.StringIO(), Clock()
    progress = PlainProgress(out, every_s=10, clock=clock)
    for done in range(0, 101):
        clock.now = done * 0.5  # 2 items a second
        progress("embed", done, 100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5  # at 10, 20, 30 and 40 s, and at the end (50 s)
    assert lines[0].startswith("向量化 embedding: 20/100 (2.0/s, 10 s elapsed, about 40 s left)")
    assert lines[-1] == "向量化 embedding: 100/100 (2.0/s, 50 s elapsed, done)"
    assert "\r" not in out.getvalue()


def test_rag_ingest_with_stderr_in_a_file_logs_progress_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_PROGRESS_EVERY_S", "0")
    log = tmp_path / "ingest.log"
    with open(log, "w", encoding="utf-8") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "rag", "ingest", str(SAMPLE_CORPUS), "--index", str(tmp_path / "index")],
            stdout=subprocess.PIPE, stderr=handle, text=True, timeout=300,
        )  # fmt: skip
    assert done.returncode == 0, log.read_text(encoding="utf-8")
    lines = log.read_text(encoding="utf-8").splitlines()
    embedding = [line for line in lines if line.startswith("向量化 embedding: ")]
    assert len(embedding) >= 2 and embedding[-1].endswith("done)")
    assert any(line.startswith("写入索引 writing: 1/1") for line in lines)
    assert "\r" not in log.read_text(encoding="utf-8") and "━" not in log.read_text(encoding="utf-8")
