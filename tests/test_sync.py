"""Folder sync (``rag sync``): new and changed files in, deleted files out, unchanged ones
untouched, resumable, recorded; the tags and dates it stores narrow retrieval. Both stores."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import COMPUTE_ARTICLE, FUND_ARTICLE, ROBOT_ARTICLE, CountingEmbedder, FailingEmbedder, Interrupted, index_state

from rag.components import Components
from rag.config import REPO_ROOT, Settings
from rag.errors import InputError, RagError
from rag.index.chunking import ChunkingConfig
from rag.index.filters import SearchFilter
from rag.index.ingest import ingest
from rag.index.locations import open_store
from rag.index.sync import last_sync, summary, sync, watch
from rag.qa.retriever import Retriever


@pytest.fixture
def folder(tmp_path) -> Path:
    """A shared folder: two subfolders (tags) and a file at the top."""
    root = tmp_path / "shared"
    (root / "财经").mkdir(parents=True)
    (root / "科技").mkdir()
    (root / "财经" / "henan.txt").write_text("2025年8月9日 星期六\n\n" + FUND_ARTICLE, encoding="utf-8")
    (root / "科技" / "compute.txt").write_text(COMPUTE_ARTICLE, encoding="utf-8")
    (root / "robots.md").write_text(ROBOT_ARTICLE, encoding="utf-8")
    return root


@pytest.fixture(params=["faiss", "milvus-lite"])
def location(request, tmp_path) -> str:
    return str(tmp_path / "index") if request.param == "faiss" else f"milvus-lite://{tmp_path}/kb.db"


def names(location: str) -> list[str]:
    return sorted(Path(source).name for source in open_store(location).sources())


def test_sync_adds_replaces_and_removes(folder, location, counting_embedder):
    first = sync(folder, location, counting_embedder)
    assert sorted(first.documents_added) == ["compute", "henan", "robots"] and first.documents_removed == []
    documents = {Path(d.source).name: d for d in open_store(location).documents()}
    assert (documents["henan.txt"].tags, documents["henan.txt"].date) == (["财经"], "2025-08-09")
    assert (documents["compute.txt"].tags, documents["robots.md"].tags) == (["科技"], [])

    (folder / "科技" / "compute.txt").write_text(COMPUTE_ARTICLE.replace("215.5", "300.1"), encoding="utf-8")
    (folder / "robots.md").unlink()
    embedded = counting_embedder.texts_embedded
    second = sync(folder, location, counting_embedder)
    assert (second.documents_replaced, second.documents_removed) == (["compute"], ["robots"])
    assert [Path(p).name for p in second.files_unchanged] == ["henan.txt"]
    assert 0 < counting_embedder.texts_embedded - embedded < 3  # only the changed chunk of compute.txt
    assert names(location) == ["compute.txt", "henan.txt"]
    retriever = Retriever(open_store(location), counting_embedder)
    assert "300.1" in retriever.search("总算力规模 EFLOPS", k=1, mode="bm25")[0].chunk.text
    assert all(hit.chunk.doc_id != "robots" for hit in retriever.search("人形机器人 市场规模", k=10))

    embedded = counting_embedder.texts_embedded
    third = sync(folder, location, counting_embedder)
    assert not third.changed and counting_embedder.texts_embedded == embedded
    assert third.chunks_total == open_store(location).count() > 0
    record = last_sync(location)
    assert record is not None and record["folder"] == str(folder.resolve())
    assert (record["added"], record["replaced"], record["removed"], record["unchanged"]) == (0, 0, 0, 2)
    assert summary(folder, third).startswith(f"synced {folder}: 0 added, 0 replaced, 0 removed, 2 files unchanged, 0 failed;")


def test_filters_narrow_retrieval_to_tags_dates_and_sources(folder, location, embedder):
    sync(folder, location, embedder)
    retriever = Retriever(open_store(location), embedder)
    question = "人工智能产业基金 算力规模 机器人"
    assert {hit.chunk.doc_id for hit in retriever.search(question, k=10)} == {"henan", "compute", "robots"}
    assert {hit.chunk.doc_id for hit in retriever.search(question, k=10, where=SearchFilter(tags=("科技",)))} == {"compute"}
    dated = retriever.search(question, k=10, where=SearchFilter.of(date_from="2025-08-01", date_to="2025-08-31"))
    assert {hit.chunk.doc_id for hit in dated} == {"henan"} and dated[0].chunk.date == "2025-08-09"
    robots = str((folder / "robots.md").resolve())
    assert {hit.chunk.doc_id for hit in retriever.search(question, k=1, where=SearchFilter(sources=(robots,)))} == {"robots"}


def test_sync_keeps_sources_outside_the_folder(folder, tmp_path, embedder):
    sibling = tmp_path / "shared-old"  # a name that starts like the folder's
    sibling.mkdir()
    (sibling / "old.txt").write_text(COMPUTE_ARTICLE.replace("算力网络", "旧算力网络"), encoding="utf-8")
    index = tmp_path / "index"
    ingest([sibling], index, embedder)
    sync(folder, index, embedder)
    (folder / "robots.md").unlink()
    report = sync(folder, index, embedder)
    assert report.documents_removed == ["robots"]
    assert names(str(index)) == ["compute.txt", "henan.txt", "old.txt"]


def test_a_missing_folder_changes_nothing(folder, tmp_path, embedder):
    index = tmp_path / "index"
    sync(folder, index, embedder)
    before = index_state(index)
    with pytest.raises(InputError, match="no such folder"):
        sync(tmp_path / "unmounted", index, embedder)
    assert index_state(index) == before


def test_an_empty_folder_removes_nothing(folder, tmp_path, embedder):
    """An unmounted share's empty mount point must not empty the index."""
    index = tmp_path / "index"
    sync(folder, index, embedder)
    before = index_state(index)
    mount_point = tmp_path / "share"
    (mount_point / "sub").mkdir(parents=True)
    (mount_point / "notes.bin").write_bytes(b"\x00\x01")
    with pytest.raises(InputError, match="no supported files"):
        sync(mount_point, index, embedder)
    assert index_state(index) == before


