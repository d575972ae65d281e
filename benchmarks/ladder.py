"""Forecast plan with every limit active: P pools × 12 monthly purchase dates × 20 scenarios.

    python -m benchmarks.ladder [--pools 200] [--scenarios 20] [--months 12] [--fresh 3] [--out benchmarks/ladder_results.md]

A ``generate_estate(pools, 180, seed=3, savings_plans="two")`` estate (six reservation offerings per
pool, a compute and an instance savings plan) gives 180 days of history; ``plan_for_history`` then
forecasts ``--scenarios`` scenarios over ``--months`` months and optimizes with a policy where every
limit is on: a CVaR limit, a coverage band, a utilization floor in the low scenario, an upfront
budget, a 3-year share, monthly purchase dates with caps on commitment bought and expiring per month,
and a cost of capital. Each limit is a tightening of the unconstrained plan's figure (caps at 75–80%
of its $/h, 70% of its upfront, a utilization floor of 80%), a coverage band from 15 to 2 points below
the coverage of the plan under those limits (so that its maximum binds), and the
CVaR limit halfway between the CVaR of the cheapest plan under the others and that of a CVaR-averse
plan under them (risk weight 1,000), so that it binds. Reported: seconds of the
every-limit plan (forecast + solve + figures; the plans that set its limits are not timed), peak
memory, and the plans' figures; then the same plan timed in ``--fresh`` new processes, one after
another, as a planning tool calling the CLI would run it (no compiled kernels or imports warm).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from models.errors import PlanningError
from models.policy import Policy
from models.readers import read_price_book, read_usage
from scenarios.sample_estate import generate_estate
from solver.future_plan import plan_for_history


def _estate(pools: int, seed: int = 3):
    out = Path(tempfile.mkdtemp(prefix="commitplan-ladder-"))
    paths = generate_estate(pools, 180, seed, savings_plans="two").write(out)
    book = read_price_book(paths["prices"])
    return read_usage(paths["usage"], known_pools=set(book.on_demand)), book


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pools", type=int, default=200)
    ap.add_argument("--scenarios", type=int, default=20)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--fresh", type=int, default=3, help="times the every-limit plan is run again in a new process")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/ladder_results.md"))
    ap.add_argument("--once", type=Path, help=argparse.SUPPRESS)  # a child: plan under this policy JSON, print its figures
    args = ap.parse_args(argv)
    history, book = _estate(args.pools)
    if args.once is not None:
        return _once(history, book, args)
    t0 = time.perf_counter()
    free = plan_for_history(history, book, args.months, scenarios=args.scenarios, policy=Policy(ladder_months=args.months))
    t_free = time.perf_counter() - t0
    hourly = sum(p.quantity * book.offerings[p.offering].hourly_cost_per_unit() for p in free.purchases)
    upfront = sum(p.upfront_cost for p in free.purchases)
    limits = dict(  # each a tightening of the unconstrained plan's figure
        ladder_months=args.months, max_monthly_purchase=0.75 * hourly, max_monthly_expiry=0.8 * hourly,
        upfront_budget=0.7 * upfront, max_three_year_share=0.6, utilization_floor=0.8, cost_of_capital=0.08, alpha=0.9,
    )
    # the coverage band around the coverage c of the plan under those limits: [c − 15, c − 2] points,
    # so that its maximum binds. (A band around the unconstrained plan's coverage asked, at 200
    # pools, for more coverage than the utilization floor leaves any plan.)
    under = plan_for_history(history, book, args.months, scenarios=args.scenarios, policy=Policy(**limits))
    c = under.summary.coverage
    limits.update(coverage_min=max(0.0, c - 0.15), coverage_max=max(0.0, c - 0.02))
    # the CVaR limit halfway between the CVaR of the cheapest plan under the other limits and that
    # of a CVaR-averse plan under them (risk weight 1,000), so that it binds
    others = plan_for_history(history, book, args.months, scenarios=args.scenarios, policy=Policy(**limits))
    averse = plan_for_history(history, book, args.months, scenarios=args.scenarios, policy=Policy(**limits, risk_weight=1000.0))
    limit = 0.5 * (others.risk.cvar_cost + averse.risk.cvar_cost)
    policy = Policy(**limits, cvar_limit=limit)
    t0 = time.perf_counter()
    try:
        plan = plan_for_history(history, book, args.months, scenarios=args.scenarios, policy=policy)
    except PlanningError as e:
        plan, failure = None, str(e)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fresh = _fresh_runs(policy, args) if plan is not None else []
    text = "\n".join([
        f"# Plan with every limit: {args.pools} pools × {args.months} purchase dates × {args.scenarios} scenarios",
        "",
        "| case | seconds | purchases | expected savings $ | ESR | coverage | CVaR $ | status |",
        "|---|---|---|---|---|---|---|---|",
        f"| no limits (ladder only) | {t_free:.1f} | {len(free.purchases)} | {free.summary.expected_savings:,.0f} | "
        f"{free.summary.effective_savings_rate:.1%} | {free.summary.coverage:.1%} | {free.risk.cvar_cost:,.0f} | {free.solve.status} |",
        f"| every limit but the coverage band and CVaR (untimed) | – | {len(under.purchases)} | {under.summary.expected_savings:,.0f} | "
        f"{under.summary.effective_savings_rate:.1%} | {under.summary.coverage:.1%} | {under.risk.cvar_cost:,.0f} | {under.solve.status} |",
        f"| every limit but CVaR (untimed) | – | {len(others.purchases)} | {others.summary.expected_savings:,.0f} | "
        f"{others.summary.effective_savings_rate:.1%} | {others.summary.coverage:.1%} | {others.risk.cvar_cost:,.0f} | {others.solve.status} |",
        f"| every limit but CVaR, risk weight 1,000 (untimed) | – | {len(averse.purchases)} | {averse.summary.expected_savings:,.0f} | "
        f"{averse.summary.effective_savings_rate:.1%} | {averse.summary.coverage:.1%} | {averse.risk.cvar_cost:,.0f} | {averse.solve.status} |",
        (f"| every limit | {seconds:.1f} | {len(plan.purchases)} | {plan.summary.expected_savings:,.0f} | "
         f"{plan.summary.effective_savings_rate:.1%} | {plan.summary.coverage:.1%} | {plan.risk.cvar_cost:,.0f} | {plan.solve.status} |")
        if plan is not None else f"| every limit | {seconds:.1f} | – | – | – | – | – | no plan: {failure} |",
        "",
        f"Peak memory {peak:,.0f} MB. Policy: {policy.model_dump(exclude_defaults=True)}",
        "",
        f"Every-limit plan: {plan.solve.method}; {plan.solve.optimized_hours:,} of {plan.solve.scenario_hours:,} "
        f"scenario-hours optimized, gap {plan.solve.gap:.2e} on them; {plan.solve.iterations} iterations."
        if plan is not None else "",
        "",
        (f"The every-limit plan in {len(fresh)} fresh processes, one after another: "
         + ", ".join(f"{r['seconds']:.1f}" for r in fresh)
         + f" s (median {sorted(r['seconds'] for r in fresh)[len(fresh) // 2]:.1f} s); CVaR "
         + ", ".join(f"{r['cvar']:,.0f}" for r in fresh) + " $.") if fresh else "",
        "",
    ])
    args.out.write_text(text)
    sys.stdout.write(text)
    return 0


def _once(history, book, args) -> int:
    policy = Policy(**json.loads(args.once.read_text()))
    t0 = time.perf_counter()
    plan = plan_for_history(history, book, args.months, scenarios=args.scenarios, policy=policy)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "cvar": plan.risk.cvar_cost, "savings": plan.summary.expected_savings}))
    return 0


def _fresh_runs(policy: Policy, args) -> list[dict]:
    path = Path(tempfile.mkdtemp(prefix="commitplan-ladder-policy-")) / "policy.json"
    path.write_text(json.dumps(policy.model_dump(mode="json", exclude_defaults=True)))
    runs = []
    for _ in range(args.fresh):
        out = subprocess.run([sys.executable, "-m", "benchmarks.ladder", "--pools", str(args.pools), "--scenarios",
                              str(args.scenarios), "--months", str(args.months), "--once", str(path)],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


if __name__ == "__main__":
    raise SystemExit(main())
