"""A test client of the HTTP service with one key per role (fixtures ``env``/``estate`` in conftest)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from store import Plan
from store.models import AuditEntry

PROBLEM = "application/problem+json"


@dataclass
class Env:
    client: TestClient
    app: object
    sessions: object
    keys: dict[str, str]
    files: dict[str, Path]

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def upload(self, who: str, kind: str, path: Path, name: str | None = None, **headers: str):
        with path.open("rb") as f:
            return self.client.post("/v1/datasets", headers=self.h(who, **headers), data={"kind": kind},
                                    files={"file": (name or path.name, f, "text/csv")})

    def plan_row(self, plan_id: str) -> tuple:
        with self.sessions() as s:
            return tuple(s.execute(select(Plan.__table__).where(Plan.__table__.c.id == uuid.UUID(plan_id))).one())

    def audit(self, plan_id: str) -> list[AuditEntry]:
        with self.sessions() as s:
            return list(s.scalars(select(AuditEntry).where(AuditEntry.target_id == plan_id).order_by(AuditEntry.seq)))

    def wait(self, plan_id: str, who: str = "alice", timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            body = self.client.get(f"/v1/plans/{plan_id}", headers=self.h(who)).json()
            if body["status"] in ("done", "failed"):
                return body
            time.sleep(0.05)
        raise AssertionError(f"plan {plan_id} still {body['status']} after {timeout} s")
