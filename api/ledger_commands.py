"""``commitplan ingest`` and ``commitplan pools``: billing exports into the ledger, the ledger out
as the planner's usage and existing commitments."""

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

from billing.ingest import MEASURES, FileReport
from models.errors import InputError

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def _cents(x: Decimal) -> str:
    return f"{x:,.2f}"


def ingest_json(reports: list[FileReport]) -> dict:
    """``{"providers": {NAME: {"rows", "BilledCost", "EffectiveCost", "ListCost"}}, "rejected": [...]}``:
    totals of what this command loaded (files already loaded count as loaded before, not now)."""
    providers: dict[str, dict] = {}
    for report in reports:
        for period in report.periods:
            entry = providers.setdefault(period.provider, {"rows": 0, **{m: Decimal(0) for m in MEASURES}})
            entry["rows"] += period.rows
            for m in MEASURES:
                entry[m] += period.sums[m]
    return {
        "providers": {
            name: {"rows": e["rows"], **{m: float(round(e[m], 2)) for m in MEASURES},
                   "exact": {m: format(e[m].normalize(), "f") for m in MEASURES}}
            for name, e in sorted(providers.items())
        },
        "files": [
            {"file": r.file, "format": r.format, "status": r.status, "ingest_id": r.ingest_id,
             "rows_read": r.rows_read, "rows_loaded": r.rows_loaded, "replaced_ingests": r.replaced,
             "source": {m: format(v.normalize(), "f") for m, v in r.source.items()},
             "periods": [{"provider": p.provider, "billing_period_start": p.billing_period_start, "rows": p.rows,
                          **{m: format(p.sums[m].normalize(), "f") for m in MEASURES}} for p in r.periods]}
            for r in reports
        ],
        "rejected": [
            {"file": x.file, "row": x.row, "column": x.column, "value": x.value, "reason": x.reason}
            for r in reports for x in r.rejected
        ],
    }


def _ingest_table(reports: list[FileReport]) -> Table:
    t = Table(title="Loaded into the ledger (sums tie to each file's own, to the cent)", title_justify="left")
    for col in ("file", "provider", "billing period", "rows", "rejected", "BilledCost", "EffectiveCost", "ListCost", "source tie"):
        t.add_column(col, justify="left" if col in ("file", "provider", "billing period", "source tie") else "right")
    for r in reports:
        name = Path(r.file).name
        if r.status == "unchanged":
            t.add_row(name, "", "", f"{r.rows_loaded:,}", "", "", "", "", "already loaded: unchanged")
            continue
        tie = ", ".join(f"{m} {_cents(v)}" for m, v in r.source.items())
        for i, p in enumerate(r.periods):
            t.add_row(name if i == 0 else "", p.provider, p.billing_period_start, f"{p.rows:,}",
                      f"{len(r.rejected):,}" if i == 0 else "",
                      *(_cents(p.sums[m]) for m in MEASURES), f"source {tie}" if i == 0 else "")
    return t


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        files: Annotated[list[Path], typer.Argument(help="billing exports: FOCUS (CSV/Parquet), AWS CUR, GCP, Azure")],
        ledger: Annotated[Path, typer.Option(help="the ledger (a DuckDB file; created if missing)")],
        replace: Annotated[bool, typer.Option(help="replace earlier files whose charges these overlap")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    ):
        """Load billing exports into the ledger, all or nothing; report what loaded and what was rejected."""
        from billing.ingest import ingest as run_ingest

        try:
            reports = run_ingest(files, ledger, replace=replace,
                                 progress=None if as_json else (lambda m: err.print(escape(m), highlight=False)))
        except (InputError, FileNotFoundError) as e:
            _fail(f"{e} (the ledger is unchanged)")
        if as_json:
            print(json.dumps(ingest_json(reports), indent=2))
            return
        out.print(_ingest_table(reports))
        for r in reports:
            for x in r.rejected:
                out.print(escape(f"rejected: {x.file}, row {x.row}, column '{x.column}': {x.reason}"), highlight=False)

    @app.command("export")
    def export_command(
        ledger: Annotated[Path, typer.Option(help="the ledger (a DuckDB file)")],
        out_path: Annotated[Path, typer.Option("--out", help="FOCUS 1.2 file to write")],
        file_format: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
    ):
        """Write the ledger as FOCUS 1.2 (the columns it fills)."""
        from billing.focus_export import export_focus

        if file_format not in ("csv", "parquet"):
            _fail("--format must be csv or parquet")
        try:
            result = export_focus(ledger, out_path, file_format)
        except FileNotFoundError as e:
            _fail(str(e))
        out.print(f"{result.rows:,} rows, {len(result.columns)} FOCUS 1.2 columns → {out_path}")
        for column, why in result.left_out.items():
            out.print(escape(f"  not written: {column} ({why})"), highlight=False)

    @app.command()
    def pools(
        ledger: Annotated[Path, typer.Option(help="the ledger (a DuckDB file)")],
        out_path: Annotated[Path, typer.Option("--out", help="usage CSV to write (timestamp,pool,quantity)")],
        existing_out: Annotated[Optional[Path], typer.Option(help="existing-commitments CSV to write")] = None,
        prices: Annotated[Optional[Path], typer.Option(help="price book: name each existing commitment's offering")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    ):
        """Aggregate the ledger to hourly usage per commitment pool (and the commitments it shows)."""
        from billing.commitments_from_bill import (
            commitments_in,
            match_offerings,
            write_existing,
        )
        from billing.pools import export_pools
        from models.readers import read_price_book

        try:
            report = export_pools(ledger, out_path)
            commitments = commitments_in(ledger) if existing_out else []
            if existing_out:
                if prices:
                    commitments = match_offerings(commitments, read_price_book(prices))
                write_existing(commitments, existing_out)
        except (InputError, FileNotFoundError) as e:
            _fail(str(e))
        if as_json:
            print(json.dumps({
                "usage_csv": str(out_path), "first_hour": report.first_hour, "last_hour": report.last_hour,
                "pools": [{"pool": p.pool, "hours": p.hours, "quantity": float(p.quantity),
                           "spread_from_daily_share": p.spread_share} for p in report.pools],
                "uncovered": [{"provider": u.provider, "service": u.service, "rows": u.rows,
                               "EffectiveCost": float(u.effective_cost)} for u in report.uncovered],
                "existing": [{"commitment_id": c.id, "offering": c.offering, "quantity": float(c.quantity),
                              "unit": c.unit, "utilization": c.utilization} for c in commitments],
            }, indent=2))
            return
        t = Table(title=f"{len(report.pools)} pools, {report.first_hour} to {report.last_hour} → {out_path}",
                  title_justify="left")
        for col in ("pool", "hours", "usage", "spread from daily rows"):
            t.add_column(col, justify="left" if col == "pool" else "right")
        for p in report.pools:
            t.add_row(p.pool, f"{p.hours:,}", f"{p.quantity:,.2f}", f"{p.spread_share:.0%}")
        out.print(t)
        if report.uncovered:
            u = Table(title="Usage no commitment covers (not in the usage CSV)", title_justify="left")
            for col in ("provider", "service", "rows", "EffectiveCost"):
                u.add_column(col, justify="left" if col in ("provider", "service") else "right")
            for x in report.uncovered:
                u.add_row(x.provider, x.service, f"{x.rows:,}", _cents(x.effective_cost))
            out.print(u)
        if existing_out:
            out.print(f"{len(commitments)} existing commitments → {existing_out}")
