"""Backtests: every reported figure is the simulator's bill, hindsight is the ceiling, the baselines
do what they say (one product; lookback-optimal; fully used floor), and the CLI works end to end."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from models import HOURS_PER_MONTH, Commitment, OfferingKind, Purchase, UsageMatrix
from models.policy import Policy
from models.readers import read_price_book, read_usage
from scenarios.sample_estate import generate_estate
from solver.backtest import STRATEGIES, BacktestWindowError, run_backtest, split_usage
from solver.baselines import cautious_ladder, cost_explorer_style
from solver.simulator import simulate_bill

HISTORY_DAYS, MONTHS = 60, 2
runner = CliRunner()


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    """6 pools: 60 days of history and two 730-hour months to bill (plus a few spare hours)."""
    out = tmp_path_factory.mktemp("backtest")
    paths = generate_estate(6, 122, 5).write(out)
    prices = read_price_book(paths["prices"])
    return read_usage(paths["usage"], known_pools=set(prices.on_demand)), prices, paths


@pytest.fixture(scope="module")
def result(estate):
    usage, prices, _ = estate
    return run_backtest(usage, prices, history_days=HISTORY_DAYS, billed_months=MONTHS, scenarios=4, seed=2)


def windows(usage: UsageMatrix) -> tuple[UsageMatrix, UsageMatrix]:
    """History and billed window, cut here independently of solver.backtest."""
    k, h = HISTORY_DAYS * 24, MONTHS * HOURS_PER_MONTH
    return (UsageMatrix(usage.start, usage.pools, usage.values[:k]),
            UsageMatrix(usage.start + timedelta(hours=k), usage.pools, usage.values[k : k + h]))


def lookback(history: UsageMatrix) -> UsageMatrix:
    return UsageMatrix(history.start + timedelta(hours=history.hours - 720), history.pools, history.values[-720:])


def test_every_strategy_figure_is_the_simulators_bill(estate, result):
    usage, prices, _ = estate
    _, billed = windows(usage)
    assert [s.name for s in result.strategies] == list(STRATEGIES)
    assert (result.billed_start, result.billed_hours, result.billed_months) == (billed.start, billed.hours, MONTHS)
    alone = simulate_bill(billed, prices, [], [])
    hindsight_own = alone.total_cost - simulate_bill(billed, prices, [], result.strategy("hindsight").purchases).total_cost
    for s in result.strategies:
        assert s.purchases, f"{s.name} bought nothing on a growing estate"
        assert all(p.start == billed.start for p in s.purchases)
        bill = simulate_bill(billed, prices, [], s.purchases)
        assert s.total_cost == pytest.approx(bill.total_cost, rel=1e-12)
        assert s.commitment_cost == pytest.approx(bill.commitment_cost, rel=1e-12)
        assert s.savings == pytest.approx(bill.on_demand_equivalent - bill.total_cost, rel=1e-12)
        assert s.effective_savings_rate == pytest.approx(bill.savings / bill.on_demand_equivalent, rel=1e-12)
        assert s.coverage == pytest.approx(bill.coverage, rel=1e-12)
        assert s.utilization == pytest.approx(bill.utilization, rel=1e-12)
        assert s.savings_from_purchases == pytest.approx(alone.total_cost - bill.total_cost, rel=1e-12)
        assert s.share_of_hindsight == pytest.approx((alone.total_cost - bill.total_cost) / hindsight_own, rel=1e-12)
    assert result.on_demand_equivalent == pytest.approx(alone.on_demand_equivalent, rel=1e-12)


def test_hindsight_saves_the_most_up_to_its_certificate(result):
    """Hindsight is the optimum bought at the first billed hour, but rounded to sellable quantities:
    another sellable plan can beat it by at most (its cost − the certified lower bound), so that is
    the tolerance, and every strategy's cost is at least the lower bound."""
    best = result.strategy("hindsight")
    slack = best.total_cost - result.hindsight_lower_bound
    assert 0 <= slack < 1e-3 * result.on_demand_equivalent  # tight enough for the comparison to mean something
    assert best.share_of_hindsight == pytest.approx(1.0)
    for s in result.strategies:
        assert s.total_cost >= result.hindsight_lower_bound - 1e-6
        assert best.savings >= s.savings - slack - 1e-6, s.name
    assert result.strategy("ladder").savings < best.savings  # the cautious floor leaves savings on the table


def test_cost_explorer_buys_the_one_product_that_saved_most_over_the_lookback(estate, result):
    usage, prices, _ = estate
    history, _ = windows(usage)
    choice = result.strategy("cost_explorer").purchases
    assert len(choice) == 1 and prices.offerings[choice[0].offering].kind is OfferingKind.SAVINGS_PLAN
    last = lookback(history)
    base = simulate_bill(last, prices, [], []).total_cost

    def saved(offering: str, q: float) -> float:
        return base - simulate_bill(last, prices, [], [Purchase(offering=offering, quantity=q, start=last.start)]).total_cost

    chosen, q = choice[0].offering, choice[0].quantity
    inc = prices.offerings[chosen].increment
    assert saved(chosen, q) >= saved(chosen, q + inc) - 1e-9
    assert saved(chosen, q) >= saved(chosen, q - inc) - 1e-9
    for o in prices.savings_plans():  # a brute-force scan of every single product cannot do better
        rates = np.array([o.rates.get(p, 0.0) for p in last.pools])
        peak = float((last.values @ rates).max())
        for level in np.linspace(0.0, peak, 25):
            assert saved(o.id, round(level, 3)) <= saved(chosen, q) + 1e-6, o.id


