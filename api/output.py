"""Rich tables for plans and bills, and safe writing of result files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from models import Bill, Plan


def money(x: float) -> str:
    return f"${x:,.2f}"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a failure leaves no half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a result file gets the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def signed_money(x: float) -> str:
    return f"{'-' if x < 0 else '+'}${abs(x):,.2f}"


def purchases_table(plan: Plan) -> Table:
    valued = any(p.break_even_utilization is not None or p.marginal_value is not None for p in plan.purchases)
    caption = ("break-even: the utilization at which a purchase costs what the on-demand usage it covers would; "
               "marginal: what one more unit (a savings plan: one more $/h) would save in the window, from the "
               "duals (negative: it would cost more)") if valued else None
    t = Table(title="What to buy", title_justify="left", caption=caption, caption_justify="left")
    columns = [("offering", "left"), ("quantity", "right"), ("term", "right"), ("payment", "left"),
               ("upfront", "right"), ("window cost", "right"), ("utilization", "right")]
    laddered = len({p.start for p in plan.purchases}) > 1
    if laddered:
        columns.insert(1, ("starts", "left"))
    if valued:
        columns += [("break-even", "right"), ("marginal", "right")]
    for col, justify in columns:
        t.add_column(col, justify=justify, overflow="fold" if col == "offering" else "ellipsis")
    used = {(c.offering, c.quantity, c.start): c.utilization for c in plan.commitments if c.source == "purchase"}
    show_used = bool(used) or not plan.scenarios
    for p in plan.purchases:
        row = [
            p.offering, f"{p.quantity:g}" + (" $/h" if p.kind == "savings_plan" else " units"),
            f"{p.term_months} mo", p.payment or "", money(p.upfront_cost), money(p.window_cost),
            f"{used.get((p.offering, p.quantity, p.start), 0.0):.1%}" if show_used else "see scenarios",
        ]
        if laddered:
            row.insert(1, f"{p.start:%Y-%m-%d}")
        if valued:
            row += [
                "—" if p.break_even_utilization is None else f"{p.break_even_utilization:.1%}",
                "—" if p.marginal_value is None else signed_money(p.marginal_value),
            ]
        t.add_row(*row)
    return t


SCHEDULE_ROWS = 12


def schedule_table(plan: Plan) -> Table:
    """The first month and the months in which commitments start or expire (at most ``SCHEDULE_ROWS``)."""
    months = [m for i, m in enumerate(plan.schedule) if i == 0 or m.starting or m.expiring]
    shown = months[:SCHEDULE_ROWS]
    caption = "$/h amortized, averaged over the month's hours"
    if len(months) > len(shown):
        caption += f"; {len(months) - len(shown)} more months with changes in the plan JSON (schedule)"
    t = Table(title=f"Commitments by month ({len(plan.schedule)} months; months with starts or expiries)",
              title_justify="left", caption=caption, caption_justify="left")
    for col, justify in [("month", "left"), ("active $/h", "right"), ("existing", "right"), ("planned", "right"),
                         ("starting $/h", "right"), ("expiring $/h", "right"), ("expiring", "left")]:
        t.add_column(col, justify=justify)
    for m in shown:
        names = [f"{e.offering} ×{e.quantity:g}" for e in m.expiring]
        expiring = "; ".join(names[:3]) + (f"; +{len(names) - 3} more" if len(names) > 3 else "")
        t.add_row(
            m.month + ("" if m.in_window else " *"), f"{m.active_hourly_commitment:,.3f}",
            f"{m.active_existing_hourly:,.3f}", f"{m.active_purchase_hourly:,.3f}",
            f"{m.starting_hourly:,.3f}" if m.starting else "", f"{m.expiring_hourly:,.3f}" if m.expiring else "",
            expiring,
        )
    if any(not m.in_window for m in shown):
        t.caption += "; * after the planning window"
    return t


def summary_table(plan: Plan) -> Table:
    s = plan.summary
    t = Table(title=f"Figures ({plan.window_hours:,} h from {plan.window_start:%Y-%m-%d %H:%M} UTC)",
              title_justify="left", show_header=False)
    t.add_column("figure"); t.add_column("value", justify="right")
    rows = [
        ("on-demand equivalent", money(s.on_demand_equivalent)),
        ("cost with current commitments only", money(s.cost_without_purchases)),
        ("cost with this plan", money(s.expected_cost)),
        ("  of which commitments", money(s.commitment_cost)),
        ("  of which on demand", money(s.on_demand_paid)),
        ("savings vs on-demand", money(s.expected_savings)),
        ("savings vs current commitments", money(s.cost_without_purchases - s.expected_cost)),
        ("effective savings rate", f"{s.effective_savings_rate:.2%}"),
        ("coverage", f"{s.coverage:.2%}"),
        ("utilization", f"{s.utilization:.2%}"),
    ]
    for r in rows:
        t.add_row(*r)
    return t


def risk_table(plan: Plan) -> Table:
    r = plan.risk
    t = Table(title=f"Over {len(plan.scenarios)} forecast scenarios", title_justify="left", show_header=False)
    t.add_column("figure"); t.add_column("value", justify="right")
    rows = [
        ("savings P10 / P50 / P90", f"{money(r.savings_p10)} / {money(r.savings_p50)} / {money(r.savings_p90)}"),
        (f"CVaR {r.alpha:.0%} of cost (mean of the worst {1 - r.alpha:.0%}, {r.cvar_basis})", money(r.cvar_cost)),
        ("worst-case idle commitment", money(r.worst_idle_commitment)),
        ("risk weight on CVaR", f"{r.weight:g}"),
        ("forecast", f"{r.forecast_model}, holdout WAPE {r.forecast_wape:.1%}" if r.forecast_wape is not None else r.forecast_model),
    ]
    for row in rows:
        t.add_row(*row)
    return t


def solve_line(plan: Plan) -> str:
    s = plan.solve
    if s is None:
        return ""
    gap = (f"certified gap {max(s.gap, 0):.2e}" if s.exact_billing_model else
           f"gap {max(s.gap, 0):.2e} against the LP model, not certified for this price book (see notes)")
    return (f"solved by {s.method} on {s.backend} in {s.seconds:.2f} s ({s.iterations} iterations, {s.status}); "
            f"{gap}; cost of rounding to sellable quantities {money(s.rounding_cost)}")


def bill_table(bill: Bill) -> Table:
    t = Table(title=f"Bill over {bill.hours:,} hours", title_justify="left", show_header=False)
    t.add_column("figure"); t.add_column("value", justify="right")
    for name, value in [
        ("on-demand equivalent", money(bill.on_demand_equivalent)),
        ("commitment cost", money(bill.commitment_cost)),
        ("on demand paid", money(bill.on_demand_paid)),
        ("total cost", money(bill.total_cost)),
        ("savings", money(bill.savings)),
        ("effective savings rate", f"{bill.effective_savings_rate:.2%}"),
        ("coverage", f"{bill.coverage:.2%}"),
        ("utilization", f"{bill.utilization:.2%}"),
    ]:
        t.add_row(name, value)
    return t


def print_plan(console: Console, plan: Plan) -> None:
    if plan.purchases:
        console.print(purchases_table(plan))
    else:
        console.print("Buy nothing: no commitment lowers the cost of this usage.")
    console.print(summary_table(plan))
    if plan.schedule:
        console.print(schedule_table(plan))
    if plan.risk is not None:
        console.print(risk_table(plan))
    console.print(solve_line(plan), style="dim")
    for note in plan.solve.notes if plan.solve else []:
        console.print(f"note: {note}", style="dim")
    console.print(f"cost convention: {plan.cost_convention}", style="dim")
