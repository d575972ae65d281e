"""``commitplan prices``: provider price catalogs into the price book contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from models.errors import InputError

out = Console()
err = Console(stderr=True, soft_wrap=True)
prices_app = typer.Typer(no_args_is_help=True, help="Price catalogs: provider files into a price book.")

SHIPPED_BOOK = Path(__file__).resolve().parent.parent / "billing" / "data" / "aws_ec2_price_book.csv"


@prices_app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(help="AWS offer file / Savings Plans rate file (CSV), GCP pricing.yml, Azure export")],
    out_path: Annotated[Path, typer.Option("--out", help="price book CSV to write")],
    kind: Annotated[Optional[str], typer.Option(help="aws-offer, aws-savings-plans, gcp-pricing-yml or azure-export (default: detected)")] = None,
    allow_incomplete: Annotated[bool, typer.Option(help="drop offerings whose pools have no on-demand price instead of failing")] = False,
):
    """Import price catalogs into one price book (written only if it loads)."""
    from billing.catalogs import import_catalogs, write_price_book

    try:
        frame = import_catalogs(files, kind)
        write_price_book(frame, out_path, allow_incomplete=allow_incomplete)
    except InputError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        raise typer.Exit(2)
    pools = frame.loc[frame["kind"] == "on_demand", "pool"].nunique()
    offerings = frame.loc[frame["kind"] != "on_demand", "offering"].nunique()
    out.print(escape(f"{pools:,} pools, {offerings:,} offerings → {out_path}"), highlight=False)
    out.print(escape(f"source: {frame.attrs.get('source', '')}"), highlight=False)
    for note in frame.attrs.get("notes", [])[:20]:
        out.print(escape(f"  note: {note}"), highlight=False)


@prices_app.command("show")
def show_command(book: Annotated[Path, typer.Argument(help="price book CSV")] = SHIPPED_BOOK):
    """Where a price book's prices come from (its .source.json label); default: the shipped AWS book."""
    from billing.catalogs import read_source_label

    label = read_source_label(book)
    out.print(escape(f"{book}: {label.get('source') or 'no source label'}"), highlight=False)
    for note in label.get("notes", [])[:20]:
        out.print(escape(f"  note: {note}"), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(prices_app, name="prices")
