"""Uploads into the knowledge base: the write lock, one read per file, names and file modes.

Real files, the real FAISS index and the hashing embedder; another writer is a second open of
the index's lock file (``flock`` locks belong to the open file, so this is what a CLI ingest does).
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import FAKE_MODEL_ID, FailingEmbedder, Interrupted

import rag.index.ingest
import rag.index.isolation
import rag.knowledge_base
from rag.components import Components
from rag.config import Settings
from rag.errors import IndexStoreError, InputError
from rag.index.locations import open_store, write_lock
from rag.index.uploads import safe_upload_name, uploads_dir
from rag.knowledge_base import KnowledgeBase
from rag.models.embedders import Embedder
from rag.models.fakes import HashingEmbedder, ScriptedGenerator

OLD = "青岚市设立未来产业基金\n\n青岚市人民政府近日宣布，设立总规模77亿元的青岚未来产业基金，重点支持人工智能企业。\n"
NEW = "青岚市设立未来产业基金\n\n青岚市人民政府近日宣布，设立总规模88亿元的青岚未来产业基金，重点支持新材料企业。\n"
NAME = "青岚市未来产业基金.txt"
DOC_ID = "青岚市未来产业基金"


def knowledge_base(tmp_path: Path, embedder: Embedder | None = None) -> KnowledgeBase:
    settings = replace(Settings(), index_dir=tmp_path / "index" / "main", embed_model=FAKE_MODEL_ID)
    return KnowledgeBase(Components(settings, embedder or HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator()))


def upload(kb: KnowledgeBase, tmp_path: Path, text: str, name: str = NAME) -> rag.index.ingest.IngestReport:
    """Upload ``text`` as the browser would: a temporary file, checked, then added."""
    temp = tmp_path / f"browser-temp-{len(list(tmp_path.glob('browser-temp-*')))}" / name
    temp.parent.mkdir()
    temp.write_text(text, encoding="utf-8")
    return kb.add([kb.check(temp, name)])


def indexed_text(kb: KnowledgeBase) -> str:
    """What the index serves for the uploaded document."""
    return "".join(chunk.text for chunk in open_store(kb.settings.index).document_chunks(DOC_ID))


def uploads_folder(kb: KnowledgeBase) -> list[str]:
    return sorted(path.name for path in uploads_dir(kb.settings.index_dir).iterdir())


# --------------------------------------------------------------------------- the write lock


def test_an_upload_while_another_writer_holds_the_lock_changes_nothing(tmp_path):
    kb = knowledge_base(tmp_path)
    upload(kb, tmp_path, OLD)
    stored = uploads_dir(kb.settings.index_dir) / NAME
    with write_lock(kb.settings.index), pytest.raises(IndexStoreError, match="another process"):
        upload(kb, tmp_path, NEW)
    assert stored.read_text(encoding="utf-8") == OLD
    assert "77亿元" in indexed_text(kb) and "88亿元" not in indexed_text(kb)
    assert uploads_folder(kb) == [NAME]  # the staged copy is gone

    report = upload(kb, tmp_path, NEW)
    assert report.documents_replaced == [DOC_ID]
    assert stored.read_text(encoding="utf-8") == NEW
    assert "88亿元" in indexed_text(kb) and "77亿元" not in indexed_text(kb)
    assert uploads_folder(kb) == [NAME]


def test_a_failed_ingest_puts_the_older_file_back(tmp_path):
    kb = knowledge_base(tmp_path, FailingEmbedder(ok_batches=1))
    upload(kb, tmp_path, OLD)
    stored = uploads_dir(kb.settings.index_dir) / NAME
    with pytest.raises(Interrupted):
        upload(kb, tmp_path, NEW)
    assert stored.read_text(encoding="utf-8") == OLD
    assert "77亿元" in indexed_text(kb) and "88亿元" not in indexed_text(kb)
    assert uploads_folder(kb) == [NAME]


def test_a_failed_first_upload_leaves_no_file(tmp_path):
    kb = knowledge_base(tmp_path, FailingEmbedder(ok_batches=0))
    with pytest.raises(Interrupted):
        upload(kb, tmp_path, OLD)
    assert uploads_folder(kb) == []


# --------------------------------------------------------------------------- one read per upload


def test_each_upload_is_read_once_and_indexed_under_its_stored_name(tmp_path, monkeypatch):
    calls = tmp_path / "reads.log"  # files are read in a worker process (rag.index.isolation): count on disk
    real_load = rag.index.isolation.load_file

    def counting_load(path, progress=None, warn=None, limits=None):
        with calls.open("a", encoding="utf-8") as log:
            log.write(f"{path}\n")
        if warn:
            warn(f"{path.name}: a warning of the loader")
        return real_load(path, progress, warn, limits)

    monkeypatch.setattr(rag.index.isolation, "load_file", counting_load)
    kb = knowledge_base(tmp_path)
    report = upload(kb, tmp_path, OLD, name=f" {NAME}")  # a name the safe name differs from
    assert len(calls.read_text(encoding="utf-8").splitlines()) == 1
    assert report.warnings == [f"{NAME}: a warning of the loader"]  # reported once, under the stored name
    stored = uploads_dir(kb.settings.index_dir) / NAME
    (record,) = kb.documents()
    assert (record.doc_id, record.title, record.source) == (DOC_ID, "青岚市设立未来产业基金", str(stored.resolve()))
    assert open_store(kb.settings.index).sources()[str(stored.resolve())].doc_ids == [DOC_ID]


def test_an_unreadable_upload_is_refused_by_the_check(tmp_path):
    kb = knowledge_base(tmp_path)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"not a pdf at all")
    with pytest.raises(InputError, match="PDF"):
        kb.check(broken, broken.name)


# --------------------------------------------------------------------------- names and modes


@pytest.mark.parametrize(
    "char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"]
)
def test_names_with_bidi_controls_are_refused(char):
    with pytest.raises(InputError, match=f"U\\+{ord(char):04X}.*双向控制符") as refused:
        safe_upload_name(f"报告{char}/txt.exe.txt")
    assert char not in str(refused.value)  # the message does not carry the name


@pytest.mark.parametrize("char", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"])
def test_names_with_zero_width_characters_are_refused(char):
    with pytest.raises(InputError, match="零宽字符"):
        safe_upload_name(f"青岚{char}基金.txt")


def test_uploads_are_private_whatever_the_umask(tmp_path):
    kb = knowledge_base(tmp_path)
    folder = uploads_dir(kb.settings.index_dir)
    folder.mkdir(parents=True, mode=0o755)  # made by an older version
    old_umask = os.umask(0)
    try:
        upload(kb, tmp_path, OLD)
        upload(kb, tmp_path, NEW)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / NAME).stat().st_mode) == 0o600
