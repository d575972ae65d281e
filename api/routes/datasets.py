"""Datasets: upload (multipart ``file`` + ``kind``), list, fetch metadata, fetch content.

Usage, price book and commitments uploads are parsed with :mod:`models.readers` before they are
stored: a bad file is a 422 problem naming the file, row and column, and nothing is stored.
Billing exports are stored as given (they are ingested into the ledger, not read here).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

import store
from api.deps import (
    ActorDep,
    IdempotencyDep,
    Reader,
    SessionDep,
    SettingsDep,
    get_or_404,
)
from api.problems import ProblemError, from_result
from api.schemas import DatasetPublic, Page
from models.errors import InputError
from models.readers import read_existing, read_price_book, read_usage
from store import Dataset, DatasetKind
from store.hashing import sha256_hex

router = APIRouter(prefix="/datasets", tags=["datasets"])
CHUNK = 1024 * 1024
MAX_OFFSET = 2**31  # beyond any real table; an offset over 2**63 was an OverflowError in the driver (500)
READERS = {DatasetKind.USAGE: read_usage, DatasetKind.PRICES: read_price_book, DatasetKind.COMMITMENTS: read_existing}


def _read_limited(file: UploadFile, limit: int) -> bytes:
    parts, size = [], 0
    while chunk := file.file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, f"the upload is larger than the limit of {limit:,} bytes", limit=limit)
        parts.append(chunk)
    return b"".join(parts)


def check_upload(kind: DatasetKind, name: str, content: bytes) -> Any:
    """Parse the file as the CLI would (the UI calls this too) and return what the reader made of it
    (None for a bill, which is ingested, not read here); InputError naming ``name``, row and column."""
    reader = READERS.get(kind)
    if reader is None:
        return None
    with tempfile.TemporaryDirectory(prefix="commitplan-upload-") as tmp:
        path = Path(tmp) / ("upload.csv.gz" if content[:2] == b"\x1f\x8b" else "upload.csv")
        path.write_bytes(content)
        try:
            return reader(path)
        except InputError as e:
            raise InputError(name, e.message, e.row, e.column) from None


def validate(kind: DatasetKind, name: str, content: bytes) -> None:
    """:func:`check_upload`, its InputError as a 422 problem naming file, row and column."""
    try:
        check_upload(kind, name, content)
    except InputError as e:
        raise ProblemError(422, str(e), file=e.file, row=e.row, column=e.column) from None


@router.post("", status_code=201, response_model=DatasetPublic, name="dataset.create",
             responses={413: {"description": "too large"}, 422: {"description": "the file does not parse"}})
def create_dataset(
    session: SessionDep, actor: ActorDep, settings: SettingsDep, idem: IdempotencyDep,
    file: Annotated[UploadFile, File(description="the CSV (or .csv.gz)")],
    kind: Annotated[DatasetKind, Form(description="usage, billing, prices or commitments")],
) -> Response:
    content = _read_limited(file, settings.max_upload_bytes)
    name = (file.filename or f"{kind.value}.csv")[:200]
    if not content:
        raise ProblemError(422, f"{name}: the file is empty", file=name)

    if actor.can("create"):  # parse before the write transaction: SQLite holds one write lock meanwhile
        validate(kind, name, content)

    def action() -> tuple[int, object]:
        result = store.add_dataset(session, actor, kind, name, content, file.content_type or "text/csv")
        if not result.ok:
            raise from_result(result)
        return 201, DatasetPublic.of(result.value).model_dump(mode="json")

    status, body, replayed = idem.run({"kind": kind.value, "name": name, "sha256": sha256_hex(content)}, action)
    headers = {"Location": f"/v1/datasets/{body['id']}", **({"Idempotent-Replayed": "true"} if replayed else {})}
    return JSONResponse(body, status_code=status, headers=headers)


@router.get("", response_model=Page[DatasetPublic])
def list_datasets(
    session: SessionDep, actor: Reader,
    kind: DatasetKind | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[DatasetPublic]:
    where = [Dataset.kind == kind.value] if kind else []
    total = session.scalar(select(func.count()).select_from(Dataset).where(*where)) or 0
    rows = session.scalars(select(Dataset).where(*where).order_by(Dataset.created_at.desc(), Dataset.id)
                           .limit(limit).offset(offset))
    items = [DatasetPublic.of(d) for d in rows]
    return Page(items=items, total=total, limit=limit, offset=offset,
                next_offset=offset + limit if offset + limit < total else None)


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: uuid.UUID, session: SessionDep, actor: Reader) -> DatasetPublic:
    return DatasetPublic.of(get_or_404(session, Dataset, dataset_id, "dataset"))


@router.get("/{dataset_id}/content", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/gzip": {}}}})
def get_dataset_content(dataset_id: uuid.UUID, session: SessionDep, actor: Reader) -> Response:
    ds = get_or_404(session, Dataset, dataset_id, "dataset")
    content = store.dataset_content(session, ds.id) or b""
    return Response(content, media_type=ds.media_type,
                    headers={"Content-Disposition": f"attachment; filename=\"{_safe(ds.name)}\"", "ETag": f'"{ds.sha256}"'})


def _safe(name: str) -> str:
    return "".join(c if c.isprintable() and c not in '"\\' else "_" for c in name)
