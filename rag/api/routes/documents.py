"""``/v1/documents``: list, upload (the web page's checks) and delete the documents of a knowledge base."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from rag.accounts.kbs import DEFAULT_KB
from rag.api.auth import principal_of
from rag.api.deps import ServicesDep
from rag.api.errors import ApiError
from rag.errors import InputError
from rag.index.documents import MAX_FILE_BYTES
from rag.index.uploads import safe_upload_name
from rag.knowledge_base import CheckedUpload, KnowledgeBase

router = APIRouter(prefix="/v1")


@router.get("/documents")
async def list_documents(
    request: Request,
    services: ServicesDep,
    kb: list[str] | None = Query(None),  # noqa: B008 - FastAPI's query syntax
) -> dict[str, Any]:
    """Every document of the ``kb`` named (repeatable; every readable KB without it), each naming its KB."""
    found = await run_in_threadpool(services.library.documents, principal_of(request), kb)
    return {"object": "list", "data": [{"kb": name, **asdict(record)} for name, record in found]}


@router.post("/documents")
async def upload_documents(
    request: Request,
    services: ServicesDep,
    files: list[UploadFile] = File(...),  # noqa: B008 - FastAPI's form syntax
    kb: str = Form(DEFAULT_KB),
) -> dict[str, Any]:
    """Add files to KB ``kb`` (an editor's; the same type, size and name checks as the web page)."""
    services.loader.require()
    library = services.library
    principal = principal_of(request)
    base = await run_in_threadpool(library.editable, principal, kb)
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
        accepted, refused = await _receive_uploads(files, Path(folder), base)
        report = await run_in_threadpool(base.add, accepted) if accepted else None
    names = ", ".join(upload.filename or "" for upload in files)
    library.record(principal, "upload", [kb], names, "error" if refused or (report and report.files_failed) else "ok")
    failed = refused + [{"file": Path(path).name, "error": message} for path, message in (report.files_failed if report else [])]
    return {
        "added": report.documents_added if report else [],
        "replaced": report.documents_replaced if report else [],
        "unchanged": [Path(path).name for path in report.files_unchanged] if report else [],
        "failed": failed,
        "warnings": report.warnings if report else [],
        "chunks_embedded": report.chunks_embedded if report else 0,
    }


@router.delete("/documents/{doc_id}")
async def delete_document(doc_id: str, request: Request, services: ServicesDep, kb: str = DEFAULT_KB) -> dict[str, Any]:
    """Remove one document of KB ``kb`` (an editor's; its uploaded file too once nothing else uses it)."""
    principal = principal_of(request)
    base = await run_in_threadpool(services.library.editable, principal, kb)
    if doc_id not in {record.doc_id for record in await run_in_threadpool(base.documents)}:
        raise ApiError(404, f"no document {doc_id!r} in the knowledge base", code="document_not_found")
    record = await run_in_threadpool(base.delete, doc_id)
    services.library.record(principal, "delete", [kb], record.title)
    return {"deleted": record.doc_id, "title": record.title}


async def _receive_uploads(
    files: list[UploadFile], folder: Path, kb: KnowledgeBase
) -> tuple[list[CheckedUpload], list[dict[str, str]]]:
    """Write each upload to ``folder`` (size-capped) and check it; (accepted, refused)."""
    accepted: list[CheckedUpload] = []
    refused: list[dict[str, str]] = []
    for number, upload in enumerate(files):
        name = upload.filename or ""
        try:
            temp = folder / str(number) / safe_upload_name(name)  # the loader goes by the file's suffix
            temp.parent.mkdir()
            size = 0
            with open(temp, "wb") as handle:
                while block := await upload.read(1024 * 1024):
                    size += len(block)
                    if size > MAX_FILE_BYTES:
                        break
                    handle.write(block)
            if size > MAX_FILE_BYTES:
                raise InputError(f"“{name}”：文件超过 {MAX_FILE_BYTES / 1e6:.0f} MB 的上限")
            accepted.append(await run_in_threadpool(kb.check, temp, name))
        except InputError as exc:
            refused.append({"file": name, "error": str(exc)})
    return accepted, refused
