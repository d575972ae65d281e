"""The UI's service layer: the store, job and reader functions the HTTP API calls, nothing of its own.

Pages call these and render what comes back; they hold no business logic. Every rule (who may
upload, create, submit or decide; what a dataset must look like; what a plan costs) is enforced by
the same code the API runs: :mod:`store` for the workflow and audit log, :func:`api.routes.datasets.check_upload`
for uploads, :func:`api.jobs.run_one` for solves, :mod:`scenarios.overlay_files` for what-ifs and
:mod:`api.compare_command` for side-by-side figures. Ledger views live in :mod:`ui.ledger`.

A refused operation raises :class:`UIError` carrying the store's or reader's own reason.
"""

from __future__ import annotations

import getpass
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import store
from api.compare_command import RISK_KEYS, ROWS, figures, purchases_by_offering
from models import Plan as PlanModel
from models.errors import InputError
from models.policy import Policy
from store import Actor, Dataset, DatasetKind, Plan, Role, Scenario

DEMO_DIR = Path(__file__).resolve().parent.parent / "scenarios" / "examples" / "demo"
WHATIF_EXAMPLES = Path(__file__).resolve().parent.parent / "scenarios" / "examples"


class UIError(Exception):
    """An operation was refused or its input is wrong; the message says why, for the page to show."""


@lru_cache(maxsize=8)
def _sessions(url: str) -> sessionmaker[Session]:
    return store.connect(url)  # migrates once per database per process


def sessions() -> sessionmaker[Session]:
    """Sessions on the configured database (``store.database_url()``: SQLite in the data dir by default)."""
    return _sessions(store.database_url())


def anonymous() -> Actor:
    """Who acts before signing in: the local user, with procurement's rights (prepare and submit, never decide).

    The CLI treats whoever opens the database as its admin; a browser tab is not that trusted, so
    deciding takes a key (:func:`sign_in`)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        user = "ui"
    return Actor(f"local:{user}", Role.PROCUREMENT)


def sign_in(token: str) -> Actor:
    """The actor of a live API key (``store.authenticate``); UIError for an unknown or revoked one."""
    with sessions()() as s:
        key = store.authenticate(s, token or "")
        if key is None:
            raise UIError("unknown or revoked API key (create one with `commitplan keys create`)")
        return Actor.of(key)


def actor_for(token: str | None) -> Actor:
    """The signed-in key's actor, re-checked on every run (a revoked key stops working at once)."""
    return sign_in(token) if token else anonymous()


def _refused(result: store.Result[Any]) -> None:
    if not result.ok:
        raise UIError(f"refused ({result.outcome.value}): {result.reason}")


# -- datasets ---------------------------------------------------------------------------------------

def validate_upload(kind: str, name: str, content: bytes) -> Any:
    """Parse the file as the API and the CLI do and return what the reader made of it (None for a
    bill); UIError naming file, row and column."""
    from api.routes.datasets import check_upload

    if not content:
        raise UIError(f"{name}: the file is empty")
    try:
        return check_upload(DatasetKind(kind), name, content)
    except InputError as e:
        raise UIError(str(e)) from None


def upload(actor: Actor, kind: str, name: str, content: bytes) -> dict[str, Any]:
    """Check and store a dataset (``store.add_dataset``); a bill is also ingested into the ledger."""
    report = parsed = None
    if actor.can("create"):  # as the API: parse before the write transaction (else the store refuses, audited)
        parsed = validate_upload(kind, name, content)
        if kind == DatasetKind.BILLING.value:
            from ui import ledger
            report = ledger.ingest_bytes(name, content)  # all or nothing; UIError before anything is stored
    with sessions()() as s:
        media = "application/vnd.apache.parquet" if name.endswith(".parquet") else (
            "application/gzip" if content[:2] == b"\x1f\x8b" else "text/csv")
        result = store.add_dataset(s, actor, kind, name, content, media)
        _refused(result)
        info = _dataset_row(result.value)
    return {**info, "reconciliation": report if report is not None else describe(kind, parsed)}


def use_sample(actor: Actor, pools: int | None = None, days: int | None = None, seed: int = 1) -> list[dict[str, Any]]:
    """Store the shipped demo estate (``commitplan demo``'s files), or a generated one of ``pools`` × ``days``."""
    if pools is None:
        files = [("usage", DEMO_DIR / "usage.csv.gz"), ("prices", DEMO_DIR / "prices.csv")]
        return [upload(actor, kind, f"demo/{p.name}", p.read_bytes()) for kind, p in files]
    from scenarios.sample_estate import generate_estate

    with tempfile.TemporaryDirectory(prefix="commitplan-sample-") as tmp:
        paths = generate_estate(pools, days or 30, seed).write(tmp)
        stem = f"sample-{pools}x{days}-seed{seed}"
        return [upload(actor, kind, f"{stem}/{paths[kind].name}", paths[kind].read_bytes()) for kind in ("usage", "prices")]


