"""The ``commitplan`` command line: thin over the readers, the planner and the bill simulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.output import bill_table, print_plan, write_atomically
from models.errors import InputError, PlanningError
from models.policy import load_policy
from models.readers import (
    read_existing,
    read_price_book,
    read_purchases_from_plan,
    read_usage,
)
from solver.backends import BACKENDS

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Size cloud commitments exactly from hourly usage.")
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True)

DEMO_DIR = Path(__file__).resolve().parent.parent / "scenarios" / "examples" / "demo"


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _load(usage: Path, prices: Path, existing: Optional[Path]):
    book = read_price_book(prices)
    matrix = read_usage(usage, known_pools=set(book.on_demand))
    held = read_existing(existing, book) if existing else []
    return matrix, book, held


def _solve_with_progress(usage, book, held, backend: str, method: str, gap: float, policy=None):
    from solver.planner import plan_for_usage

    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), TextColumn("gap {task.fields[gap]}"),
        TimeElapsedColumn(), console=err, transient=True,
    ) as bar:
        task = bar.add_task(f"solving {len(usage.pools)} pools × {usage.hours:,} hours", total=1.0, gap="—")

        def progress(iteration: int, lower: float, upper: float) -> None:
            g = (upper - lower) / max(abs(upper), 1e-12)
            done = 0.0 if g == float("inf") else min(1.0, max(0.0, 1 - (max(g, gap) / 1.0) ** 0.25))
            bar.update(task, completed=done, gap=f"{g:.1e}")

        return plan_for_usage(usage, book, held, backend=backend, method=method, gap=gap, progress=progress, policy=policy)


@app.command()
def plan(
    prices: Annotated[Path, typer.Option(help="price book CSV")],
    usage: Annotated[Optional[Path], typer.Option(help="usage CSV to optimize for exactly (timestamp,pool,quantity)")] = None,
    history: Annotated[Optional[Path], typer.Option(help="usage history CSV to forecast from (instead of --usage)")] = None,
    horizon_months: Annotated[int, typer.Option(min=1, help="with --history: months to plan ahead")] = 12,
    whatif: Annotated[Optional[Path], typer.Option(help="with --history: what-if overlays YAML")] = None,
    scenarios: Annotated[int, typer.Option(min=1, help="with --history: forecast scenarios")] = 20,
    seed: Annotated[int, typer.Option(help="with --history: forecast seed")] = 0,
    sample_per_month: Annotated[Optional[int], typer.Option(min=0, help="with --history: optimize on this many hours per scenario and month (default: 48 on large plans; 0: all hours); figures are billed on all hours")] = None,
    risk_weight: Annotated[Optional[float], typer.Option(min=0.0, help="with --history: weight of CVaR of cost in the objective (overrides the policy)")] = None,
    alpha: Annotated[float, typer.Option(min=0.0, max=0.999, help="with --history: CVaR confidence level")] = 0.95,
    policy: Annotated[Optional[Path], typer.Option(help="policy YAML: allowed kinds/terms/payments, upfront budget, 3-year share, risk")] = None,
    existing: Annotated[Optional[Path], typer.Option(help="existing commitments CSV")] = None,
    backend: Annotated[str, typer.Option(help="LP solver: highs, ortools or cbc")] = "highs",
    method: Annotated[str, typer.Option(help="decomposition (fast, exact) or naive (pool-hour LP)")] = "decomposition",
    gap: Annotated[float, typer.Option(min=0.0, help="certified relative optimality gap to stop at")] = 1e-6,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="write the plan JSON here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan JSON instead of tables")] = False,
) -> None:
    """Find the purchases that minimize the cost of exactly --usage, or of a forecast from --history."""
    if backend not in BACKENDS:
        _fail(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if (usage is None) == (history is None):
        _fail("give exactly one of --usage (optimize for this usage) and --history (forecast, then optimize)")
    try:
        rules = load_policy(policy) if policy else None
        if usage is not None:
            matrix, book, held = _load(usage, prices, existing)
            result = _solve_with_progress(matrix, book, held, backend, method, gap, rules)
        else:
            from solver.risk import RiskSpec
            from solver.future_plan import plan_for_history

            matrix, book, held = _load(history, prices, existing)
            with err.status(f"forecasting {scenarios} scenarios and optimizing over them"):
                risk = RiskSpec(alpha=alpha, weight=risk_weight) if risk_weight is not None else None
                result = plan_for_history(
                    matrix, book, horizon_months, held, whatif, scenarios, seed, risk, backend, max(gap, 1e-5), rules,
                    sample_per_month=sample_per_month,
                )
    except (InputError, PlanningError, ValueError) as e:
        _fail(str(e))
    text = result.model_dump_json(indent=2)
    if out_path:
        write_atomically(out_path, text + "\n")
    if as_json:
        sys.stdout.write(text + "\n")
    else:
        print_plan(out, result)
        if out_path:
            out.print(f"plan written to {escape(str(out_path))}", highlight=False)


@app.command()
def bill(
    usage: Annotated[Path, typer.Option(help="canonical usage CSV")],
    prices: Annotated[Path, typer.Option(help="price book CSV")],
    plan_path: Annotated[Path, typer.Option("--plan", help="plan JSON whose purchases to bill")],
    existing: Annotated[Optional[Path], typer.Option(help="existing commitments CSV")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON object")] = False,
) -> None:
    """Bill usage hour by hour under existing commitments plus a plan's purchases."""
    from solver.simulator import simulate_bill

    try:
        matrix, book, held = _load(usage, prices, existing)
        purchases = read_purchases_from_plan(plan_path)
        unknown = sorted({p.offering for p in purchases} - set(book.offerings))
        if unknown:
            raise InputError(str(plan_path), f"offerings not in the price book {prices}: {', '.join(unknown)}")
        result = simulate_bill(matrix, book, held, purchases)
    except (InputError, ValueError) as e:
        _fail(str(e))
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        out.print(bill_table(result))