def test_an_interrupted_sync_resumes_without_redoing_its_work(folder, tmp_path):
    chunking = ChunkingConfig(50, 10)  # one sentence per chunk: the new file needs several batches
    index = tmp_path / "index"
    sync(folder, index, CountingEmbedder(), chunking)
    sentences = [f"第{n}号园区计划投资{n * 7}亿元建设智能工厂，预计带动就业{n * 100}人。" for n in range(1, 51)]
    (folder / "parks.txt").write_text("\n\n".join(sentences), encoding="utf-8")
    (folder / "robots.md").unlink()
    before = index_state(index)
    with pytest.raises(Interrupted):
        sync(folder, index, FailingEmbedder(ok_batches=1), chunking)
    assert index_state(index) == before  # nothing half-done: robots.md is still indexed
    assert "robots.md" in names(str(index))
    resumed = CountingEmbedder()
    report = sync(folder, index, resumed, chunking)
    assert report.documents_removed == ["robots"] and "parks" in report.documents_added
    assert 0 < resumed.texts_embedded <= 50 - 32  # the first batch of 32 came from the journal
    assert names(str(index)) == ["compute.txt", "henan.txt", "parks.txt"]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_watch_syncs_at_start_and_after_each_change_until_stopped(folder, tmp_path, embedder):
    index, reports, errors, stop = tmp_path / "index", [], [], threading.Event()
    failures = iter([RagError("another process is writing this index")])

    def run() -> None:
        if len(reports) == 1 and (failure := next(failures, None)):
            raise failure  # a failed round is reported and retried on the next poll
        reports.append(sync(folder, index, embedder))

    thread = threading.Thread(target=watch, args=(folder, run, 0.05, stop, errors.append))
    thread.start()
    try:
        wait_until(lambda: len(reports) == 1)
        time.sleep(0.3)
        assert len(reports) == 1  # nothing changed: no new round
        (folder / "科技" / "robots2.md").write_text(ROBOT_ARTICLE.replace("人形机器人", "服务机器人"), encoding="utf-8")
        wait_until(lambda: len(reports) == 2)
        assert reports[1].documents_added == ["robots2"] and [str(e) for e in errors] == ["another process is writing this index"]
        (folder / "robots.md").unlink()
        wait_until(lambda: len(reports) == 3)
        assert reports[2].documents_removed == ["robots"]
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.real
def test_a_tag_filter_narrows_real_dense_search(tmp_path):
    """The sample corpus synced from two tagged folders, searched with the bundled embedder."""
    shared = tmp_path / "shared"
    for tag, path in zip(("证券日报", "其他"), sorted((REPO_ROOT / "corpus").glob("*.txt"))):
        (shared / tag).mkdir(parents=True)
        shutil.copy(path, shared / tag / path.name)
    index = tmp_path / "index"
    embedder = Components(replace(Settings(), index_dir=index)).embedder()
    sync(shared, index, embedder)
    retriever = Retriever(open_store(str(index)), embedder)
    question = "八大算力枢纽节点总算力规模是多少"
    top = retriever.search(question, k=1, mode="dense")[0].chunk
    assert "215.5" in top.text and top.tags == ("其他",)
    narrowed = retriever.search(question, k=3, mode="dense", where=SearchFilter(tags=("证券日报",)))
    assert len(narrowed) == 3 and all(hit.chunk.tags == ("证券日报",) for hit in narrowed)


