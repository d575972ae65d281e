"""``GET /v1/audit/verify`` (admin): the hash chain is intact and approved plans are unchanged."""

from __future__ import annotations

from fastapi import APIRouter

import store
from api.deps import Admin, SessionDep
from api.schemas import VerifyPublic

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/verify", response_model=VerifyPublic)
def verify(session: SessionDep, actor: Admin) -> VerifyPublic:
    result = store.verify(session)
    return VerifyPublic(**result.to_dict(), approved_plan_problems=store.verify_approved(session))
