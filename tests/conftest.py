"""Shared fixtures for the fast tier: a fake embedder, a small Chinese corpus, tmp index dirs.

Nothing here loads a real model: the embedder is :class:`rag.models.fakes.HashingEmbedder`, and the
CLI is pointed at it with ``RAG_EMBED_MODEL=fake:hashing``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from rag.config import REPO_ROOT
from rag.index.faiss_store import MANIFEST
from rag.models.embedders import TextKind
from rag.models.fakes import HashingEmbedder

SAMPLE_CORPUS = REPO_ROOT / "corpus"
FAKE_MODEL_ID = "fake:hashing"

FUND_ARTICLE = """河南设立人工智能产业基金

8月9日，河南省人民政府发布《河南省支持人工智能产业生态发展若干政策措施》，提出开展多元投融资服务。设立总规模30亿元的人工智能产业基金，壮大耐心资本，探索投补联动、投贷联动等支持机制。
该基金将满足人工智能企业不同生命周期阶段的融资需求，重点投向算力基础设施和大模型应用场景。
"""

COMPUTE_ARTICLE = """算力网络建设提速

截至2025年一季度，八大算力枢纽节点总算力规模达215.5 EFLOPS。全国数据中心机架总规模持续增长，智能算力占比明显提高。
各地加快建设算力调度平台，推动东数西算工程走深走实。
"""

ROBOT_ARTICLE = """# 人形机器人产业观察

2024年我国人形机器人市场规模约为27.6亿元，预计2025年将突破50亿元。多家企业发布了新一代产品，核心零部件国产化率不断提高。
"""


class CountingEmbedder:
    """Wraps the hashing embedder and records every batch it is asked to embed."""

    def __init__(self, model_id: str = FAKE_MODEL_ID, dim: int = 256) -> None:
        self._inner = HashingEmbedder(dim=dim, model_id=model_id)
        self.model_id = model_id
        self.dim = dim
        self.batches: list[list[str]] = []

    @property
    def texts_embedded(self) -> int:
        return sum(len(batch) for batch in self.batches)

    def embed(self, texts: Sequence[str], kind: TextKind = "passage") -> np.ndarray:
        if kind == "passage":
            self.batches.append(list(texts))
        return self._inner.embed(texts, kind)


class Interrupted(RuntimeError):
    """Raised by :class:`FailingEmbedder` in place of a crash or Ctrl-C."""


class FailingEmbedder(CountingEmbedder):
    """Embeds ``ok_batches`` passage batches, then raises (an ingest killed half-way)."""

    def __init__(self, ok_batches: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ok_batches = ok_batches

    def embed(self, texts: Sequence[str], kind: TextKind = "passage") -> np.ndarray:
        if kind == "passage" and len(self.batches) >= self.ok_batches:
            raise Interrupted(f"stopped after {self.ok_batches} batches")
        return super().embed(texts, kind)


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as module ``name`` (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def manifest_of(root: Path) -> dict:
    return json.loads((root / MANIFEST).read_text(encoding="utf-8"))


def index_state(root: Path) -> tuple[str, int, bytes]:
    """(generation, chunk count, manifest bytes): what must not change after a failed write."""
    manifest = manifest_of(root)
    return manifest["generation"], manifest["n_chunks"], (root / MANIFEST).read_bytes()


def modes(folder: Path) -> dict[str, int]:
    """The permission bits of ``folder`` and everything in it, by path relative to ``folder``."""
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    """``os.umask`` for one test: starts at the usual 0o022; the old umask comes back afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory) -> Path:
    """A throw-away data dir (model caches) shared by the fast tests of one session."""
    return tmp_path_factory.mktemp("rag-data")


@pytest.fixture(scope="session", autouse=True)
def _private_server_db(tmp_path_factory) -> Iterator[Path]:
    """No test opens the real ``RAG_DB``: users there would put the pages of the browser tests behind
    a login (fast tests get one beside their own ``RAG_INDEX`` instead, below)."""
    with pytest.MonkeyPatch.context() as patch:
        shared = tmp_path_factory.mktemp("rag-db") / "rag.db"
        patch.setenv("RAG_DB", str(shared))
        yield shared


@pytest.fixture(autouse=True)
def _shared_db_has_no_users(_private_server_db: Path) -> Iterator[None]:
    """The session's ``RAG_DB`` is shared by every real and browser test: a user added there (say by a
    module-scoped server built before the per-test settings) puts later tests' API behind keys."""
    yield
    if _private_server_db.is_file():
        with contextlib.closing(sqlite3.connect(_private_server_db)) as conn:
            users = [row[0] for row in conn.execute("SELECT name FROM users")]
        assert not users, f"users {users} were added to the shared test database {_private_server_db}: give the test its own db_file"


