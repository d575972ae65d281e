"""``commitplan compare a.json b.json …``: purchase scenarios (plan JSONs) side by side.

Every figure shown is read from the plan files as written; nothing is re-billed. A plan is named by
its file stem (by its path as given when two files share a stem).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.output import money
from models import Plan

_out = Console(width=None if sys.stdout.isatty() else 140)
_err = Console(stderr=True, soft_wrap=True)


class PlanFileError(ValueError):
    """A plan file that cannot be read as a plan; the message names the file."""


def load_plan(path: Path) -> Plan:
    if not Path(path).exists():
        raise PlanFileError(f"{path}: the file does not exist")
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise PlanFileError(f"{path}: cannot read the plan file ({getattr(e, 'strerror', None) or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanFileError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    try:
        return Plan.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        more = f" (and {e.error_count() - 1} more problems)" if e.error_count() > 1 else ""
        raise PlanFileError(f"{path}: not a plan: {where}: {first['msg']}{more}") from None


def plan_names(paths: list[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    return [p.stem if stems.count(p.stem) == 1 else str(p) for p in paths]


def purchase_hourly(plan: Plan) -> float | None:
    """Amortized $/h of commitment the plan buys, from each line's ``hourly_commitment``; for plans
    written without it, a savings plan's quantity or a reservation's window cost over its active hours
    (its usage line in ``commitments``). None when a line gives no way to know."""
    held = {(c.offering, c.quantity): c for c in plan.commitments if c.source == "purchase"}
    total = 0.0
    for p in plan.purchases:
        usage = held.get((p.offering, p.quantity))
        if p.hourly_commitment is not None:
            total += p.hourly_commitment
        elif p.kind == "savings_plan":
            total += p.quantity
        elif usage is not None and usage.active_hours > 0:
            total += usage.cost / usage.active_hours
        else:
            return None
    return total


def figures(plan: Plan) -> dict[str, Any]:
    """The comparison figures of one plan, read from it (None where the plan does not carry one)."""
    s, r = plan.summary, plan.risk
    return {
        "window_start": plan.window_start.isoformat(),
        "window_hours": plan.window_hours,
        "expected_cost": s.expected_cost,
        "expected_savings": s.expected_savings,
        "effective_savings_rate": s.effective_savings_rate,
        "coverage": s.coverage,
        "utilization": s.utilization,
        "upfront_total": sum(p.upfront_cost for p in plan.purchases),
        "commitment_hourly_bought": purchase_hourly(plan),
        "savings_p10": r.savings_p10 if r else None,
        "savings_p50": r.savings_p50 if r else None,
        "savings_p90": r.savings_p90 if r else None,
        "cvar_alpha": r.alpha if r else None,
        "cvar_cost": r.cvar_cost if r else None,
        "worst_idle_commitment": r.worst_idle_commitment if r else None,
        "forecast_wape": r.forecast_wape if r else None,
    }


def purchases_by_offering(plans: dict[str, Plan]) -> list[dict[str, Any]]:
    """One row per offering bought in any plan: its kind and the quantity each plan buys (0 if none)."""
    kinds: dict[str, str] = {}
    for plan in plans.values():
        for p in plan.purchases:
            kinds.setdefault(p.offering, p.kind)
    rows = []
    for offering in sorted(kinds):
        quantities = {name: sum(p.quantity for p in plan.purchases if p.offering == offering) for name, plan in plans.items()}
        rows.append({"offering": offering, "kind": kinds[offering], "quantities": quantities})
    return rows


def comparison(paths: list[Path]) -> dict[str, Any]:
    """The machine-readable comparison of the plans in ``paths`` (raises PlanFileError)."""
    plans = {name: load_plan(path) for name, path in zip(plan_names(paths), paths)}
    return {
        "plans": [{"name": name, "path": str(path), **figures(plan)} for (name, plan), path in zip(plans.items(), paths)],
        "purchases": purchases_by_offering(plans),
    }


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2%}"


def _money(x: float | None) -> str:
    return "—" if x is None else money(x)


ROWS: list[tuple[str, str, Any]] = [
    ("window", "window_start", None),
    ("expected cost", "expected_cost", _money),
    ("expected savings", "expected_savings", _money),
    ("effective savings rate", "effective_savings_rate", _pct),
    ("coverage", "coverage", _pct),
    ("utilization", "utilization", _pct),
    ("upfront total", "upfront_total", _money),
    ("commitment bought ($/h amortized)", "commitment_hourly_bought", lambda x: "—" if x is None else f"{x:,.4f}"),
    ("savings P10", "savings_p10", _money),
    ("savings P50", "savings_p50", _money),
    ("savings P90", "savings_p90", _money),
    ("CVaR of cost", "cvar_cost", _money),
    ("worst idle commitment", "worst_idle_commitment", _money),
    ("forecast WAPE", "forecast_wape", _pct),
]
RISK_KEYS = {"savings_p10", "savings_p50", "savings_p90", "cvar_cost", "worst_idle_commitment", "forecast_wape"}


def figures_table(result: dict[str, Any]) -> Table:
    plans = result["plans"]
    t = Table(title="Plans side by side", title_justify="left")
    t.add_column("figure")
    for p in plans:
        t.add_column(p["name"], justify="right", overflow="fold")
    for label, key, fmt in ROWS:
        if key in RISK_KEYS and all(p[key] is None for p in plans):
            continue
        if key == "window_start":
            cells = [f"{p['window_start'][:16].replace('T', ' ')} +{p['window_hours']:,} h" for p in plans]
        else:
            cells = [fmt(p[key]) for p in plans]
        if key == "cvar_cost":
            alphas = {p["cvar_alpha"] for p in plans if p["cvar_alpha"] is not None}
            label = f"CVaR {alphas.pop():.0%} of cost" if len(alphas) == 1 else "CVaR of cost (α differs)"
        t.add_row(label, *cells)
    return t


def purchases_table(result: dict[str, Any]) -> Table:
    names = [p["name"] for p in result["plans"]]
    t = Table(title="Purchases per offering", title_justify="left")
    t.add_column("offering", overflow="fold")
    t.add_column("unit")
    for name in names:
        t.add_column(name, justify="right", overflow="fold")
    for row in result["purchases"]:
        t.add_row(row["offering"], "$/h" if row["kind"] == "savings_plan" else "units",
                  *[f"{row['quantities'][n]:g}" if row["quantities"][n] else "—" for n in names])
    return t


def register(app: typer.Typer) -> None:
    """Add the ``compare`` command to ``app``."""

    @app.command()
    def compare(
        plans: Annotated[list[Path], typer.Argument(help="plan JSON files (from plan --out)", show_default=False)],
        as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
    ) -> None:
        """Compare purchase scenarios (plan JSONs) side by side: figures, risk and purchases per offering."""
        try:
            result = comparison(plans)
        except PlanFileError as e:
            _err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
            raise typer.Exit(2) from None
        if as_json:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
            return
        _out.print(figures_table(result))
        if result["purchases"]:
            _out.print(purchases_table(result))
        else:
            _out.print("No plan buys anything.")