def _dataset_row(d: Dataset) -> dict[str, Any]:
    return {"id": str(d.id), "kind": d.kind, "name": d.name, "size": d.size, "sha256": d.sha256[:12],
            "created_by": d.created_by, "created_at": d.created_at}


def datasets(kind: str | None = None) -> list[dict[str, Any]]:
    """Stored datasets, newest first (without their bytes)."""
    with sessions()() as s:
        where = [Dataset.kind == kind] if kind else []
        return [_dataset_row(d) for d in s.scalars(select(Dataset).where(*where).order_by(Dataset.created_at.desc()))]


def content(dataset_id: str) -> bytes:
    with sessions()() as s:
        return store.dataset_content(s, uuid.UUID(dataset_id)) or b""


def describe(kind: str, parsed: Any) -> dict[str, Any]:
    """What the readers made of a file (``parsed``): the figures to check it against its source."""
    if kind == "usage":
        return {"pools": len(parsed.pools), "hours": parsed.hours, "window_start": parsed.start.isoformat(),
                "window_end": parsed.end.isoformat(), "total_quantity": float(parsed.values.sum())}
    if kind == "prices":
        kinds = pd.Series([o.kind.value for o in parsed.offerings.values()]).value_counts().to_dict()
        return {"pools_with_on_demand_rate": len(parsed.on_demand), "offerings": len(parsed.offerings), **kinds}
    if kind == "commitments":
        return {"commitments": len(parsed), "total_quantity": float(sum(c.quantity for c in parsed))}
    return {}


def usage_frame(dataset_id: str, freq: str = "D") -> pd.DataFrame:
    """Usage per pool summed per ``freq`` period, long form (period, pool, quantity) for a chart."""
    m = validate_upload("usage", f"usage dataset {dataset_id}", content(dataset_id))
    index = pd.date_range(m.start, periods=m.hours, freq="h")
    wide = pd.DataFrame(m.values, index=index, columns=list(m.pools)).resample(freq).sum()
    return wide.rename_axis("period").reset_index().melt("period", var_name="pool", value_name="quantity")


def current_bill(usage_id: str, prices_id: str, commitments_id: str | None) -> dict[str, Any]:
    """The hour-by-hour bill (``solver.simulator``, as ``commitplan bill``) of the usage under the
    commitments already held: today's coverage and utilization, and each commitment's."""
    from api.jobs import read_inputs
    from solver.simulator import simulate_bill

    names = {"usage": f"usage dataset {usage_id}", "prices": f"prices dataset {prices_id}",
             "commitments": f"commitments dataset {commitments_id}"}
    with tempfile.TemporaryDirectory(prefix="commitplan-ui-") as tmp:
        try:
            matrix, book, held, _ = read_inputs(Path(tmp), content(usage_id), content(prices_id),
                                                content(commitments_id) if commitments_id else None, names)
        except InputError as e:
            raise UIError(str(e)) from None
    return simulate_bill(matrix, book, held, []).model_dump(mode="json")


# -- scenarios ---------------------------------------------------------------------------------------

def check_overlays(name: str, text: str) -> int:
    """How many overlays the YAML holds (the reader of ``plan --whatif``); UIError naming line and key."""
    from scenarios.overlay_files import parse_overlays

    try:
        return len(parse_overlays(text, name))
    except InputError as e:
        raise UIError(str(e)) from None


def add_scenario(actor: Actor, name: str, text: str) -> dict[str, Any]:
    if actor.can("create"):
        check_overlays(name, text)
    with sessions()() as s:
        result = store.add_scenario(s, actor, name, text)
        _refused(result)
        return _scenario_row(result.value)


def _scenario_row(sc: Scenario) -> dict[str, Any]:
    return {"id": str(sc.id), "name": sc.name, "sha256": sc.sha256[:12], "created_by": sc.created_by,
            "created_at": sc.created_at}


def scenarios() -> list[dict[str, Any]]:
    with sessions()() as s:
        return [_scenario_row(sc) for sc in s.scalars(select(Scenario).order_by(Scenario.created_at.desc()))]


def scenario_yaml(scenario_id: str) -> str:
    with sessions()() as s:
        sc = s.get(Scenario, uuid.UUID(scenario_id))
        return sc.yaml_text if sc else ""


def example_whatifs() -> dict[str, str]:
    """The shipped what-if overlay files, by name."""
    return {p.name: p.read_text() for p in sorted(WHATIF_EXAMPLES.glob("*.yaml"))}


# -- plans ------------------------------------------------------------------------------------------

