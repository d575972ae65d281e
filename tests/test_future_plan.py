"""Planning from history: forecast scenarios, what-ifs, expected cost and risk figures, checked by the simulator."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from models import Purchase
from models.readers import read_price_book, read_usage
from scenarios.sample_estate import generate_estate
from solver.risk import RiskSpec, cvar
from solver.future_plan import outlook, plan_for_history
from solver.simulator import simulate_bill


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    out = tmp_path_factory.mktemp("future")
    paths = generate_estate(5, 120, 4, savings_plans="two").write(out)
    prices = read_price_book(paths["prices"])
    return read_usage(paths["usage"], known_pools=set(prices.on_demand)), prices, paths


def test_every_scenario_figure_is_the_simulators_bill(estate):
    history, prices, _ = estate
    plan = plan_for_history(history, prices, horizon_months=3, scenarios=5, seed=1, risk=RiskSpec(0.8, 0.5))
    usages, weights, _ = outlook(history, 3, 5, 1, None)
    assert plan.window_start == history.end
    purchases = [Purchase(offering=p.offering, quantity=p.quantity, start=p.start) for p in plan.purchases]
    bills = [simulate_bill(u, prices, [], purchases) for u in usages]
    for fig, bill in zip(plan.scenarios, bills):
        assert fig.cost == pytest.approx(bill.total_cost, rel=1e-9)
        assert fig.coverage == pytest.approx(bill.coverage, rel=1e-9)
        assert fig.utilization == pytest.approx(bill.utilization, rel=1e-9)
    costs = np.array([b.total_cost for b in bills])
    assert plan.summary.expected_cost == pytest.approx(float(np.dot(weights, costs)), rel=1e-9)
    assert plan.risk.cvar_cost == pytest.approx(cvar(costs, weights, 0.8), rel=1e-9)
    savings = sorted(b.savings for b in bills)
    assert savings[0] <= plan.risk.savings_p10 <= plan.risk.savings_p50 <= plan.risk.savings_p90 <= savings[-1]
    assert 0 < plan.risk.forecast_wape < 0.5


def test_a_whatif_changes_the_outlook(estate, tmp_path):
    history, prices, _ = estate
    pool = history.pools[0]
    overlay = tmp_path / "shrink.yaml"
    start = (history.end + timedelta(days=7)).strftime("%Y-%m-%d")
    overlay.write_text(f"overlays:\n  - kind: decommission\n    pools: \"{pool}\"\n    start: {start}\n")
    base, _, _ = outlook(history, 2, 3, 0, None)
    changed, _, _ = outlook(history, 2, 3, 0, overlay)
    p = base[0].pools.index(pool)
    assert changed[0].values[24 * 8 :, p].sum() == 0 < base[0].values[24 * 8 :, p].sum()


def test_cli_plans_from_history(estate, tmp_path):
    _, _, paths = estate
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(app, [
        "plan", "--history", str(paths["usage"]), "--prices", str(paths["prices"]), "--horizon-months", "2",
        "--scenarios", "4", "--risk-weight", "0.3", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    assert len(plan["scenarios"]) == 4 and plan["risk"]["weight"] == 0.3
    assert plan["summary"]["expected_cost"] > 0


def test_cli_plans_on_a_sample_of_hours_and_bills_on_all_of_them(estate, tmp_path):
    _, _, paths = estate
    plans = {}
    for k in ("0", "12"):
        out = tmp_path / f"plan{k}.json"
        result = CliRunner().invoke(app, [
            "plan", "--history", str(paths["usage"]), "--prices", str(paths["prices"]), "--horizon-months", "2",
            "--scenarios", "4", "--sample-per-month", k, "--out", str(out),
        ])
        assert result.exit_code == 0, result.output
        plans[k] = json.loads(out.read_text())
    full, sampled = plans["0"], plans["12"]
    assert full["solve"]["optimized_hours"] == full["solve"]["scenario_hours"] == sampled["solve"]["scenario_hours"]
    assert sampled["solve"]["optimized_hours"] < full["solve"]["scenario_hours"] / 10
    assert any("stratified sample" in n for n in sampled["solve"]["notes"])
    # the sampled plan's figures are its bills on every scenario's hours
    weights = [s["weight"] for s in sampled["scenarios"]]
    assert sampled["summary"]["expected_cost"] == pytest.approx(sum(w * s["cost"] for w, s in zip(weights, sampled["scenarios"])), rel=1e-9)
    assert full["summary"]["expected_cost"] <= sampled["summary"]["expected_cost"] * (1 + 1e-6)
    assert sampled["summary"]["expected_cost"] <= full["summary"]["expected_cost"] * 1.01


def test_cli_wants_exactly_one_of_usage_and_history(estate):
    _, _, paths = estate
    result = CliRunner().invoke(app, ["plan", "--prices", str(paths["prices"])])
    assert result.exit_code == 2 and "exactly one of --usage" in result.output
