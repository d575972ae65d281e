"""Service settings, from environment variables (``COMMITPLAN_*``) or given in code.

Plain pydantic (pydantic-settings is not a dependency): :meth:`Settings.from_env` reads the
environment once; tests build ``Settings(database_url=...)`` directly.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

import store

MB = 1024 * 1024


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    database_url: str = Field(description="SQLAlchemy URL; default: store.database_url()")
    max_upload_bytes: int = Field(default=50 * MB, gt=0, description="largest dataset upload accepted (413 above)")
    job_workers: int = Field(default=2, ge=1, le=64, description="plans solved at the same time")
    requeue_running: bool = Field(default=True, description="on startup, re-queue plans left running by a previous "
                                  "process (leave False when several API replicas share one database)")
    db_pool_size: int = Field(default=40, ge=1)
    max_concurrent_requests: int = Field(default=32, ge=1, description="requests handled at once; the rest wait "
                                         "their turn (keep it below the 40 worker threads and the pool)")
    idempotency_ttl_s: float = Field(default=24 * 3600, gt=0)
    ledger_path: Path | None = Field(default=None, description="DuckDB ledger (`commitplan ingest`) read by the "
                                     "savings, allocation and anomalies endpoints")
    allocation_rules: Path | None = Field(default=None, description="allocation rules YAML for /v1/allocation")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ.get
        values: dict[str, object] = {"database_url": store.database_url()}
        for field, name in (("max_upload_bytes", "COMMITPLAN_MAX_UPLOAD_BYTES"), ("job_workers", "COMMITPLAN_JOB_WORKERS"),
                            ("requeue_running", "COMMITPLAN_REQUEUE_RUNNING"), ("db_pool_size", "COMMITPLAN_DB_POOL_SIZE"),
                            ("max_concurrent_requests", "COMMITPLAN_MAX_CONCURRENT_REQUESTS"),
                            ("ledger_path", "COMMITPLAN_LEDGER"), ("allocation_rules", "COMMITPLAN_ALLOCATION_RULES")):
            if env(name):
                values[field] = env(name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