def policy(**limits: Any) -> dict[str, Any]:
    """The policy dict for these limits (None = no limit), checked by :class:`models.policy.Policy`."""
    given = {k: v for k, v in limits.items() if v is not None}
    try:
        return Policy(**given).model_dump(mode="json", exclude_defaults=True)
    except ValidationError as e:
        first = e.errors()[0]
        raise UIError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def create_and_solve(actor: Actor, name: str, usage_id: str, prices_id: str, commitments_id: str | None = None,
                     limits: dict[str, Any] | None = None, horizon_months: int | None = None,
                     scenario_id: str | None = None, on_status: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Create the plan (``store.create_plan``) and solve it now with the API's worker code (``api.jobs.run_one``)."""
    from api.jobs import run_one

    if scenario_id and not horizon_months:
        raise UIError("a what-if scenario applies to a forecast: set the horizon in months too")
    say = on_status or (lambda _msg: None)
    with sessions()() as s:
        result = store.create_plan(s, actor, name, uuid.UUID(usage_id), uuid.UUID(prices_id),
                                   uuid.UUID(commitments_id) if commitments_id else None,
                                   scenario_id=uuid.UUID(scenario_id) if scenario_id else None,
                                   policy=limits or None, horizon_months=horizon_months or None)
        _refused(result)
        pid = result.value.id
    say(f"plan {pid} queued; solving")
    started = time.monotonic()
    status = run_one(sessions(), pid)
    say(f"{status} in {time.monotonic() - started:.1f} s")
    return plan(str(pid))


def _plan_row(p: Plan) -> dict[str, Any]:
    return {"id": str(p.id), "name": p.name, "status": p.status, "approval": p.approval, "created_by": p.created_by,
            "created_at": p.created_at, "submitted_by": p.submitted_by, "decided_by": p.decided_by,
            "horizon_months": p.horizon_months, "scenario_id": str(p.scenario_id) if p.scenario_id else None}


def plans(approval: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """Plans newest first, without results."""
    with sessions()() as s:
        where = [c for c in (Plan.approval == approval if approval else None,
                             Plan.status == status if status else None) if c is not None]
        return [_plan_row(p) for p in s.scalars(select(Plan).where(*where).order_by(Plan.created_at.desc()))]


def plan(plan_id: str) -> dict[str, Any]:
    """One plan: its row, policy, error and plan JSON (None until done)."""
    with sessions()() as s:
        p = s.get(Plan, uuid.UUID(plan_id))
        if p is None:
            raise UIError(f"no plan {plan_id}")
        return {**_plan_row(p), "policy": p.policy, "error": p.error, "decision_comment": p.decision_comment,
                "content_hash": p.content_hash, "result": p.result}


def submit(actor: Actor, plan_id: str) -> dict[str, Any]:
    with sessions()() as s:
        _refused(store.submit(s, plan_id, actor))
    return plan(plan_id)


def decide(actor: Actor, plan_id: str, approve: bool, comment: str) -> dict[str, Any]:
    """Approve or reject (``store.decide``); a rejection says why, as the API requires."""
    if not approve and not comment.strip():
        raise UIError("comment: say why the plan is rejected")
    with sessions()() as s:
        _refused(store.decide(s, plan_id, actor, approve, comment.strip()))
    return plan(plan_id)


def audit(plan_id: str) -> list[dict[str, Any]]:
    """The plan's audit entries, oldest first, refused attempts included (as ``GET …/audit``)."""
    with sessions()() as s:
        _, rows = store.audit_entries(s, "plan", plan_id)
        return [{"seq": e.seq, "at": e.at, "actor": e.actor, "role": e.actor_role, "action": e.action,
                 "outcome": e.outcome, "detail": e.detail_obj, "entry_hash": e.entry_hash[:16]} for e in rows]


def verify_chain() -> dict[str, Any]:
    """``commitplan audit verify``: the hash chain is intact and approved plans unchanged."""
    with sessions()() as s:
        return {**store.verify(s).to_dict(), "approved_plan_problems": store.verify_approved(s)}


def compare(plan_ids: list[str]) -> dict[str, Any]:
    """Finished plans side by side: ``commitplan compare``'s figures and purchases per offering."""
    named: dict[str, PlanModel] = {}
    for pid in plan_ids:
        p = plan(pid)
        if p["result"] is None:
            raise UIError(f"plan {p['name']} is {p['status']}: it has no result to compare")
        named[f"{p['name']} ({pid[:8]})"] = PlanModel.model_validate(p["result"])
    rows = [{"name": n, **figures(m)} for n, m in named.items()]
    return {"plans": rows, "purchases": purchases_by_offering(named), "table": _compare_table(rows)}


def _compare_table(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The figures as ``commitplan compare`` prints them (its labels and formats), one row per figure."""
    table = []
    for label, key, fmt in ROWS:
        if key == "window_start" or (key in RISK_KEYS and all(r[key] is None for r in rows)):
            continue
        table.append({"figure": label, **{r["name"]: fmt(r[key]) for r in rows}})
    return table
