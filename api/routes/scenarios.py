"""What-if scenarios: overlay YAML (growth, migrations, launches, decommissions) for plans to apply.

The YAML is checked with the reader ``commitplan plan --whatif`` uses before it is stored: a bad
file is a 422 problem naming the file, line and key, and nothing is stored. A plan names a
scenario in ``POST /v1/plans`` (with ``horizon_months``) and its overlays apply to every forecast path.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

import store
from api.deps import ActorDep, IdempotencyDep, Reader, SessionDep, get_or_404
from api.problems import ProblemError, from_result
from api.schemas import Page, ScenarioCreate, ScenarioPublic
from models.errors import InputError
from scenarios.overlay_files import parse_overlays
from store import Scenario

router = APIRouter(prefix="/scenarios", tags=["scenarios"])
MAX_OFFSET = 2**31


def overlays_in(name: str, text: str) -> int:
    """How many overlays the YAML holds; an unreadable file is a 422 naming file, line and key."""
    try:
        return len(parse_overlays(text, name))
    except InputError as e:
        raise ProblemError(422, str(e), file=e.file, row=e.row, column=e.column) from None


def public(sc: Scenario, with_yaml: bool = False) -> ScenarioPublic:
    return ScenarioPublic(id=sc.id, name=sc.name, sha256=sc.sha256, overlays=overlays_in(sc.name, sc.yaml_text),
                          created_by=sc.created_by, created_at=sc.created_at,
                          yaml=sc.yaml_text if with_yaml else None)


@router.post("", status_code=201, response_model=ScenarioPublic, name="scenario.create",
             responses={403: {}, 422: {"description": "the YAML does not parse"}})
def create_scenario(body: ScenarioCreate, session: SessionDep, actor: ActorDep, idem: IdempotencyDep) -> Response:
    """Store what-if overlays (procurement, finance or admin)."""
    if actor.can("create"):  # check before the write transaction, as dataset uploads do
        overlays_in(body.name, body.yaml)

    def action() -> tuple[int, object]:
        result = store.add_scenario(session, actor, body.name, body.yaml)
        if not result.ok:
            raise from_result(result)
        return 201, public(result.value, with_yaml=True).model_dump(mode="json")

    status, out, replayed = idem.run(body.model_dump(mode="json"), action)
    headers = {"Location": f"/v1/scenarios/{out['id']}", **({"Idempotent-Replayed": "true"} if replayed else {})}
    return JSONResponse(out, status_code=status, headers=headers)


@router.get("", response_model=Page[ScenarioPublic])
def list_scenarios(session: SessionDep, actor: Reader,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50,
                   offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Page[ScenarioPublic]:
    """Newest first, without the YAML."""
    total = session.scalar(select(func.count()).select_from(Scenario)) or 0
    rows = session.scalars(select(Scenario).order_by(Scenario.created_at.desc(), Scenario.id).limit(limit).offset(offset))
    return Page(items=[public(sc) for sc in rows], total=total, limit=limit, offset=offset,
                next_offset=offset + limit if offset + limit < total else None)


@router.get("/{scenario_id}", response_model=ScenarioPublic)
def get_scenario(scenario_id: uuid.UUID, session: SessionDep, actor: Reader) -> ScenarioPublic:
    return public(get_or_404(session, Scenario, scenario_id, "scenario"), with_yaml=True)
