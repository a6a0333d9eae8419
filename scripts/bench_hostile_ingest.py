"""Ingest the hostile corpus (tests/hostile_files.py) with the hashing embedder and report time,
memory and what became of each file.

    python scripts/bench_hostile_ingest.py

Files are read as ``rag ingest`` reads them: in a worker process within the ``RAG_*`` parse limits
(rag.index.isolation). Peak memory is ``ru_maxrss`` of this process and of the largest worker; a
worker is forked from this process, so its figure includes the pages it shares with it. Writes
benchmarks/hostile-files.md and .json.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_common import (  # noqa: E402
    REPO_ROOT,
    command_line,
    load_average,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    timed,
    write_results,
)
from hostile_files import build_hostile_corpus  # noqa: E402

from rag.config import parse_limits_from_env  # noqa: E402
from rag.index.ingest import IngestReport, ingest  # noqa: E402
from rag.models.fakes import HashingEmbedder  # noqa: E402

PACKAGES = ["markdown-it-py", "pypdf", "pypdfium2", "python-docx", "pillow", "beautifulsoup4", "faiss-cpu"]


def outcomes(corpus: Path, names: list[str], report: IngestReport) -> list[dict[str, str]]:
    """Each file: ingested, refused (with the reason) or skipped (a link)."""
    failed = dict(report.files_failed)
    added = {Path(name).stem for name in report.documents_added}
    rows = []
    for name in names:
        path = corpus / name
        if str(path) in failed:
            rows.append({"file": ascii(name), "outcome": "refused", "reason": failed[str(path)]})
        else:
            rows.append(
                {
                    "file": ascii(name),
                    "outcome": "ingested" if Path(name).stem in added and not path.is_symlink() else "skipped",
                    "reason": "",
                }
            )
    return rows


def children_peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "benchmarks")
    args = parser.parse_args()
    machine, limits = machine_info(PACKAGES), parse_limits_from_env()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        with timed() as build:
            expected = build_hostile_corpus(corpus)
        log(f"{len(expected)} files built in {build.seconds:.1f} s; ingesting")
        loaded_at: list[float] = []
        start = time.perf_counter()

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "load":
                loaded_at.append(time.perf_counter() - start)

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with timed() as run:
            report = ingest(
                [corpus], Path(tmp) / "index", HashingEmbedder(model_id="fake:hashing"), progress=progress, limits=limits
            )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = outcomes(corpus, list(expected), report)
    command = command_line()
    result: dict[str, object] = {
        "command": command,
        "machine": machine,
        "limits": asdict(limits),
        "files": len(expected),
        "build_s": round(build.seconds, 2),
        "ingest_s": round(run.seconds, 2),
        "reading_s": round(loaded_at[-1], 2) if loaded_at else None,
        "parent_cpu_s": round(run.cpu_seconds, 2),
        "workers_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "parent_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_rss_mb": children_peak_mb(),
        "chunks": report.chunks_total,
        "warnings": report.warnings,
        "per_file": rows,
        "load_average_at_end": load_average(),
    }
    markdown = "\n\n".join(
        [
            "# Ingesting hostile files",
            f"The {len(expected)} files of `tests/hostile_files.py` (parser, decompression and render bombs, broken "
            "encodings, binary data, links, odd names, one normal article) ingested with the hashing embedder into a "
            f"FAISS index, each file read in a worker process within the default limits ({limits}).",
            markdown_table(
                ["ingest s", "reading s", "parent CPU s", "workers CPU s", "parent peak MB", "worker peak MB", "chunks"],
                [
                    [
                        result["ingest_s"],
                        result["reading_s"],
                        result["parent_cpu_s"],
                        result["workers_cpu_s"],
                        result["parent_peak_rss_mb"],
                        result["worker_peak_rss_mb"],
                        result["chunks"],
                    ]
                ],
            ),
            "Reading s: until the last file was read; the rest is chunking, embedding and the write. A worker's peak "
            "includes the pages it shares with the parent it was forked from.",
            markdown_table(["file", "outcome", "reason"], [[row["file"], row["outcome"], row["reason"]] for row in rows]),
            "Warnings: " + "; ".join(report.warnings),
            machine_markdown(machine, command),
        ]
    )
    json_path, md_path = write_results("hostile-files", result, markdown, args.out_dir)
    log(
        f"ingest {result['ingest_s']} s, parent {result['parent_peak_rss_mb']} MB, worker {result['worker_peak_rss_mb']} MB; wrote {md_path} and {json_path}"
    )


if __name__ == "__main__":
    main()