# --------------------------------------------------------------------------- a sync that cannot wipe a share


@contextmanager
def unreadable(*folders: Path) -> Iterator[None]:
    """Make ``folders`` unreadable to the walk, as ``chmod 000`` does for a user other than root
    (the tests may run as root, whom permission bits do not stop): listing them fails."""
    real_scandir, denied = os.scandir, {str(folder) for folder in folders}

    def scandir(path):
        if str(path) in denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "scandir", scandir)
        yield


def test_an_unreadable_subfolder_keeps_its_documents_and_is_named(folder, tmp_path, embedder):
    index = tmp_path / "index"
    sync(folder, index, embedder)
    (folder / "robots.md").unlink()
    with unreadable(folder / "财经"):
        report = sync(folder, index, embedder)
    assert report.documents_removed == ["robots"]  # the readable rest still syncs
    why = "cannot read this folder (Permission denied); documents indexed from it are kept"
    assert report.folders_unreadable == [(str(folder / "财经"), why)]
    assert names(str(index)) == ["compute.txt", "henan.txt"]
    assert ", 0 failed, 1 folders unreadable (their documents kept);" in summary(folder, report)
    record = last_sync(index)
    assert record is not None and record["unreadable"] == 1
    (folder / "财经" / "henan.txt").unlink()
    assert sync(folder, index, embedder).documents_removed == ["henan"]  # readable again: gone files go


def test_an_unreadable_folder_is_refused_and_changes_nothing(folder, tmp_path, embedder):
    index = tmp_path / "index"
    sync(folder, index, embedder)
    before = index_state(index)
    with (
        unreadable(folder),
        pytest.raises(
            InputError, match=r"shared: cannot read this folder \(Permission denied\); nothing synced, its documents are kept"
        ),
    ):
        sync(folder, index, embedder)
    assert index_state(index) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway (the test above simulates it)")
def test_a_chmod_000_subfolder_keeps_its_documents(folder, tmp_path, embedder):
    index = tmp_path / "index"
    sync(folder, index, embedder)
    (folder / "财经").chmod(0)
    try:
        report = sync(folder, index, embedder)
    finally:
        (folder / "财经").chmod(0o755)
    assert report.documents_removed == [] and [f for f, _ in report.folders_unreadable] == [str(folder / "财经")]


def test_ingest_names_an_unreadable_subfolder(folder, tmp_path, embedder):
    with unreadable(folder / "科技"):
        report = ingest([folder], tmp_path / "index", embedder)
    assert sorted(report.documents_added) == ["henan", "robots"]
    assert [f for f, _ in report.folders_unreadable] == [str(folder / "科技")]


def test_removing_most_of_the_folder_is_refused_unless_allowed(folder, tmp_path, embedder):
    """A nested share unmounted leaves its mount point empty: its documents look deleted."""
    index = tmp_path / "index"
    sync(folder, index, embedder)
    before = index_state(index)
    for mount_point in ("财经", "科技"):
        for path in (folder / mount_point).iterdir():
            path.unlink()
    with pytest.raises(InputError) as refused:
        sync(folder, index, embedder)
    message = str(refused.value)
    assert "would remove 2 of the 3 documents under it (67 %, 2 files gone), over the 50 % limit" in message
    assert "RAG_SYNC_MAX_REMOVAL" in message and "--allow-mass-removal" in message
    assert index_state(index) == before
    report = sync(folder, index, embedder, max_removal=100)
    assert sorted(report.documents_removed) == ["compute", "henan"] and names(str(index)) == ["robots.md"]


