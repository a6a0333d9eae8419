"""Splitting documents into overlapping chunks on Chinese sentence boundaries."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.errors import InputError
from rag.index.documents import Document
from rag.index.tables import TableHeaders

if TYPE_CHECKING:
    from rag.config import Settings

# Regular expressions: paragraphs first, then sentence ends, then clause marks; "" only for runs
# with no punctuation. A half-width comma between a digit and three digits (74,310.5) is a
# thousands separator, not a clause mark.
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "!", r"\?", ";", "，", r"(?<!\d),|,(?!\d{3})", "、", " ", ""]
CHUNKER_VERSION = 2


MIN_CHUNK_SIZE = 50


@dataclass(frozen=True)
class ChunkingConfig:
    """Recorded in the index manifest; an index refuses chunks made with other settings.

    Invalid values (a chunk under 50 characters, an overlap not smaller than the chunk) are an
    :class:`InputError`, wherever they come from: an option, ``RAG_CHUNK_*`` or a manifest.
    """

    chunk_size: int = 300
    chunk_overlap: int = 60
    version: int = CHUNKER_VERSION

    def __post_init__(self) -> None:
        if self.chunk_size < MIN_CHUNK_SIZE or not 0 <= self.chunk_overlap < self.chunk_size:
            raise InputError(
                f"chunk size must be at least {MIN_CHUNK_SIZE} and larger than the overlap "
                f"(got size {self.chunk_size}, overlap {self.chunk_overlap}; see RAG_CHUNK_SIZE / RAG_CHUNK_OVERLAP)"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> ChunkingConfig:
        """The chunking that ``RAG_CHUNK_SIZE`` and ``RAG_CHUNK_OVERLAP`` configure."""
        return cls(settings.chunk_size, settings.chunk_overlap)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A passage of a document. ``chunk_id`` is a content hash, stable across re-ingests.

    ``date`` (ISO publication date, or "") and ``tags`` are its document's, for search filters.
    """

    chunk_id: str
    doc_id: str
    title: str
    source: str
    text: str
    position: int
    date: str = ""
    tags: tuple[str, ...] = ()
    page: int | None = None  # 1-based page where the chunk starts; None for files without pages

    def __post_init__(self) -> None:
        if not isinstance(self.tags, tuple):  # read back from JSON or Milvus as a list
            object.__setattr__(self, "tags", tuple(self.tags))

    @property
    def page_label(self) -> str:
        """``第N页`` for a chunk of a paged file (PDF), else ``""``."""
        return f"第{self.page}页" if self.page else ""

    @property
    def embed_text(self) -> str:
        """What is embedded and indexed: the title gives the passage its context."""
        return f"{self.title}\n{self.text}" if self.title else self.text


def chunk_id_for(doc_id: str, text: str) -> str:
    return hashlib.sha1(f"{doc_id}\x00{text}".encode()).hexdigest()[:16]


def make_splitter(config: ChunkingConfig) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=config.chunk_size,
        chunk_overlap=config.chunk_overlap,
        strip_whitespace=True,
        add_start_index=True,
    )


def _page_texts(document: Document) -> list[tuple[str, int]]:
    """Each page's text with its offset (the whole text for files without pages): a chunk never
    spans two pages, so the page it names is where all of its text is."""
    bounds = sorted({0, *(offset for offset, _ in document.pages), len(document.text)})
    return [(document.text[start:end], start) for start, end in zip(bounds, bounds[1:])]


def _pieces(document: Document, config: ChunkingConfig) -> list[tuple[str, int]]:
    """The chunk texts with their start offsets in the document; a chunk starting inside a
    table's rows gets the table's header lines in front."""
    splitter, headers = make_splitter(config), TableHeaders(document.text)
    pieces = []
    for text, offset in _page_texts(document):
        for split in splitter.create_documents([text]):
            if not split.page_content.strip():
                continue
            start = offset + int(split.metadata["start_index"])
            header = headers.at(start)
            pieces.append((f"{header}\n{split.page_content}" if header else split.page_content, start))
    return pieces


def chunk_document(document: Document, config: ChunkingConfig) -> list[Chunk]:
    """Split one document (each page on its own); chunks keep their order in ``position`` and their page."""
    return [
        Chunk(
            chunk_id=chunk_id_for(document.doc_id, piece),
            doc_id=document.doc_id,
            title=document.title,
            source=document.source,
            text=piece,
            position=position,
            date=document.date,
            tags=document.tags,
            page=document.page_at(start),
        )
        for position, (piece, start) in enumerate(_pieces(document, config))
    ]
