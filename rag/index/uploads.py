"""Uploaded files (web page and API): name, type and size checks, and the folder that keeps them.

Uploads are copied to ``<index parent>/uploads/<index name>/`` so the index can point at a
file that outlives the browser's temporary copy. That folder is private to the server's user
(0700, files 0600). A file is first staged beside its place and only put there while the index's
write lock is held (:func:`put_in_place`). Messages are in Chinese: staff read them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InputError
from rag.index.documents import MAX_FILE_BYTES, SUPPORTED_SUFFIXES

MAX_NAME_CHARS = 150
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def uploads_dir(index_dir: Path) -> Path:
    """The folder that keeps the files uploaded into ``index_dir``."""
    index_dir = Path(index_dir)
    return index_dir.parent / "uploads" / index_dir.name


def safe_upload_name(name: str) -> str:
    """``name`` if it is a plain, visible file name of a supported type, else :class:`InputError`."""
    name = unicodedata.normalize("NFC", name or "").strip()
    if not name:
        raise InputError("文件名为空")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InputError("文件名中有控制字符")
    hidden = [ch for ch in name if unicodedata.category(ch) == "Cf"]  # bidi controls, zero-width characters
    if hidden:  # none belongs in a file name, and the name is not echoed: it could reorder the message
        raise InputError(f"文件名中有不可见的格式字符 U+{ord(hidden[0]):04X}（如双向控制符、零宽字符），请改名后再上传")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(f"“{name}”：文件名不能包含路径")
    if name.startswith("."):
        raise InputError(f"“{name}”：不接受隐藏文件（以 . 开头）")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"文件名太长（{len(name)} 个字符，上限 {MAX_NAME_CHARS}）")
    if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise InputError(f"“{name}”：不支持这种文件类型；支持 {' '.join(SUPPORTED_SUFFIXES)}")
    return name


def check_upload(path: Path, name: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The safe name of an uploaded file at ``path``, after checking its name and size."""
    name = safe_upload_name(name)
    size = Path(path).stat().st_size
    if size == 0:
        raise InputError(f"“{name}”：文件是空的")
    if size > max_bytes:
        raise InputError(f"“{name}”：文件有 {size / 1e6:.0f} MB，超过 {max_bytes / 1e6:.0f} MB 的上限")
    return name


@dataclass(frozen=True)
class StagedUpload:
    """A checked upload copied beside ``target`` (its place in the uploads folder), not yet there."""

    staged: Path
    target: Path

    @property
    def backup(self) -> Path:
        """Where the older ``target`` waits while the new file is in place and not yet indexed."""
        return self.staged.with_suffix(".old")

    def swap_in(self) -> None:
        """Put the staged copy at ``target``, keeping the older file (if any) at :attr:`backup`."""
        if self.target.exists():
            os.replace(self.target, self.backup)
        try:
            os.replace(self.staged, self.target)
        except OSError:
            self.swap_back()
            raise

    def swap_back(self) -> None:
        """Put the older file back at ``target`` (or remove ``target`` when there was none)."""
        if self.backup.exists():
            os.replace(self.backup, self.target)
        else:
            self.target.unlink(missing_ok=True)


def _private_folder(folder: Path) -> Path:
    """``folder``, created if needed, readable by this user only."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(FOLDER_MODE)
    return folder


def stage_upload(path: Path, name: str, folder: Path) -> StagedUpload:
    """Copy a checked upload into ``folder`` under a hidden temporary name beside its place ``name``."""
    target = _private_folder(folder) / safe_upload_name(name)
    handle, staged = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out, open(path, "rb") as source:
            os.fchmod(out.fileno(), FILE_MODE)
            shutil.copyfileobj(source, out)
    except BaseException:
        os.unlink(staged)
        raise
    return StagedUpload(Path(staged), target)


@contextmanager
def staged_uploads(uploads: Sequence[tuple[Path, str]], folder: Path) -> Iterator[list[StagedUpload]]:
    """Staged copies of checked uploads (``(path, name)``); whatever is left of them goes at the end."""
    staged: list[StagedUpload] = []
    try:
        for path, name in uploads:
            staged.append(stage_upload(path, name, folder))
        yield staged
    finally:
        for upload in staged:
            upload.staged.unlink(missing_ok=True)
            upload.backup.unlink(missing_ok=True)


@contextmanager
def put_in_place(uploads: Sequence[StagedUpload]) -> Iterator[None]:
    """Staged uploads moved to their places for the body; if the body fails, the older files come back.

    Run it under the index's write lock, around the ingest of the targets.
    """
    placed: list[StagedUpload] = []
    try:
        for upload in uploads:
            upload.swap_in()
            placed.append(upload)
        yield
    except BaseException:
        for upload in reversed(placed):
            upload.swap_back()
        raise


def discard_upload(source: str | Path, folder: Path) -> bool:
    """Delete ``source`` if it is a file inside the uploads ``folder``; True if it was deleted."""
    path = Path(source).resolve()
    if path.parent != Path(folder).resolve() or not path.is_file():
        return False
    path.unlink()
    return True
