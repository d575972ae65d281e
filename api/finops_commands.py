"""``commitplan savings``, ``allocate`` and ``anomalies``: the FinOps views of the ledger."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from models.errors import InputError

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def _money(x: Decimal | float | None) -> str:
    return "—" if x is None else f"{x:,.2f}"


def _share(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _table(title: str, columns: list[str]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    return t


def savings_tables(months, commitments) -> list[Table]:
    m = _table("Savings by month (on-demand equivalent = ListCost of usage; costs amortized)",
               ["month", "provider", "on-demand equiv.", "effective cost", "savings", "ESR", "coverage",
                "utilization", "unused commitment"])
    for x in months:
        m.add_row(x.month, x.provider or "", _money(x.on_demand_equivalent), _money(x.effective_cost), _money(x.savings),
                  _share(x.effective_savings_rate), _share(x.coverage), _share(x.utilization),
                  _money(x.unused_commitment_cost))
    c = _table("Savings by commitment", ["commitment", "type", "covered on-demand", "amortized cost", "savings",
                                         "utilization", "unused cost"])
    for x in commitments:
        c.add_row(x.id, x.type or "", _money(x.covered_on_demand_equivalent), _money(x.amortized_cost),
                  _money(x.savings), _share(x.utilization), _money(x.unused_cost))
    return [m, c]


def register(app: typer.Typer) -> None:
    @app.command()
    def savings(
        ledger: Annotated[Path, typer.Option(help="the ledger (a DuckDB file)")],
        plan: Annotated[Optional[Path], typer.Option(help="the approved plan JSON: realized against expected")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    ):
        """Realized savings per month and per commitment (ESR, coverage, utilization, unused cost)."""
        from billing.plan_vs_actual import plan_vs_actual
        from billing.savings import commitment_savings, monthly_savings

        try:
            months = monthly_savings(ledger)
            commitments = commitment_savings(ledger)
            versus = plan_vs_actual(ledger, plan) if plan else None
        except (InputError, FileNotFoundError, ValueError) as e:
            _fail(str(e))
        if as_json:
            print(json.dumps({
                "months": [x.to_json() for x in months],
                "commitments": [x.to_json() for x in commitments],
                "plan_vs_actual": versus.to_json() if versus else None,
            }, indent=2))
            return
        for t in savings_tables(months, commitments):
            out.print(t)
        if versus:
            t = _table(f"Plan vs actual ({versus.proration})",
                       ["month", "hours", "expected cost", "realized cost", "expected savings", "realized savings",
                        "expected ESR", "realized ESR"])
            for p in [*versus.months, versus.total]:
                t.add_row(p.month, f"{p.hours:,}", _money(p.expected.cost), _money(p.realized.cost),
                          _money(p.expected.savings), _money(p.realized.savings),
                          _share(p.expected.effective_savings_rate), _share(p.realized.effective_savings_rate))
            out.print(t)

    @app.command()
    def allocate(
        ledger: Annotated[Path, typer.Option(help="the ledger (a DuckDB file)")],
        rules: Annotated[Path, typer.Option(help="allocation rules YAML (see scenarios/examples/allocation/)")],
        month: Annotated[Optional[str], typer.Option(help="billing period YYYY-MM (default: the whole ledger)")] = None,
        currency: Annotated[Optional[str], typer.Option(help="billing currency, when the ledger holds several")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    ):
        """Showback/chargeback: amortized cost per owner, commitments to the teams they covered."""
        from billing.allocation import CATEGORIES
        from billing.allocation import allocate as run_allocation
        from billing.allocation_rules import load_rules

        try:
            result = run_allocation(ledger, load_rules(rules), month=month, currency=currency)
        except (InputError, FileNotFoundError, ValueError) as e:
            _fail(str(e))
        if as_json:
            print(result.to_json())
            return
        period = result.month or "all periods"
        t = _table(f"Allocation of {result.cost} cost, {period} ({result.currency or ''}): ledger total "
                   f"{_money(result.ledger_total)}, unallocated {_share(result.unallocated_share)}",
                   ["owner", *CATEGORIES, "total", "commitment savings"])
        for line in [*result.owners, result.unallocated, result.totals]:
            name = line.owner
            if line is result.unallocated and line.owner != "unallocated":
                name = f"{line.owner} (unallocated)"
            elif line is result.totals:
                name = "total"
            t.add_row(name, *(_money(getattr(line, c)) for c in CATEGORIES), _money(line.total),
                      _money(line.commitment_savings))
        out.print(t)

    @app.command()
    def anomalies(
        ledger: Annotated[Path, typer.Option(help="the ledger (a DuckDB file)")],
        threshold_dollars: Annotated[float, typer.Option(help="smallest daily excess over the baseline, in $")] = 100.0,
        threshold_percent: Annotated[float, typer.Option(help="smallest daily excess, in % of the baseline")] = 20.0,
        tag: Annotated[Optional[list[str]], typer.Option(help="tag keys to watch (default: owner-like keys found)")] = None,
        since: Annotated[Optional[str], typer.Option(help="report from this day (YYYY-MM-DD)")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print a JSON list of anomalies")] = False,
    ):
        """Daily spend against a seasonal baseline: spikes from their first day, with owner and causes."""
        import datetime as dt

        from billing.anomalies import Thresholds, find_anomalies

        try:
            first_day = dt.date.fromisoformat(since) if since else None
            report = find_anomalies(ledger, Thresholds(dollars=threshold_dollars, percent=threshold_percent),
                                    tag_keys=tag or None, since=first_day)
        except (InputError, FileNotFoundError, ValueError) as e:
            _fail(str(e))
        if as_json:
            print(json.dumps(report.anomalies_json(), indent=2))
            return
        out.print(escape(report.to_text()), highlight=False)
