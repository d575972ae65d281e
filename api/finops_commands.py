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
Ledger = Annotated[Path, typer.Option(help="the ledger (a DuckDB file)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
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

    pipeline_app = typer.Typer(no_args_is_help=True,
                               help="Savings pipeline: opportunity → accepted → purchased → verified (14 days in the bill).")
    app.add_typer(pipeline_app, name="pipeline")

    def _pipeline_out(items, as_json: bool) -> None:
        if as_json:
            print(json.dumps([i.to_json() for i in items], indent=2))
            return
        t = _table("Savings pipeline", ["item", "offering", "quantity", "stage", "since", "commitment",
                                        "expected $/h saved", "verified savings"])
        for i in items:
            t.add_row(str(i.item_id), i.offering, f"{i.quantity:g}", i.stage, str(i.stage_at)[:16], i.commitment_id or "",
                      _money(i.expected_hourly_savings), _money(i.verified_savings))
        out.print(t)

    def _pipeline(call, as_json: bool) -> None:
        from billing.savings_pipeline import PipelineError

        try:
            items = call()
        except (InputError, PipelineError, FileNotFoundError, ValueError) as e:
            _fail(str(e))
        _pipeline_out(items if isinstance(items, list) else [items], as_json)

    @pipeline_app.command("add")
    def pipeline_add(ledger: Ledger, plan: Annotated[Path, typer.Option(help="plan JSON")], as_json: AsJson = False):
        """One opportunity per purchase of the plan (adding the same plan again adds nothing)."""
        from billing.savings_pipeline import add_opportunities_from_plan

        _pipeline(lambda: add_opportunities_from_plan(ledger, plan), as_json)

    @pipeline_app.command("accept")
    def pipeline_accept(ledger: Ledger, item: Annotated[int, typer.Argument()], as_json: AsJson = False):
        """An opportunity finance accepted."""
        from billing.savings_pipeline import accept

        _pipeline(lambda: accept(ledger, item), as_json)

    @pipeline_app.command("purchased")
    def pipeline_purchased(ledger: Ledger, item: Annotated[int, typer.Argument()],
                           commitment: Annotated[str, typer.Option(help="the commitment's id as the bill shows it")],
                           as_json: AsJson = False):
        """An accepted item bought: link it to the commitment id the bill will show."""
        from billing.savings_pipeline import mark_purchased

        _pipeline(lambda: mark_purchased(ledger, item, commitment), as_json)

    @pipeline_app.command("verify")
    def pipeline_verify(ledger: Ledger, as_json: AsJson = False):
        """Verify purchased items whose savings show in the bill for 14 full days in a row."""
        from billing.savings_pipeline import PipelineError, verify

        try:
            checks = verify(ledger)
        except (InputError, PipelineError, FileNotFoundError, ValueError) as e:
            _fail(str(e))
        if as_json:
            print(json.dumps([c.to_json() for c in checks], indent=2))
            return
        t = _table("Verification", ["item", "commitment", "stage", "days in a row", "from", "to", "savings", "why"])
        for c in checks:
            t.add_row(str(c.item_id), c.commitment_id, c.stage, str(c.days_in_a_row), str(c.first_day or ""),
                      str(c.last_day or ""), _money(c.savings), c.reason)
        out.print(t)

    @pipeline_app.command("list")
    def pipeline_list(ledger: Ledger, as_json: AsJson = False):
        """Every item and its stage."""
        from billing.savings_pipeline import pipeline_items

        _pipeline(lambda: pipeline_items(ledger), as_json)
