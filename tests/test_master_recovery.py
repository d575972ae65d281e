"""The decomposition's master LP recovers when HiGHS stalls on its warm-start basis.

At 200 pools × 180 days (the API benchmark's estate) the warm-started simplex ended with status
Unknown after idle cuts were dropped, and the plan failed with "master LP: Unknown". The master
now re-solves from scratch (then with presolve). This is that estate, planned and billed hour by hour.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from models.readers import read_price_book, read_usage
from scenarios.sample_estate import generate_estate
from solver.planner import plan_for_usage
from solver.simulator import simulate_bill


@pytest.mark.xdist_group("heavy")
def test_the_estate_that_stalled_the_master_is_planned_and_billed_exactly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = generate_estate(200, 180, seed=1).write(tmp_path)
    prices = read_price_book(files["prices"])
    usage = read_usage(files["usage"], known_pools=set(prices.on_demand))
    with caplog.at_level(logging.INFO, logger="commitplan.solver"):
        plan = plan_for_usage(usage, prices, [])
    assert any("solving again from scratch" in r.getMessage() for r in caplog.records), \
        "the warm start no longer stalls here: this test no longer exercises the recovery"
    bill = simulate_bill(usage, prices, [], plan.purchases)
    assert plan.summary.expected_cost == pytest.approx(bill.total_cost, rel=1e-9)
    assert plan.purchases
