"""Canonical JSON and SHA-256: one byte-exact serialization, so hashes agree on SQLite and PostgreSQL.

Timestamps are written as UTC ISO strings with microseconds (``2025-01-01T00:00:00.000000Z``), keys
are sorted, separators are fixed and NaN is refused. Both databases keep microseconds, so a value
read back from either serializes to the same bytes it was hashed from.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect

GENESIS = "0" * 64
"""The ``prev_hash`` of the first audit entry."""


def utc_iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return sha256_hex(value)
    if hasattr(value, "value"):  # enums
        return value.value
    raise TypeError(f"cannot serialize {type(value).__name__} canonically")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_default)


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def row_hash(obj: Any, exclude: tuple[str, ...] = ()) -> str:
    """SHA-256 of an ORM row's column values: the "before"/"after" state an audit entry records.

    Deferred large columns (dataset content) are left out by the caller through ``exclude``: the row
    already carries their SHA-256.
    """
    mapper = inspect(obj).mapper
    values = {a.key: getattr(obj, a.key) for a in mapper.column_attrs if a.key not in exclude}
    return sha256_hex(canonical_json(values))