@app.command()
def sample(
    pools: Annotated[int, typer.Option(min=1, help="number of pools")] = 24,
    days: Annotated[int, typer.Option(min=1, help="days of hourly usage")] = 365,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same files)")] = 7,
    out_dir: Annotated[Path, typer.Option("--out", help="directory for usage.csv and prices.csv")] = Path("sample"),
    savings_plans: Annotated[str, typer.Option(help="full, two or none")] = "full",
) -> None:
    """Generate a realistic estate deterministically: hourly usage and a price book."""
    from scenarios.sample_estate import generate_estate

    try:
        estate = generate_estate(pools, days, seed, savings_plans=savings_plans)
    except ValueError as e:
        _fail(str(e))
    paths = estate.write(out_dir)
    out.print(
        f"wrote {escape(str(paths['usage']))} ({len(estate.usage):,} rows) and "
        f"{escape(str(paths['prices']))} ({len(estate.prices):,} rows)",
        highlight=False,
    )


@app.command()
def demo(
    backend: Annotated[str, typer.Option(help="LP solver: highs, ortools or cbc")] = "highs",
) -> None:
    """Plan the shipped sample estate (24 pools, a year of hours) and show what to buy."""
    if backend not in BACKENDS:
        _fail(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    usage, prices = DEMO_DIR / "usage.csv.gz", DEMO_DIR / "prices.csv"
    out.print(f"Planning the shipped sample estate: {usage.name} and {prices.name} from {escape(str(DEMO_DIR))}", highlight=False)
    try:
        matrix, book, held = _load(usage, prices, None)
        result = _solve_with_progress(matrix, book, held, backend, "decomposition", 1e-6)
    except (InputError, PlanningError, ValueError) as e:
        _fail(str(e))
    print_plan(out, result)


def _register_commands() -> None:
    """Commands that live in modules of their own (they import this module's ``app``)."""
    from api.backtest_command import register as register_backtest
    from api.compare_command import register as register_compare
    from api.finops_commands import register as register_finops
    from api.ledger_commands import register as register_ledger
    from api.prices_command import register as register_prices
    from api.serve_command import register as register_serve
    from api.store_commands import register as register_store
    from api.ui_command import register as register_ui

    register_compare(app)
    register_ledger(app)
    register_prices(app)
    register_finops(app)
    register_store(app)
    register_serve(app)
    register_backtest(app)
    register_ui(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
