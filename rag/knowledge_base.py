"""The knowledge-base operations the web page and the API share: list, upload, delete documents.

Uploads are checked (name, type, size, readable) before they touch the managed uploads folder
or the index; a deleted document's uploaded file goes once no other document uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rag.components import Components
from rag.errors import RagError
from rag.index.chunking import ChunkingConfig
from rag.index.documents import load_file
from rag.index.ingest import IngestReport, ingest, remove
from rag.index.store import DocumentRecord
from rag.index.uploads import check_upload, discard_upload, store_upload, uploads_dir
from rag.progress import ProgressCallback


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

    def check(self, path: Path, name: str) -> str:
        """The safe name of an upload at ``path``; :class:`InputError` if it must be refused.

        Unreadable files are refused here, before they touch the uploads folder or the index.
        """
        name = check_upload(path, name)
        load_file(path)
        return name

    def add(self, accepted: Mapping[str, Path], progress: ProgressCallback | None = None) -> IngestReport:
        """Keep checked uploads (``{safe name: temporary path}``) and index them."""
        stored = [store_upload(path, name, self.uploads) for name, path in accepted.items()]
        return ingest(stored, self.settings.index, self.components.embedder(), self.chunking(), progress=progress)

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
