"""``GET /healthz``: the process is up and the database answers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from api.deps import SessionDep, SettingsDep
from api.problems import ProblemError
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(request: Request, session: SessionDep, settings: SettingsDep) -> Health:
    try:
        session.execute(text("SELECT 1"))
    except Exception:
        raise ProblemError(503, "the database does not answer") from None
    jobs = request.app.state.jobs
    return Health(status="ok", database="ok", queued_jobs=jobs.pending(), job_workers=settings.job_workers)
