"""What optimizing on a sample of hours costs: the sampled plan against the plan optimized on all hours.

    python -m benchmarks.sample_error [--pools 24 50] [--per-month 24 48 96] [--out benchmarks/sample_error_results.md]

For each estate (``generate_estate(pools, 180, seed=3, savings_plans="two")``, 12 monthly purchase
dates, 20 forecast scenarios) the ladder plan is solved on all 175,200 scenario-hours (gap 1e-5)
and on stratified samples of ``--per-month`` hours per scenario and month. Both plans are billed
on all hours by the same figures the plan reports; the table gives the seconds and how much more
the sampled plan's expected cost is than the full plan's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.ladder import _estate
from models.policy import Policy
from solver.future_plan import plan_for_history


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pools", type=int, nargs="+", default=[24, 50])
    ap.add_argument("--per-month", type=int, nargs="+", default=[24, 48, 96])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/sample_error_results.md"))
    args = ap.parse_args(argv)
    lines = ["# Optimizing on a sample of hours: cost of the plan billed on all hours", "",
             "| pools | hours per scenario-month | scenario-hours optimized | seconds | expected cost $ | above the full plan |",
             "|---:|---:|---:|---:|---:|---:|"]
    policy = Policy(ladder_months=12)
    for pools in args.pools:
        history, book = _estate(pools)
        t0 = time.perf_counter()
        full = plan_for_history(history, book, 12, policy=policy, sample_per_month=0)
        lines.append(f"| {pools} | all | {full.solve.optimized_hours:,} | {time.perf_counter() - t0:.1f} | "
                     f"{full.summary.expected_cost:,.2f} | – |")
        for k in args.per_month:
            t0 = time.perf_counter()
            plan = plan_for_history(history, book, 12, policy=policy, sample_per_month=k)
            above = plan.summary.expected_cost / full.summary.expected_cost - 1
            lines.append(f"| {pools} | {k} | {plan.solve.optimized_hours:,} | {time.perf_counter() - t0:.1f} | "
                         f"{plan.summary.expected_cost:,.2f} | {above:+.4%} |")
        sys.stdout.write("\n".join(lines[-1 - len(args.per_month):]) + "\n")
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
