"""``commitplan backtest``: plan on history, bill the months after it, compare with baselines and hindsight."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from models.errors import InputError, PlanningError
from solver.backtest import BacktestResult


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _share(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def backtest_table(result: BacktestResult) -> Table:
    start = result.billed_start.strftime("%Y-%m-%d")
    months = f"{result.billed_months} month{'s' * (result.billed_months != 1)}"
    t = Table(
        title=(f"Backtest: {result.history_hours // 24} days of history, then {months} billed from {start} "
               f"({result.pools} pools, on-demand equivalent {_money(result.on_demand_equivalent)})"),
        title_justify="left",
    )
    for col, justify in [("strategy", "left"), ("commitment cost", "right"), ("savings", "right"), ("ESR", "right"),
                         ("coverage", "right"), ("utilization", "right"), ("share of hindsight savings", "right")]:
        t.add_column(col, justify=justify)
    for s in result.strategies:
        t.add_row(s.label, _money(s.commitment_cost), _money(s.savings), f"{s.effective_savings_rate:.2%}",
                  f"{s.coverage:.2%}", f"{s.utilization:.2%}", _share(s.share_of_hindsight))
    return t


def print_backtest(console: Console, result: BacktestResult) -> None:
    console.print(backtest_table(result))
    for s in result.strategies:
        console.print(f"{s.label}: {escape(s.description)}", style="dim", highlight=False)
    if result.cost_existing_only < result.on_demand_equivalent - 1e-9:
        console.print(f"shares compare savings beyond the existing commitments' (cost with them alone: "
                      f"{_money(result.cost_existing_only)})", style="dim")
    for note in result.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    console.print(f"cost convention (every strategy, billed hour by hour): {result.cost_convention}", style="dim")


def register(app: typer.Typer) -> None:
    """Add the ``backtest`` command to the CLI ``app``."""

    @app.command()
    def backtest(
        usage: Annotated[Path, typer.Option(help="usage CSV: history, then the months to bill")],
        prices: Annotated[Path, typer.Option(help="price book CSV")],
        policy: Annotated[Path | None, typer.Option(help="policy YAML (applies to every strategy)")] = None,
        existing: Annotated[Path | None, typer.Option(help="existing commitments CSV")] = None,
        history_days: Annotated[int, typer.Option(min=1, help="days of usage the strategies may see")] = 180,
        billed_months: Annotated[int, typer.Option(min=1, help="730-hour months billed after the history")] = 12,
        scenarios: Annotated[int, typer.Option(min=1, help="the planner's forecast scenarios")] = 20,
        seed: Annotated[int, typer.Option(help="the planner's forecast seed")] = 0,
        backend: Annotated[str, typer.Option(help="LP solver: highs, ortools or cbc")] = "highs",
        as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    ) -> None:
        """Plan on the first --history-days of --usage, bill the next --billed-months hour by hour, and
        compare with a Cost-Explorer-style baseline, a cautious ladder and the hindsight optimum."""
        from api.cli import _fail, _load, err, out
        from models.policy import load_policy
        from solver.backends import BACKENDS
        from solver.backtest import BacktestWindowError, run_backtest

        if backend not in BACKENDS:
            _fail(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        try:
            rules = load_policy(policy) if policy else None
            matrix, book, held = _load(usage, prices, existing)
            with err.status("backtesting") as status:
                result = run_backtest(
                    matrix, book, existing=held, policy=rules, history_days=history_days, billed_months=billed_months,
                    scenarios=scenarios, seed=seed, backend=backend, progress=lambda msg: status.update(msg),
                )
        except BacktestWindowError as e:
            _fail(str(InputError(str(usage), str(e))))
        except (InputError, PlanningError, ValueError) as e:
            _fail(str(e))
        if as_json:
            sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        else:
            print_backtest(out, result)
