"""Uploaded files (web page and API): name, type and size checks, and the folder that keeps them.

Uploads are copied to ``<index parent>/uploads/<index name>/`` so the index can point at a
file that outlives the browser's temporary copy. Messages are in Chinese: staff read them.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path

from rag.errors import InputError
from rag.index.documents import MAX_FILE_BYTES, SUPPORTED_SUFFIXES

MAX_NAME_CHARS = 150


def uploads_dir(index_dir: Path) -> Path:
    """The folder that keeps the files uploaded into ``index_dir``."""
    index_dir = Path(index_dir)
    return index_dir.parent / "uploads" / index_dir.name


def safe_upload_name(name: str) -> str:
    """``name`` if it is a plain, visible file name of a supported type, else :class:`InputError`."""
    name = unicodedata.normalize("NFC", name or "").strip()
    if not name:
        raise InputError("文件名为空")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(f"“{name}”：文件名不能包含路径")
    if name.startswith("."):
        raise InputError(f"“{name}”：不接受隐藏文件（以 . 开头）")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InputError("文件名中有控制字符")
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


def store_upload(path: Path, name: str, folder: Path) -> Path:
    """Copy a checked upload into ``folder`` as ``name`` (replacing an older copy); returns the copy."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe_upload_name(name)
    partial = folder / f".{target.name}.part"
    shutil.copyfile(path, partial)
    os.replace(partial, target)
    return target


def discard_upload(source: str | Path, folder: Path) -> bool:
    """Delete ``source`` if it is a file inside the uploads ``folder``; True if it was deleted."""
    path = Path(source).resolve()
    if path.parent != Path(folder).resolve() or not path.is_file():
        return False
    path.unlink()
    return True
