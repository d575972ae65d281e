"""Spend anomalies: clean seasonal spend flags nothing, each spike shape is reported from its first
day and once, both thresholds are needed, no verdict looks ahead, and owner and contributors
match a hand computation on a ledger built row by row."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.anomalies import Thresholds, detect, find_anomalies
from billing.anomaly_series import daily_spend, from_frame
from billing.ingest import ingest

START = dt.date(2024, 1, 1)
CELLS = (  # service, account, region, team, level $/day, weekday profile
    ("EC2", "111", "us-east-1", "payments", 900.0, (1, 1, 1, 1, 1, 0.8, 0.8)),
    ("S3", "111", "us-east-1", "payments", 300.0, (1, 1, 1, 1, 1, 1, 1)),
    ("EC2", "222", "eu-west-1", "search", 1200.0, (1, 1.05, 1.05, 1, 0.95, 0.4, 0.4)),
    ("RDS", "222", "eu-west-1", "search", 500.0, (1, 1, 1, 1, 1, 0.9, 0.9)),
    ("Lambda", "333", "us-east-1", "web", 250.0, (1, 1, 1, 1, 1.1, 1.2, 1.2)),
    ("EC2", "333", "eu-west-1", "web", 700.0, (1, 1, 1, 1, 1, 0.85, 0.85)),
)


def estate(seed: int, days: int = 180, sigma: float = 0.05) -> dict[tuple, np.ndarray]:
    """Spend per cell: level × weekday × trend × lognormal noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    weekday = np.array([(START + dt.timedelta(days=int(d))).weekday() for d in t])
    out = {}
    for service, account, region, team, level, profile in CELLS:
        trend = np.exp(rng.uniform(-0.2, 0.5) * t / 365)
        out[(service, account, region, team)] = (level * np.array(profile)[weekday] * trend
                                                 * rng.lognormal(0, sigma, days))
    return out


def to_daily(cells: dict[tuple, np.ndarray], days: int | None = None):
    rows = []
    for (service, account, region, team), values in cells.items():
        for d, value in enumerate(values[:days]):
            if value:
                rows.append((START + dt.timedelta(days=d), service, account, f"acct-{account}", region, team, value))
    frame = pd.DataFrame(rows, columns=["day", "service", "account", "account_name", "region", "tag:team", "cost"])
    return from_frame(frame, ("team",), "team")


def spiked(shape: str, onset: int, seed: int = 0, magnitude: float = 600.0) -> dict[tuple, np.ndarray]:
    cells = estate(seed)
    days = np.arange(len(next(iter(cells.values()))))
    k = days - onset
    if shape == "new region":
        rng = np.random.default_rng(seed + 1)
        cells[("EC2", "111", "ap-south-1", "payments")] = np.where(k >= 0, magnitude * rng.lognormal(0, 0.05, len(days)), 0)
        return cells
    excess = {"step": np.where(k >= 0, magnitude, 0.0), "burst": np.where(k == 0, magnitude, 0.0),
              "ramp": np.where(k >= 0, magnitude * np.minimum(k + 1, 8) / 2, 0.0)}[shape]
    cells[CELLS[0][:4]] = cells[CELLS[0][:4]] + excess
    return cells


def onsets(report) -> list[tuple[dt.date, str, str]]:
    return [(a.date, a.dimension, a.value) for a in report.anomalies]


@pytest.mark.parametrize("seed", range(4))
def test_clean_seasonal_spend_flags_nothing(seed):
    report = detect(to_daily(estate(seed)))
    assert report.anomalies == [], onsets(report)
    assert report.first_verdict == START + dt.timedelta(days=7)


@pytest.mark.parametrize("shape", ["step", "ramp", "burst", "new region"])
def test_each_shape_is_reported_from_its_first_day(shape):
    onset = 130
    report = detect(to_daily(spiked(shape, onset)))
    day = START + dt.timedelta(days=onset)
    ramp_day = day + dt.timedelta(days=1)  # a ramp adds m/2 on its first day, m on its second
    mine = [a for a in report.anomalies if (a.dimension, a.value) in
            {("account", "111"), ("tag:team", "payments"), ("service", "EC2"), ("region", "ap-south-1")}]
    assert mine, onsets(report)
    assert mine[0].date == day or (shape == "ramp" and mine[0].date == ramp_day), onsets(report)
    assert all(a.date >= day for a in report.anomalies), onsets(report)  # nothing before the onset
    assert mine[0].likely_owner == "payments"
    region = "ap-south-1" if shape == "new region" else "us-east-1"
    assert (mine[0].top_contributors[0].service, mine[0].top_contributors[0].region) == ("EC2", region)
    if shape == "new region":
        new = [a for a in report.anomalies if a.dimension == "region" and a.value == "ap-south-1"]
        assert new[0].date == day and new[0].kind == "new" and new[0].expected == 0 and new[0].percent is None


