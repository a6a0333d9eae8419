"""Index locations: a directory (the FAISS index directory, the default) or a Milvus URI.

``--index`` / ``RAG_INDEX`` accept::

    index/default                         a directory: :class:`~rag.index.faiss_store.FaissStore`
    milvus-lite:///abs/path/kb.db         a Milvus Lite file (one process at a time)
    milvus://host:19530/collection        a Milvus server (``milvus://user:password@host:19530/...``)

A password or token in a location is shown as ``***`` in every message (:func:`redact`).
Every location also has a local folder (:func:`local_dir`): the index directory itself, or for a
URI the folder that holds the write lock and the embedding journal, and beside which the web
page keeps uploads. This module is the one place that turns a location into a store:
:data:`BACKENDS` maps a URI scheme to its :class:`StoreBackend`; anything else is a directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from rag.errors import IndexStoreError

if TYPE_CHECKING:
    from rag.index.chunking import ChunkingConfig
    from rag.index.store import Store

LITE_SCHEME = "milvus-lite://"
SERVER_SCHEME = "milvus://"
LITE_COLLECTION = "rag_zh"
MILVUS_PORT = 19530
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
# scheme://userinfo@ : up to the last "@" before a space, so that an unescaped "@" or "/" in a
# password is hidden too (a "/" right after "://" is a path: milvus-lite:///a@b.db is no userinfo)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/@][^\s]*)@")
_SECRET_QUERY = re.compile(r"(?P<key>[?&](?:token|password|api_key|apikey|secret)=)[^&#\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the credentials of any URI in it hidden, for messages and logs.

    ``scheme://user:password@host`` becomes ``scheme://user:***@host``; a lone userinfo (in a
    Milvus URI, ``milvus://TOKEN@host``, it is the token) becomes ``***``, and so do the values
    of ``token=``, ``password=``, ``api_key=`` and ``secret=`` query parameters.
    """
    text = _USERINFO.sub(_hide_userinfo, str(text))
    return _SECRET_QUERY.sub(r"\g<key>***", text)


def _hide_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    return f"{match['scheme']}{user}:***@" if colon else f"{match['scheme']}***@"


@dataclass(frozen=True)
class MilvusTarget:
    """Where a Milvus store lives and how to reach it."""

    location: str  # as the user wrote it with the password hidden (:func:`redact`), for messages
    uri: str  # what MilvusClient connects to: a Milvus Lite ``.db`` path or ``http://host:port``
    collection: str
    journal_dir: Path  # local folder for the write lock and the embedding journal
    token: str = ""
    dense_index: str = "FLAT"  # exact on Milvus Lite; "HNSW" on a server

    @property
    def is_lite(self) -> bool:
        return self.uri.endswith(".db")

    @property
    def meta(self) -> str:
        return f"{self.collection}_meta"


def is_uri(location: str | Path) -> bool:
    """Whether ``location`` is a URI of a registered scheme (:data:`BACKENDS`) rather than a directory."""
    return _scheme(location) in BACKENDS


def local_dir(location: str | Path) -> Path:
    """The local folder of an index: the directory itself, or the folder that goes with a URI."""
    return backend_for(location).local_dir(str(location))


def milvus_target(location: str) -> MilvusTarget:
    """Parse a ``milvus-lite://`` or ``milvus://`` URI; a malformed one is an :class:`IndexStoreError`."""
    shown = redact(location)
    if location.startswith(LITE_SCHEME):
        path = Path(location[len(LITE_SCHEME) :])
        if not path.is_absolute() or path.suffix != ".db":
            raise IndexStoreError(f"{shown}: a Milvus Lite index is milvus-lite:///absolute/path/name.db")
        return MilvusTarget(shown, str(path), LITE_COLLECTION, path.with_suffix(""))
    parts = urlsplit(location)
    collection = parts.path.strip("/")
    try:
        port = parts.port or MILVUS_PORT
    except ValueError:  # not a number (or a "/" in the password cut the host part short)
        port = None
    if parts.scheme != "milvus" or not parts.hostname or port is None or not _NAME.match(collection):
        raise IndexStoreError(f"{shown}: a Milvus server index is milvus://host:19530/collection (letters, digits, _)")
    from rag.config import REPO_ROOT

    token = f"{parts.username}:{parts.password}" if parts.password else parts.username or ""
    journal = REPO_ROOT / "index" / f"milvus-{parts.hostname}-{port}-{collection}"
    return MilvusTarget(shown, f"http://{parts.hostname}:{port}", collection, journal, token, dense_index="HNSW")


