"""The hostile corpus (tests/hostile_files.py) ingested into a real FAISS index beside a normal
article: bounded in time, every file taken in or refused with a reason naming it, the index intact."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import FAKE_MODEL_ID
from hostile_files import NORMAL_QUERY, build_hostile_corpus

from rag.index.faiss_store import FaissStore
from rag.index.ingest import IngestReport, ingest
from rag.index.limits import ParseLimits
from rag.models.fakes import HashingEmbedder
from rag.qa.retriever import Retriever

# The old readers took hours on this corpus (half an hour for the bracket bomb alone, and every
# one of 2,001 blank pages OCR'd); measured now: about 45 s on a shared 2-core machine, most of it
# the 1 MB Markdown bombs (pure-Python parsing) and the 10 MB line (jieba, embedding).
BOUND_S = 150
LIMITS = ParseLimits(timeout_s=30)  # the Markdown bombs parse in about 12 s of CPU; refused past 30 s


def _outcome(path: Path, report: IngestReport, sources: set[str]) -> tuple[str, str]:
    """What the ingest did with ``path``: ("ingest", ""), ("refuse", reason) or ("skip", "")."""
    reasons = [reason for failed, reason in report.files_failed if failed == str(path)]
    if reasons:
        return "refuse", reasons[0]
    return ("ingest", "") if str(path.resolve()) in sources and not path.is_symlink() else ("skip", "")


def test_the_hostile_corpus_is_ingested_within_bounds_and_leaves_the_index_intact(tmp_path):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    expected = build_hostile_corpus(corpus)
    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    started = time.monotonic()
    report = ingest([corpus], index, embedder, limits=LIMITS)
    assert time.monotonic() - started < BOUND_S

    store = FaissStore.load(index)  # opens: the commit went through whole
    sources = {record.source for record in store.documents()}
    for name, want in expected.items():
        outcome, reason = _outcome(corpus / name, report, sources)
        assert outcome == want.outcome or (want.outcome == "either" and outcome in ("ingest", "refuse")), (name, outcome, reason)
        if outcome == "refuse":
            assert reason.startswith(f"{name}: ") and want.reason in reason, (name, reason)
    assert sorted(failed for failed, _ in report.files_failed) == sorted(
        str(corpus / name) for name in expected if _outcome(corpus / name, report, sources)[0] == "refuse"
    )
    assert any("link-outside.txt" in warning for warning in report.warnings)
    assert any(warning.startswith("huge-page.pdf, page 1: ") for warning in report.warnings)

    hits = Retriever(index, embedder).search(NORMAL_QUERY, k=3)
    assert hits[0].chunk.doc_id == "normal" and "80亿元" in hits[0].chunk.text
