"""The knowledge-base operations the web page and the API share: list, upload, delete documents.

Uploads are checked (name, type, size, readable) before they touch the managed uploads folder
or the index, and what the check read is what gets indexed; a file is put in the uploads folder
only under the index's write lock, together with its ingest. A deleted document's uploaded file
goes once no other document uses it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag.components import Components
from rag.errors import RagError
from rag.index.chunking import ChunkingConfig
from rag.index.documents import Document
from rag.index.ingest import IngestReport, Preloaded, ingest, remove
from rag.index.isolation import load_isolated
from rag.index.limits import ParseLimits
from rag.index.store import DocumentRecord
from rag.index.uploads import check_upload, discard_upload, put_in_place, staged_uploads, uploads_dir
from rag.progress import ProgressCallback


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed :meth:`KnowledgeBase.check`: its safe name, its temporary file and
    what was read from it (indexed as it is: the file is read once)."""

    name: str
    path: Path
    read: Preloaded = field(repr=False)


class KnowledgeBase:
    """The documents of the configured index, as staff manage them."""

    def __init__(self, components: Components) -> None:
        self.components = components
        self.settings = components.settings
        self.uploads = uploads_dir(self.settings.index_dir)

    def documents(self) -> list[DocumentRecord]:
        """Every document (none while the index does not exist yet)."""
        if not self.components.store_exists():
            return []
        return self.components.open_store().documents()

    def check(self, path: Path, name: str) -> CheckedUpload:
        """The upload at ``path`` checked and read; :class:`InputError` if it must be refused.

        Unreadable files are refused here, before they touch the uploads folder or the index.
        """
        name = check_upload(path, name)
        warnings: list[str] = []
        documents = _read_as(path, name, warnings.append, self.settings.parse_limits)
        return CheckedUpload(name, path, Preloaded(documents, tuple(warnings)))

    def add(self, uploads: Iterable[CheckedUpload], progress: ProgressCallback | None = None) -> IngestReport:
        """Keep checked uploads in the uploads folder and index them (the same name twice: the last).

        Each file is staged beside its place and moved there only once the index's write lock is
        held; when the lock is busy or the ingest fails, the older file and the index stay as they were.
        """
        latest = list({upload.name: upload for upload in uploads}.values())
        with staged_uploads([(upload.path, upload.name) for upload in latest], self.uploads) as staged:
            read = {copy.target.resolve(): upload.read for copy, upload in zip(staged, latest, strict=True)}
            return ingest(
                [copy.target for copy in staged],
                self.settings.index,
                self.components.embedder(),
                self.chunking(),
                progress=progress,
                preloaded=read,
                under_lock=put_in_place(staged),
            )

    def chunking(self) -> ChunkingConfig:
        """The existing index's chunking (so uploads always fit it), else the settings'."""
        if self.components.store_exists():
            return self.components.open_store().manifest.chunking
        return ChunkingConfig.from_settings(self.settings)

    def delete(self, doc_id: str) -> DocumentRecord:
        """Remove one document, and its uploaded file once nothing else uses it; returns its record."""
        documents = {record.doc_id: record for record in self.documents()}
        if doc_id not in documents:
            raise RagError(f"知识库中没有编号为 {doc_id} 的文章（可能已被删除）。")
        remove(self.settings.index, doc_id)
        record = documents[doc_id]
        if record.source not in {other.source for other in self.documents()}:
            discard_upload(record.source, self.uploads)
        return record


def _read_as(path: Path, name: str, warn: Callable[[str], None], limits: ParseLimits) -> list[Document]:
    """The documents of ``path`` read under the ``name`` it is stored as (doc ids and titles come
    from it), in a worker process within ``limits`` (:mod:`rag.index.isolation`)."""
    if path.name == name:
        return load_isolated(path, warn=warn, limits=limits)
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
        named = Path(folder) / name
        shutil.copyfile(path, named)
        return load_isolated(named, warn=warn, limits=limits)
