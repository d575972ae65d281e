"""The decomposition's master LP recovers when HiGHS stalls on its warm-start basis.

At 200 pools × 180 days (the API benchmark's estate) the warm-started simplex once ended with
status Unknown after idle cuts were dropped, and the plan failed with "master LP: Unknown". The
master now re-solves from scratch (then with presolve). Later changes to the cut pool made that
estate solve without a stall, so the stall is injected here: one warm-started solve is stopped
after a single simplex iteration, as a stall leaves it, and the plan must still come out exact.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from models.readers import read_price_book, read_usage
from scenarios.sample_estate import generate_estate
from solver import master
from solver.planner import plan_for_usage
from solver.simulator import simulate_bill


def _stall_once(monkeypatch: pytest.MonkeyPatch, at_solve: int) -> list[str]:
    """Make the ``at_solve``-th warm-started master solve stop early; returns the statuses seen."""
    seen: list[str] = []
    original = master.HighsMaster._run

    def run(self: master.HighsMaster) -> None:
        seen.append("solve")
        if len(seen) == at_solve:
            h, real = self.h, self.h.run

            def stalled():
                h.setOptionValue("simplex_iteration_limit", 1)
                try:
                    real()
                finally:
                    h.setOptionValue("simplex_iteration_limit", 2**31 - 1)
                seen.append(h.modelStatusToString(h.getModelStatus()))
                h.run = real  # the retries run normally

            h.run = stalled
        original(self)

    monkeypatch.setattr(master.HighsMaster, "_run", run)
    return seen


@pytest.mark.xdist_group("heavy")
def test_a_stalled_warm_start_is_solved_again_and_the_plan_is_exact(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    files = generate_estate(40, 60, seed=1).write(tmp_path)
    prices = read_price_book(files["prices"])
    usage = read_usage(files["usage"], known_pools=set(prices.on_demand))
    reference = plan_for_usage(usage, prices, [])
    seen = _stall_once(monkeypatch, at_solve=6)
    with caplog.at_level(logging.INFO, logger="commitplan.solver"):
        plan = plan_for_usage(usage, prices, [])
    assert "Iteration limit reached" in seen, seen
    assert any("solving again from scratch" in r.getMessage() for r in caplog.records)
    bill = simulate_bill(usage, prices, [], plan.purchases)
    assert plan.summary.expected_cost == pytest.approx(bill.total_cost, rel=1e-9)
    # the recovered solve reaches the same optimum as the undisturbed one, within its certified gap
    assert plan.solve.continuous_cost == pytest.approx(reference.solve.continuous_cost, rel=2 * max(plan.solve.gap, 1e-6))
