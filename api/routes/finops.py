"""Reads of the FinOps views over the server's ledger (``COMMITPLAN_LEDGER``, built by ``commitplan ingest``):
realized savings (overall and against a stored plan), allocation (showback) and anomalies.

The bodies are the JSON the CLI prints with ``--json`` for the same views (``commitplan savings``,
``allocate``, ``anomalies``): one format for both.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Reader, SessionDep, SettingsDep, get_or_404
from api.problems import ProblemError
from api.settings import Settings
from models.errors import InputError
from store import Plan

router = APIRouter(tags=["finops"])


def _ledger(settings: Settings) -> Path:
    if settings.ledger_path is None:
        raise ProblemError(404, "this server has no ledger: start it with COMMITPLAN_LEDGER set to a ledger "
                           "built by `commitplan ingest`")
    if not settings.ledger_path.exists():
        raise ProblemError(404, f"the configured ledger {settings.ledger_path.name} does not exist yet: ingest a "
                           "bill first (`commitplan ingest`)")
    return settings.ledger_path


def _bad_input(e: Exception) -> ProblemError:
    extra = {"row": e.row, "column": e.column} if isinstance(e, InputError) else {}
    return ProblemError(422, str(e), **extra)


@router.get("/savings")
def savings(settings: SettingsDep, actor: Reader) -> dict[str, Any]:
    """Realized savings per month and per commitment (ESR, coverage, utilization, unused cost)."""
    from billing.savings import commitment_savings, monthly_savings

    ledger = _ledger(settings)
    try:
        return {"months": [x.to_json() for x in monthly_savings(ledger)],
                "commitments": [x.to_json() for x in commitment_savings(ledger)]}
    except (InputError, ValueError) as e:
        raise _bad_input(e) from None


@router.get("/plans/{plan_id}/savings")
def plan_savings(plan_id: uuid.UUID, session: SessionDep, settings: SettingsDep, actor: Reader) -> dict[str, Any]:
    """The plan's expected figures against what the ledger realized over its window (prorated)."""
    from billing.plan_vs_actual import plan_vs_actual

    plan = get_or_404(session, Plan, plan_id, "plan")
    if plan.result_json is None:
        raise ProblemError(409, f"the plan is {plan.status}: it has no result to compare yet")
    ledger = _ledger(settings)
    with tempfile.TemporaryDirectory(prefix="commitplan-plan-") as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(plan.result_json)
        try:
            return plan_vs_actual(ledger, path).to_json()
        except (InputError, ValueError) as e:
            raise _bad_input(e) from None


@router.get("/allocation")
def allocation(settings: SettingsDep, actor: Reader,
               month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")] = None,
               currency: Annotated[str | None, Query(max_length=3)] = None) -> dict[str, Any]:
    """Showback: amortized cost per owner by the server's allocation rules (``COMMITPLAN_ALLOCATION_RULES``)."""
    from billing.allocation import allocate
    from billing.allocation_rules import load_rules

    ledger = _ledger(settings)
    if settings.allocation_rules is None:
        raise ProblemError(404, "this server has no allocation rules: set COMMITPLAN_ALLOCATION_RULES to a rules YAML")
    try:
        return json.loads(allocate(ledger, load_rules(settings.allocation_rules), month=month,
                                   currency=currency).to_json())
    except (InputError, ValueError) as e:
        raise _bad_input(e) from None


@router.get("/anomalies")
def anomalies(settings: SettingsDep, actor: Reader,
              threshold_dollars: Annotated[float, Query(ge=0)] = 100.0,
              threshold_percent: Annotated[float, Query(ge=0)] = 20.0,
              since: dt.date | None = None,
              tag: Annotated[list[str] | None, Query()] = None) -> list[dict[str, Any]]:
    """Daily spend against a seasonal baseline: spikes from their first day, with likely owner and causes."""
    from billing.anomalies import Thresholds, find_anomalies

    ledger = _ledger(settings)
    try:
        report = find_anomalies(ledger, Thresholds(dollars=threshold_dollars, percent=threshold_percent),
                                tag_keys=tag or None, since=since)
    except (InputError, ValueError) as e:
        raise _bad_input(e) from None
    return report.anomalies_json()