def test_a_step_is_reported_once_and_absorbed():
    report = detect(to_daily(spiked("step", 110)))
    day = START + dt.timedelta(days=110)
    assert {a.date for a in report.anomalies} == {day}, onsets(report)
    account = [a for a in report.anomalies if a.dimension == "account"]
    assert [(a.value, a.name) for a in account] == [("111", "acct-111")]
    assert len({a.incident for a in report.anomalies}) == 1  # one incident, seen in several series
    assert account[0].excess == pytest.approx(600, rel=0.25)


def test_both_the_dollar_and_the_percent_threshold_are_needed():
    cells = estate(0, days=120)
    rng = np.random.default_rng(9)
    tiny, smooth = ("SQS", "444", "us-east-1", "ops"), ("DynamoDB", "555", "us-east-1", "ops")
    cells[tiny] = np.full(120, 20.0) * rng.lognormal(0, 0.03, 120)
    cells[tiny][100] *= 3  # tripled (+$40), but under the $100 threshold
    cells[smooth] = np.full(120, 2000.0) * rng.lognormal(0, 0.005, 120)
    cells[smooth][90] += 250  # +$250: beyond its noise (z ≈ 5 at the 2% noise floor), but 12.5% < 20%
    daily = to_daily(cells)
    assert detect(daily).anomalies == []
    tiny_day, smooth_day = START + dt.timedelta(days=100), START + dt.timedelta(days=90)
    assert {(tiny_day, "account", "444"), (tiny_day, "service", "SQS")} <= set(onsets(detect(daily, Thresholds(dollars=30))))
    assert {(smooth_day, "account", "555"), (smooth_day, "service", "DynamoDB")} <= set(
        onsets(detect(daily, Thresholds(percent=10))))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shape=st.sampled_from(["step", "ramp", "burst", "new region"]),
       onset=st.integers(20, 95), cut=st.integers(8, 119), magnitude=st.floats(100, 1500))
def test_appending_later_days_never_changes_an_earlier_verdict(seed, shape, onset, cut, magnitude):
    cells = {k: v[:120] for k, v in spiked(shape, onset, seed % 50, magnitude).items()}
    full = detect(to_daily(cells)).anomalies
    prefix = detect(to_daily(cells, days=cut)).anomalies
    last = START + dt.timedelta(days=cut - 1)
    assert [a.to_json() for a in full if a.date <= last] == [a.to_json() for a in prefix]


def test_a_monthly_charge_is_reported_the_first_month_only():
    cells = estate(3, days=200)
    fee = np.zeros(200)
    for d in range(200):
        if (START + dt.timedelta(days=d)).day == 1 and d >= 60:
            fee[d] = 2000.0
    cells[("Support", "111", "global", "payments")] = fee
    report = detect(to_daily(cells))
    assert {a.date for a in report.anomalies} == {dt.date(2024, 3, 1)}, onsets(report)
    assert ("service", "Support") in {(a.dimension, a.value) for a in report.anomalies}


def test_an_intermittent_batch_job_is_not_a_spike_each_time_it_runs():
    cells = estate(4)
    rng = np.random.default_rng(4)
    cells[("Glue", "666", "us-east-1", "data")] = np.where(rng.random(180) < 0.3, rng.uniform(200, 600, 180), 0.0)
    report = detect(to_daily(cells))
    assert report.anomalies == [], onsets(report)


def test_days_without_any_charge_are_passed_over():
    cells = {k: np.where((np.arange(150) >= 100) & (np.arange(150) < 104), 0.0, v[:150])
             for k, v in estate(5).items()}
    report = detect(to_daily(cells))
    assert report.anomalies == [], onsets(report)
    assert any("4 day(s) without any charge" in n for n in report.notes)


HEADER = ("BilledCost,EffectiveCost,ListCost,BillingAccountId,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,"
          "ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ProviderName,RegionId,ServiceName,SubAccountId,"
          "SubAccountName,Tags\n")