def test_ladder_commits_to_the_floor_of_the_lookback(estate, result):
    usage, prices, _ = estate
    history, _ = windows(usage)
    (rung,) = result.strategy("ladder").purchases
    product = prices.offerings[rung.offering]
    assert len(product.rates) == max(len(o.rates) for o in prices.savings_plans())
    assert product.term_months == min(o.term_months for o in prices.savings_plans() if len(o.rates) == len(product.rates))
    last = lookback(history)

    def used(q: float) -> float:
        bill = simulate_bill(last, prices, [], [Purchase(offering=rung.offering, quantity=q, start=last.start)])
        return bill.commitments[0].utilization

    assert used(rung.quantity) == pytest.approx(1.0, abs=1e-9)
    assert used(rung.quantity + product.increment) < 1.0 - 1e-9
    # the floor is the minimum over the lookback hours of the eligible usage at the plan's rates
    rates = np.array([product.rates.get(p, 0.0) for p in last.pools])
    assert rung.quantity == pytest.approx(float((last.values @ rates).min()), abs=product.increment)


def test_existing_commitments_and_policy_apply_to_every_strategy(estate):
    usage, prices, _ = estate
    history, billed = windows(usage)
    pool = usage.pools[int(np.argmax(usage.values.mean(axis=0)))]
    held = [Commitment(offering=f"ri-1y-nu-{pool}", quantity=5.0, start=usage.start - timedelta(days=200),
                       end=billed.start + timedelta(days=20))]
    policy = Policy(allowed_terms=[12])
    res = run_backtest(usage, prices, existing=held, policy=policy, history_days=HISTORY_DAYS, billed_months=MONTHS,
                       scenarios=3, seed=0)
    alone = simulate_bill(billed, prices, held, [])
    assert res.cost_existing_only == pytest.approx(alone.total_cost, rel=1e-12)
    assert res.cost_existing_only < res.on_demand_equivalent
    slack = res.strategy("hindsight").total_cost - res.hindsight_lower_bound
    for s in res.strategies:
        assert all(prices.offerings[p.offering].term_months == 12 for p in s.purchases), s.name
        bill = simulate_bill(billed, prices, held, s.purchases)
        assert s.total_cost == pytest.approx(bill.total_cost, rel=1e-12)
        assert s.savings_from_purchases == pytest.approx(alone.total_cost - bill.total_cost, rel=1e-12)
        assert res.strategy("hindsight").savings >= s.savings - slack - 1e-6
    # the ladder tops up to the floor: with the existing commitment it buys less than without it
    start = billed.start
    with_held = cautious_ladder(history=history, prices=prices, start=start, existing=held, policy=policy)
    without = cautious_ladder(history=history, prices=prices, start=start, policy=policy)
    assert sum(p.quantity for p in with_held.purchases) <= sum(p.quantity for p in without.purchases)
    only_ris = Policy(allowed_kinds=["reservation"])
    ce = cost_explorer_style(history=history, prices=prices, start=start, existing=held, policy=only_ris)
    assert ce.purchases == [] and "no allowed savings plan" in ce.description


def test_the_billed_window_is_whole_months_and_says_when_it_is_shorter(estate):
    usage, _, _ = estate
    history, billed, notes = split_usage(usage, HISTORY_DAYS, 12)
    assert history.hours == HISTORY_DAYS * 24 and billed.start == history.end
    assert billed.hours == 2 * HOURS_PER_MONTH and "2 months are billed" in notes[0]
    assert split_usage(usage, HISTORY_DAYS, 1)[2] == []
    with pytest.raises(BacktestWindowError, match="less than one month"):
        split_usage(usage, 100, 12)
    with pytest.raises(BacktestWindowError, match="at least 30 days"):
        split_usage(usage, 20, 1)


def cli(*args):
    return runner.invoke(app, ["backtest", *map(str, args)])


def test_cli_prints_the_table_and_json(estate, result):
    _, _, paths = estate
    common = ("--usage", paths["usage"], "--prices", paths["prices"], "--history-days", HISTORY_DAYS,
              "--billed-months", MONTHS, "--scenarios", 4, "--seed", 2)
    shown = cli(*common)
    assert shown.exit_code == 0, shown.output
    for label in ("commitplan planner", "Cost-Explorer style", "cautious ladder", "hindsight optimum",
                  "share of hindsight"):
        assert label in shown.stdout
    as_json = cli(*common, "--json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert [s["name"] for s in data["strategies"]] == list(STRATEGIES)
    for mine, theirs in zip(data["strategies"], result.strategies):  # the same run as the library's
        assert mine["savings"] == pytest.approx(theirs.savings, rel=1e-9)
        assert mine["share_of_hindsight"] == pytest.approx(theirs.share_of_hindsight, rel=1e-9)
    assert f"{result.strategy('planner').savings:,.2f}" in shown.stdout


def test_cli_names_the_bad_file_and_exits_2(estate, tmp_path):
    _, _, paths = estate
    bad = tmp_path / "usage.csv"
    bad.write_text("timestamp,pool,quantity\n2025-01-01T00:00:00Z,aws:ec2:nowhere:m5:linux,abc\n")
    broken = cli("--usage", bad, "--prices", paths["prices"])
    assert broken.exit_code == 2
    assert str(bad) in "".join(broken.stderr.split()) or "usage.csv" in broken.stderr
    assert "row 2" in broken.stderr
    short = cli("--usage", paths["usage"], "--prices", paths["prices"], "--history-days", 120)
    assert short.exit_code == 2 and "usage.csv" in short.stderr and "less than one month" in " ".join(short.stderr.split())
    missing = cli("--usage", paths["usage"], "--prices", tmp_path / "nope.csv")
    assert missing.exit_code == 2 and "nope.csv" in missing.stderr
