"""Small file helpers shared by the index, the evaluation reports, the database and the web page."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any


def now_iso() -> str:
    """The local time as ``2025-08-09T10:00:00+0800``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def private_file(path: Path) -> Path:
    """Create ``path`` empty, readable and writable by its owner only (0600), unless it exists.

    Its folder, when missing, is created owner-only too (0700; missing folders above it follow
    the umask). The mode is given when the file is created, so no other user can open it first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    return path


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file in the same folder, then rename over ``path``.

    The file gets the mode the umask gives new files, like the index's other files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