@pytest.fixture(autouse=True)
def _fast_tier_settings(request, monkeypatch, tmp_path) -> None:
    """Fast tests use the fake embedder, a session tmp data dir and never the repo's index/default.

    Tests marked ``real`` or ``browser`` keep the environment as configured: they need the
    bundled models already prepared in the real data dir.
    """
    if request.node.get_closest_marker("real") or request.node.get_closest_marker("browser"):
        return
    monkeypatch.setenv("RAG_DATA_DIR", str(request.getfixturevalue("session_data_dir")))
    monkeypatch.setenv("RAG_EMBED_MODEL", FAKE_MODEL_ID)
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "default-index"))
    monkeypatch.delenv("RAG_DB")  # the database beside RAG_INDEX: one per test
    monkeypatch.setenv("RAG_THREADS", "1")


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(model_id=FAKE_MODEL_ID)


@pytest.fixture
def counting_embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def index_dir(tmp_path) -> Path:
    """An index path that does not exist yet."""
    return tmp_path / "index"


def index_of(articles: dict[str, str], folder: Path) -> Path:
    """An index of ``articles`` (file name -> text), written to ``folder``/corpus and ingested with
    the hashing embedder into ``folder``/index."""
    from rag.index.ingest import ingest

    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    for name, text in articles.items():
        (corpus / name).write_text(text, encoding="utf-8")
    ingest([corpus], folder / "index", HashingEmbedder())
    return folder / "index"


@pytest.fixture()
def two_article_index(tmp_path) -> Path:
    """Two short articles on two provinces' AI funds (河南 30亿元, 安徽 200亿元)."""
    return index_of(
        {
            "henan.txt": "河南设立人工智能产业基金\n\n8月 9日，河南省设立总规模 30亿元的人工智能产业基金。\n",
            "anhui.txt": "安徽人工智能产业主题基金\n\n安徽省加快运营总规模不低于 200亿元的省人工智能产业基金。\n",
        },
        tmp_path / "two-articles",
    )


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    """A small folder of Chinese articles in three formats."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "henan.txt").write_text(FUND_ARTICLE, encoding="utf-8")
    (folder / "compute.txt").write_text(COMPUTE_ARTICLE, encoding="utf-8")
    (folder / "robots.md").write_text(ROBOT_ARTICLE, encoding="utf-8")
    return folder


@pytest.fixture
def synced_index(corpus_dir, tmp_path) -> Path:
    """The small corpus synced with compute.txt in a 科技 subfolder and henan.txt dated by a page header."""
    from rag.index.sync import sync

    (corpus_dir / "科技").mkdir()
    (corpus_dir / "compute.txt").rename(corpus_dir / "科技" / "compute.txt")
    henan = corpus_dir / "henan.txt"
    henan.write_text("2025年8月9日 星期六\n\n" + henan.read_text(encoding="utf-8"), encoding="utf-8")
    index = tmp_path / "index" / "main"
    sync(corpus_dir, index, HashingEmbedder(model_id=FAKE_MODEL_ID))
    return index


@pytest.fixture(scope="session")
def _sample_index_master(tmp_path_factory) -> Path:
    """The real sample corpus, ingested once with the fake embedder."""
    from rag.index.ingest import ingest

    root = tmp_path_factory.mktemp("sample") / "index"
    ingest([SAMPLE_CORPUS], root, HashingEmbedder(model_id=FAKE_MODEL_ID))
    return root


@pytest.fixture
def sample_index(_sample_index_master, tmp_path) -> Path:
    """A private copy of the sample-corpus index (tests may modify it)."""
    root = tmp_path / "sample-index"
    shutil.copytree(_sample_index_master, root)
    return root


def write_chinese_pdf(path: Path, lines: Sequence[str]) -> Path:
    """A real one-page PDF whose text layer holds ``lines`` (CID font STSong-Light, UTF-16 codes).

    Written by hand because no CJK TrueType font is installed for matplotlib; pypdf extracts the
    text through the predefined ``UniGB-UTF16-H`` CMap, as it would from a newspaper PDF.
    """
    content = (
        "BT /F1 14 Tf 72 760 Td 18 TL\n" + "".join(f"<{line.encode('utf-16-be').hex().upper()}> Tj T*\n" for line in lines) + "ET"
    )
    stream = content.encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UTF16-H /DescendantFonts [6 0 R] >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        (
            b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
            b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 7 0 R >>"
        ),
        (
            b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [0 -200 1000 900] "
            b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 80 >>"
        ),
    ]
    data = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(data))
        data += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(data)
    data += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        data += b"%010d 00000 n \n" % offset
    data += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(data))
    return path


def write_docx(path: Path, paragraphs: Sequence[str]) -> Path:
    """A Word file made with python-docx."""
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    document.save(str(path))
    return path