def _row(cost: float, start: dt.datetime, end: dt.datetime, region: str, service: str, account: str, name: str,
         tags: dict | None) -> str:
    month = dt.datetime(start.year, start.month, 1)
    following = dt.datetime(start.year + (start.month == 12), start.month % 12 + 1, 1)
    tag_text = '"' + json.dumps(tags).replace('"', '""') + '"' if tags else ""
    iso = (lambda m: m.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return (f"{cost},{cost},{cost},999,USD,{iso(month)},{iso(following)},Usage,{iso(start)},{iso(end)},AWS,{region},"
            f"{service},{account},{name},{tag_text}\n")


def test_owner_and_top_contributors_on_a_hand_built_ledger(tmp_path):
    """Constant spend for 40 days (so every baseline is exactly the constant), then on day 40:
    EC2/111/us-east-1 +$500 (team a), EC2/222/us-east-1 +$300 (team b), S3/333/us-east-1 +$200
    (no team tag: its account's name owns it), EC2/111/eu-west-1 −$100. One cell is billed by the
    hour, one day by a 3-day row (spread a third a day)."""
    base = {("EC2", "111", "us-east-1"): 1000.0, ("EC2", "222", "us-east-1"): 800.0,
            ("S3", "333", "us-east-1"): 600.0, ("EC2", "111", "eu-west-1"): 400.0}
    extra = {("EC2", "111", "us-east-1"): 500.0, ("EC2", "222", "us-east-1"): 300.0,
             ("S3", "333", "us-east-1"): 200.0, ("EC2", "111", "eu-west-1"): -100.0}
    teams = {"111": {"team": "a"}, "222": {"team": "b"}, "333": None}
    lines = [HEADER]
    for d in range(41):
        day = dt.datetime(2024, 3, 1) + dt.timedelta(days=d)
        for (service, account, region), level in base.items():
            cost = level + (extra[(service, account, region)] if d == 40 else 0.0)
            args = (region, service, account, f"name-{account}", teams[account])
            if service == "S3" and 10 <= d < 13:
                if d == 10:
                    lines.append(_row(3 * cost, day, day + dt.timedelta(days=3), *args))
            elif account == "222":
                lines += [_row(cost / 24, day + dt.timedelta(hours=h), day + dt.timedelta(hours=h + 1), *args)
                          for h in range(24)]
            else:
                lines.append(_row(cost, day, day + dt.timedelta(days=1), *args))
    bill = tmp_path / "bill.csv"
    bill.write_text("".join(lines))
    ledger = tmp_path / "ledger.duckdb"
    ingest([bill], ledger)

    daily = daily_spend(ledger)
    assert daily.tag_keys == ("team",) and daily.owner_key == "team"
    totals = daily.spend.sum(axis=0)
    assert totals[:40] == pytest.approx(np.full(40, 2800.0)) and totals[40] == pytest.approx(3700.0)

    report = find_anomalies(ledger)
    assert find_anomalies(ledger, until=dt.date(2024, 4, 9)).anomalies == []
    assert find_anomalies(ledger, until=dt.date(2024, 4, 10)).anomalies == report.anomalies
    (total,) = [a for a in report.anomalies if a.dimension == "total"]
    assert total.date == dt.date(2024, 4, 10)
    assert (total.amount, total.expected, total.excess) == pytest.approx((3700.0, 2800.0, 900.0))
    assert [(c.service, c.account, c.region, c.excess) for c in total.top_contributors] == [
        ("EC2", "111", "us-east-1", pytest.approx(500.0)), ("EC2", "222", "us-east-1", pytest.approx(300.0)),
        ("S3", "333", "us-east-1", pytest.approx(200.0))]
    assert total.likely_owner == "a"  # a: 500 − 100 = 400 > b: 300 > name-333: 200
    (account,) = [a for a in report.anomalies if a.dimension == "account" and a.value == "333"]
    assert account.likely_owner == "name-333" and account.name == "name-333"
    assert account.percent == pytest.approx(200 / 600 * 100)


def test_json_has_date_amount_and_dimension():
    report = detect(to_daily(spiked("burst", 100)))
    payload = json.loads(json.dumps(report.to_json()))
    first = payload["anomalies"][0]
    assert {"date", "amount", "expected", "excess", "dimension", "value", "likely_owner", "top_contributors"} <= set(first)
    assert dt.date.fromisoformat(first["date"]) == START + dt.timedelta(days=100)
    assert isinstance(first["amount"], float) and payload["thresholds"] == {"dollars": 100.0, "percent": 20.0, "z": 4.0}


def test_a_ledger_of_a_few_days_says_there_is_no_verdict_yet(tmp_path):
    bill = tmp_path / "bill.csv"
    bill.write_text(HEADER + "".join(
        _row(100.0 * (d + 1) ** 3, dt.datetime(2024, 3, 1 + d), dt.datetime(2024, 3, 2 + d), "us-east-1", "EC2", "1",
             "one", None) for d in range(5)))
    ingest([bill], tmp_path / "l.duckdb")
    report = find_anomalies(tmp_path / "l.duckdb")
    assert report.anomalies == [] and report.first_verdict is None
    assert "no verdict yet" in report.notes[0]


def test_thresholds_are_checked():
    with pytest.raises(ValueError, match="percent"):
        Thresholds(percent=-1)
    with pytest.raises(ValueError, match="dollar"):
        Thresholds(dollars=-5)
