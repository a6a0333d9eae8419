"""The knowledge bases: a name, a title and an index location each; ``default`` is the index at ``RAG_INDEX``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.accounts.db import Database
from rag.config import Settings
from rag.errors import InputError, RagError
from rag.files import now_iso
from rag.index.locations import is_uri, redact
from rag.index.uploads import uploads_dir

DEFAULT_KB = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class Kb:
    """One knowledge base: ``location`` is an index directory or a Milvus URI."""

    name: str
    title: str
    location: str
    created_at: str = ""

    def to_dict(self) -> dict[str, str]:
        """The ``rag kb list --json`` shape (a Milvus password hidden)."""
        return {"name": self.name, "title": self.title, "location": redact(self.location), "created_at": self.created_at}


class KbNotFound(RagError):
    """A knowledge base that does not exist, or that the caller may not read (the same answer)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no knowledge base named {name!r}")
        self.name = name


def check_kb_name(name: str) -> str:
    """``name`` if it can name a knowledge base (it appears in model ids ``rag-zh:NAME``)."""
    if not _NAME.match(name):
        raise InputError(
            f"{name!r} cannot name a knowledge base: use 1-40 lower-case letters, digits, - and _, starting with a letter or digit"
        )
    return name


class KbRegistry:
    """The knowledge bases in the database, plus ``default`` at ``default_location``; new ones go
    under ``root`` (``index/NAME``) unless given a location."""

    def __init__(self, db: Database, default_location: str, root: Path) -> None:
        self.db = db
        self.default = Kb(DEFAULT_KB, "默认知识库", default_location)
        self.root = root

    def list(self) -> list[Kb]:
        """Every knowledge base, ``default`` first, then by name."""
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT name, title, location, created_at FROM kbs ORDER BY name").fetchall()
        return [self.default, *(Kb(*row) for row in rows)]

    def get(self, name: str) -> Kb:
        """The knowledge base ``name``; :class:`KbNotFound` if there is none."""
        if name == DEFAULT_KB:
            return self.default
        with self.db.transaction() as conn:
            row = conn.execute("SELECT name, title, location, created_at FROM kbs WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise KbNotFound(name)
        return Kb(*row)

    def create(self, name: str, title: str | None = None, location: str | None = None) -> Kb:
        """Register a knowledge base (its index is written by the first ingest)."""
        check_kb_name(name)
        if location is None:
            location = str(self.root / name)
        elif not is_uri(location):
            location = str(Path(location).expanduser().resolve())
        kb = Kb(name, (title or name).strip() or name, location, now_iso())
        with self.db.transaction() as conn:
            taken = name == DEFAULT_KB or conn.execute("SELECT 1 FROM kbs WHERE name = ?", (name,)).fetchone()
            used = (
                location == self.default.location
                or conn.execute("SELECT name FROM kbs WHERE location = ?", (location,)).fetchone()
            )
            if taken:
                raise InputError(f"a knowledge base named {name!r} exists already")
            if used:
                raise InputError(f"{redact(location)} is the index of another knowledge base already")
            conn.execute("INSERT INTO kbs VALUES (?, ?, ?, ?)", (kb.name, kb.title, kb.location, kb.created_at))
        return kb

    def remove(self, name: str) -> Kb:
        """Forget a knowledge base and its grants; its index stays where it is."""
        if name == DEFAULT_KB:
            raise InputError("the default knowledge base cannot be removed (it is the index at RAG_INDEX)")
        kb = self.get(name)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM kbs WHERE name = ?", (name,))
            conn.execute("DELETE FROM grants WHERE kb = ?", (name,))
        return kb


def registry_for(settings: Settings, db: Database | None = None) -> KbRegistry:
    """The knowledge bases in ``db`` (default: ``settings``' database); ``default`` is ``settings``' index."""
    return KbRegistry(db or Database(settings.db_file), settings.index, settings.kb_root)


def owned_folders(registry: KbRegistry, kb: Kb, keep: Sequence[Path] = ()) -> list[Path]:
    """The folders that go with ``kb`` when its files are deleted: its index directory and its uploads
    folder. Only for a KB whose index is ``registry``'s own (in its ``root``) and holds neither another KB's
    files, the database nor ``keep``; :class:`InputError` for a Milvus URI or an index elsewhere."""
    if kb.name == DEFAULT_KB:
        raise InputError("the default knowledge base cannot be removed (it is the index at RAG_INDEX)")
    if is_uri(kb.location):
        raise InputError(f"{redact(kb.location)} is a Milvus index: drop its collection or file with Milvus's own tools")
    root, index = registry.root.resolve(), Path(kb.location).resolve()
    folders = [index, uploads_dir(index)]
    others = [Path(other.location).resolve() for other in registry.list() if other.name != kb.name and not is_uri(other.location)]
    kept = [*others, *map(uploads_dir, others), registry.db.path.resolve(), *(Path(path).resolve() for path in keep)]
    if index.parent != root or any(path == folder or folder in path.parents for path in kept for folder in folders):
        raise InputError(f"{index} is not a knowledge base folder under {root}; delete its files yourself")
    return [folder for folder in folders if folder.exists()]