def test_the_limit_holds_for_small_folders_too(tmp_path, embedder):
    """Half of a folder may go; the only file of a one-file share (renamed here) may not."""
    share, index = tmp_path / "share", tmp_path / "index"
    share.mkdir()
    (share / "a.txt").write_text(FUND_ARTICLE, encoding="utf-8")
    (share / "b.txt").write_text(COMPUTE_ARTICLE, encoding="utf-8")
    sync(share, index, embedder)
    (share / "b.txt").unlink()
    assert sync(share, index, embedder).documents_removed == ["b"]  # 1 of 2: 50 %, not over
    (share / "a.txt").rename(share / "c.txt")
    with pytest.raises(InputError, match="would remove 1 of the 1 documents under it"):
        sync(share, index, embedder)
    assert sync(share, index, embedder, max_removal=100).documents_removed == ["a"]


def test_watch_reports_a_refused_round_once_and_goes_on(folder, tmp_path, embedder):
    index, reports, errors, stop = tmp_path / "index", [], [], threading.Event()
    # The remount below takes several steps; the debounce interval must outlast them even on a loaded
    # machine, or a half-remounted share (1 of 3 documents gone, under the limit) is synced in between.
    interval = 0.5
    thread = threading.Thread(
        target=watch, args=(folder, lambda: reports.append(sync(folder, index, embedder)), interval, stop, errors.append)
    )
    thread.start()
    try:
        wait_until(lambda: len(reports) == 1)
        moved = tmp_path / "moved"
        moved.mkdir()
        for name in ("财经", "科技"):
            (folder / name).rename(moved / name)
            (folder / name).mkdir()  # the mount points stay, empty
        wait_until(lambda: len(errors) == 1)
        time.sleep(4 * interval)  # polled again and again: refused each time, reported once
        assert len(errors) == 1 and "would remove 2 of the 3 documents" in str(errors[0]) and thread.is_alive()
        for name in ("财经", "科技"):
            (folder / name).rmdir()
            (moved / name).rename(folder / name)  # mounted again
        (folder / "robots2.md").write_text(ROBOT_ARTICLE.replace("人形机器人", "服务机器人"), encoding="utf-8")
        wait_until(lambda: len(reports) == 2)
        assert (reports[1].documents_added, reports[1].documents_removed) == (["robots2"], [])
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive() and names(str(index)) == ["compute.txt", "henan.txt", "robots.md", "robots2.md"]


def test_links_are_not_followed_out_of_the_folder(folder, tmp_path, embedder):
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text(ROBOT_ARTICLE.replace("人形机器人", "机密文件"), encoding="utf-8")
    (folder / "leak.txt").symlink_to(outside / "secret.txt")
    (folder / "private").symlink_to(outside, target_is_directory=True)
    (folder / "again.md").symlink_to(folder / "robots.md")  # inside: robots.md is read where it lies
    index = tmp_path / "index"
    report = sync(folder, index, embedder)
    assert sorted(report.documents_added) == ["compute", "henan", "robots"]
    assert all(Path(source).is_relative_to(folder.resolve()) for source in open_store(str(index)).sources())
    assert report.warnings == [
        f"skipped the link {folder / 'leak.txt'} -> {outside.resolve() / 'secret.txt'}: it points outside {folder}",
        f"skipped the link {folder / 'private'} -> {outside.resolve()}: it points outside {folder}",
    ]


def test_a_link_loop_does_not_hang_the_walk(folder, tmp_path, embedder):
    (folder / "科技" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "a.txt").symlink_to(folder / "b.txt")
    (folder / "b.txt").symlink_to(folder / "a.txt")
    report = sync(folder, tmp_path / "index", embedder)
    assert sorted(report.documents_added) == ["compute", "henan", "robots"] and report.warnings == []


def test_a_folder_named_through_a_link_is_synced(folder, tmp_path, embedder):
    """The operator's own link to the share (``~/shared -> /mnt/nas``) is followed."""
    (tmp_path / "mnt").symlink_to(folder, target_is_directory=True)
    report = sync(tmp_path / "mnt", tmp_path / "index", embedder)
    assert sorted(report.documents_added) == ["compute", "henan", "robots"] and report.warnings == []
