"""The UI's ledger services: ingest a bill, and the savings, allocation and anomaly views over it.

The same functions ``commitplan ingest|savings|allocate|anomalies`` and ``GET /v1/savings|allocation|
anomalies`` call, returning the same JSON. The ledger is ``COMMITPLAN_LEDGER`` when set (as for
the API), else ``ledger.duckdb`` in the data directory, so the UI works with nothing set up.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import store
from models.errors import InputError
from ui.service import UIError

REPO = Path(__file__).resolve().parent.parent
SAMPLE_BILLS = REPO / "tests" / "data" / "focus12"
"""Synthetic FOCUS 1.2 bills (AWS, Azure, GCP) shipped in the repository: the sample the ledger pages start from."""
RULES_DIR = REPO / "scenarios" / "examples" / "allocation"


def ledger_path() -> Path:
    return Path(os.environ.get("COMMITPLAN_LEDGER") or store.data_dir() / "ledger.duckdb")


def has_ledger() -> bool:
    return ledger_path().exists()


def _safe_name(name: str) -> str:
    base = Path(name).name or "bill.csv"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)


def _reconciliation(reports: list) -> dict[str, Any]:
    from api.ledger_commands import ingest_json

    return ingest_json(reports)


def ingest_bytes(name: str, content: bytes, replace: bool = False) -> dict[str, Any]:
    """Ingest one export (FOCUS, CUR, GCP, Azure) into the ledger, all or nothing; its reconciliation:
    rows and BilledCost/EffectiveCost/ListCost loaded beside the file's own sums, and rejected rows."""
    from billing.ingest import ingest

    with tempfile.TemporaryDirectory(prefix="commitplan-bill-") as tmp:
        path = Path(tmp) / _safe_name(name)
        path.write_bytes(content)
        try:
            reports = ingest([path], ledger_path(), replace=replace)
        except (InputError, ValueError) as e:
            raise UIError(str(e).replace(str(path), name)) from None
    out = _reconciliation(reports)
    for f in out["files"]:
        f["file"] = name
    for r in out["rejected"]:
        r["file"] = name
    return out


def sample_bills() -> list[Path]:
    return sorted(SAMPLE_BILLS.glob("focus12_*.csv"))


def ingest_sample() -> dict[str, Any]:
    """Ingest the shipped sample bills (loading them twice changes nothing: files are known by SHA-256)."""
    from billing.ingest import ingest

    files = sample_bills()
    if not files:
        raise UIError(f"the sample bills are not here ({SAMPLE_BILLS}): upload a bill instead")
    try:
        return _reconciliation(ingest(files, ledger_path()))
    except (InputError, ValueError) as e:
        raise UIError(str(e)) from None


def _need_ledger() -> Path:
    if not has_ledger():
        raise UIError("no ledger yet: load a bill on the Data page (or the sample bills)")
    return ledger_path()


def savings() -> dict[str, Any]:
    """Realized savings per month and per commitment (as ``GET /v1/savings``)."""
    from billing.savings import commitment_savings, monthly_savings

    ledger = _need_ledger()
    try:
        return {"months": [x.to_json() for x in monthly_savings(ledger)],
                "commitments": [x.to_json() for x in commitment_savings(ledger)]}
    except (InputError, ValueError) as e:
        raise UIError(str(e)) from None


def rule_files() -> dict[str, str]:
    """Allocation rules: ``COMMITPLAN_ALLOCATION_RULES`` when set, then the shipped examples."""
    files = sorted(RULES_DIR.glob("*.yaml"), key=lambda p: (p.name != "focus12_spread.yaml", p.name))
    configured = os.environ.get("COMMITPLAN_ALLOCATION_RULES")
    if configured:
        files.insert(0, Path(configured))
    return {p.name: p.read_text() for p in files if p.exists()}


def allocation(rules_text: str, rules_name: str, month: str | None = None) -> dict[str, Any]:
    """Showback by these rules (as ``GET /v1/allocation``); the rules are checked by their own reader."""
    from billing.allocation import allocate
    from billing.allocation_rules import parse_rules

    ledger = _need_ledger()
    try:
        rules = parse_rules(rules_text, rules_name)
        return json.loads(allocate(ledger, rules, month=month or None).to_json())
    except (InputError, ValueError) as e:
        raise UIError(str(e)) from None


def anomalies(dollars: float = 100.0, percent: float = 20.0) -> dict[str, Any]:
    """Spend anomalies against the seasonal baseline (``commitplan anomalies --json`` plus its header facts)."""
    from billing.anomalies import Thresholds, find_anomalies

    ledger = _need_ledger()
    try:
        return find_anomalies(ledger, Thresholds(dollars=dollars, percent=percent)).to_json()
    except (InputError, ValueError) as e:
        raise UIError(str(e)) from None