class StoreBackend(Protocol):
    """How the locations of one kind (a directory, or the URIs of one scheme) become stores."""

    def local_dir(self, location: str) -> Path:
        """The local folder of the index: lock, journal, and beside it uploads and feedback."""
        ...

    def disk_root(self, location: str) -> Path | None:
        """What the index takes on this machine (None: nothing, it lives on a server)."""
        ...

    def exists(self, location: str) -> bool:
        """Whether an index has been written there."""
        ...

    def load(self, location: str) -> Store:
        """The index there, opened for reading; :class:`IndexStoreError` if there is none."""
        ...

    def open_for_writing(self, location: str, model_id: str, dim: int, chunking: ChunkingConfig, rebuild: bool) -> Store:
        """The index there checked against the model and chunking, or a new empty one."""
        ...


class DirectoryBackend:
    """An index directory: :class:`~rag.index.faiss_store.FaissStore` (the default)."""

    def local_dir(self, location: str) -> Path:
        return Path(location).expanduser()

    def disk_root(self, location: str) -> Path | None:
        return Path(location)

    def exists(self, location: str) -> bool:
        from rag.index.faiss_store import FaissStore

        return FaissStore.exists(Path(location))

    def load(self, location: str) -> Store:
        from rag.index.faiss_store import FaissStore

        return FaissStore.load(Path(location))

    def open_for_writing(self, location: str, model_id: str, dim: int, chunking: ChunkingConfig, rebuild: bool) -> Store:
        from rag.index.faiss_store import FaissStore

        return FaissStore.open_for_writing(Path(location), model_id, dim, chunking, rebuild)


class MilvusBackend:
    """A Milvus Lite file or a Milvus server: :class:`~rag.index.milvus_store.MilvusStore`."""

    def local_dir(self, location: str) -> Path:
        return milvus_target(location).journal_dir

    def disk_root(self, location: str) -> Path | None:
        target = milvus_target(location)
        return Path(target.uri) if target.is_lite else None

    def exists(self, location: str) -> bool:
        from rag.index.milvus_store import MilvusStore

        return MilvusStore.exists(milvus_target(location))

    def load(self, location: str) -> Store:
        from rag.index.milvus_store import MilvusStore

        return MilvusStore.load(milvus_target(location))

    def open_for_writing(self, location: str, model_id: str, dim: int, chunking: ChunkingConfig, rebuild: bool) -> Store:
        from rag.index.milvus_store import MilvusStore

        return MilvusStore.open_for_writing(milvus_target(location), model_id, dim, chunking, rebuild)


DIRECTORY: StoreBackend = DirectoryBackend()
_MILVUS = MilvusBackend()
BACKENDS: dict[str, StoreBackend] = {"milvus-lite": _MILVUS, "milvus": _MILVUS}  # URI scheme -> backend


def backend_for(location: str | Path) -> StoreBackend:
    """The backend of ``location``: its URI scheme's in :data:`BACKENDS`, else the index directory."""
    return BACKENDS.get(_scheme(location) or "", DIRECTORY)


def _scheme(location: str | Path) -> str | None:
    scheme, separator, _ = str(location).partition("://")
    return scheme if separator else None


def open_store(location: str | Path) -> Store:
    """The store at ``location``, opened for reading; :class:`IndexStoreError` if there is none."""
    return backend_for(location).load(str(location))


def open_store_for_writing(
    location: str | Path, model_id: str, dim: int, chunking: ChunkingConfig, rebuild: bool = False
) -> Store:
    """The store at ``location`` checked against the model and chunking, or a new empty one."""
    return backend_for(location).open_for_writing(str(location), model_id, dim, chunking, rebuild)


def store_exists(location: str | Path) -> bool:
    """Whether an index has been written at ``location``."""
    return backend_for(location).exists(str(location))


@contextmanager
def write_lock(location: str | Path) -> Iterator[None]:
    """Exclusive lock of the index's local folder: one writer per index on this machine.

    For a Milvus server this does not reach other machines: run ingests from one place.
    """
    from rag.index.faiss_store import write_lock as folder_lock

    with folder_lock(local_dir(location)):
        yield


def disk_bytes(location: str | Path) -> int | None:
    """Bytes the index takes on this machine (None for a Milvus server)."""
    root = backend_for(location).disk_root(str(location))
    if root is None:
        return None
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
