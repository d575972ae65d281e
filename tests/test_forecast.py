"""Tests for usage forecasts as weighted scenarios (scenarios/forecast.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from models.usage import UsageMatrix
from scenarios.forecast import MODELS, Forecast, backtest_wape, forecast
from scenarios.sample_estate import generate_estate

START = datetime(2025, 1, 6, tzinfo=timezone.utc)  # a Monday
DAY, WEEK = 24, 168


def usage_matrix_from_frame(df: pd.DataFrame, start: str, hours: int) -> UsageMatrix:
    """Canonical usage rows (zero rows omitted) -> dense hours × pools matrix over [start, start + hours)."""
    index = pd.date_range(pd.Timestamp(start), periods=hours, freq="h")
    wide = df.assign(timestamp=pd.to_datetime(df["timestamp"], utc=True)) \
        .pivot(index="timestamp", columns="pool", values="quantity").reindex(index, fill_value=0.0).fillna(0.0)
    return UsageMatrix(index[0].to_pydatetime(), tuple(wide.columns), wide.to_numpy())


def weekly_profile() -> np.ndarray:
    """168 multiplicative factors with mean 1: a daily cycle and a weekend dip (Mon–Fri alike)."""
    how = np.arange(WEEK)
    shape = (1 + 0.3 * np.cos(2 * np.pi * (how % DAY - 14) / DAY)) * np.where(how >= 5 * DAY, 0.75, 1.0)
    return shape / shape.mean()


def synthetic(days: int, base: np.ndarray, slope_per_day: np.ndarray, noise: float = 0.0,
              seed: int = 0, total_days: int | None = None) -> tuple[UsageMatrix, np.ndarray]:
    """(history of ``days`` days, the noise-free truth over ``total_days``) for known trend × season."""
    total = (total_days or days) * DAY
    t = np.arange(total)
    truth = (base + slope_per_day * (t[:, None] - 11.5) / DAY) * weekly_profile()[t % WEEK][:, None]
    noisy = truth * np.maximum(0.0, 1 + noise * np.random.default_rng(seed).standard_normal(truth.shape))
    pools = tuple(f"aws:ec2:us-east-1:m5:p{p}" for p in range(len(base)))
    return UsageMatrix(START, pools, noisy[: days * DAY]), truth


def weekly_slope(series: np.ndarray) -> np.ndarray:
    """Least-squares slope per day of the weekly means (hours × pools, whole weeks)."""
    weeks = series.reshape(-1, WEEK, series.shape[1]).mean(axis=1)
    x = np.arange(len(weeks)) * 7.0
    return np.polyfit(x, weeks, 1)[0]


BASE = np.array([100.0, 40.0, 250.0])
SLOPE = np.array([0.5, -0.1, 2.0])  # units per day


def test_noise_free_series_is_recovered() -> None:
    history, truth = synthetic(112, BASE, SLOPE, total_days=112 + 56)
    fc = forecast(history, 56 * DAY, scenarios=20, seed=1)
    actual = truth[112 * DAY:]
    wape = np.abs(actual - fc.mean()).sum() / actual.sum()
    assert wape < 0.01
    np.testing.assert_allclose(weekly_slope(fc.mean()), SLOPE, rtol=0.05)
    cut = UsageMatrix(START, history.pools, truth[: 112 * DAY + 56 * DAY])
    assert backtest_wape(cut, 56 * DAY, "seasonal_trend") < 0.01


def test_noisy_series_trend_and_season() -> None:
    history, truth = synthetic(140, BASE, SLOPE, noise=0.08, seed=3, total_days=140 + 28)
    fc = forecast(history, 28 * DAY, seed=2)
    # the slope is known only up to its standard error on the 8-week fit window: allow 3 of them
    level = BASE + SLOPE * 140
    se = 0.08 * level / np.sqrt(DAY) / np.sqrt(56**3 / 12)
    assert (np.abs(weekly_slope(fc.mean()) - SLOPE) < 3 * se).all()
    actual = truth[140 * DAY:]
    # against the noise-free truth: the profile is a median of 8 weeks of 8 % hourly noise (≈ 3 % error)
    assert np.abs(actual - fc.mean()).sum() / actual.sum() < 0.05
    # the hour-of-week shape is recovered: forecast / trend level correlates with the true profile
    ratio = fc.mean()[:WEEK] / fc.mean()[:WEEK].mean(axis=0)
    for p in range(len(BASE)):
        assert np.corrcoef(ratio[:, p], weekly_profile())[0, 1] > 0.97  # profile sd ≈ 0.25, its noise ≈ 0.035


def test_scenarios_are_valid_and_deterministic() -> None:
    history, _ = synthetic(60, BASE, SLOPE, noise=0.05)
    a = forecast(history, 500, scenarios=7, seed=11)
    b = forecast(history, 500, scenarios=7, seed=11)
    c = forecast(history, 500, scenarios=7, seed=12)
    assert isinstance(a, Forecast) and a.model == "seasonal_trend" and a.wape is None
    assert a.paths.shape == (7, 500, 3) and a.paths.dtype == np.float32
    assert a.start == history.start + timedelta(hours=history.hours) and a.pools == history.pools
    assert (a.paths >= 0).all() and np.isfinite(a.paths).all()
    assert a.weights.shape == (7,) and a.weights.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(a.paths, b.paths)
    assert not np.array_equal(a.paths, c.paths)
    assert a.scenario(3).values.shape == (500, 3)


def test_spread_widens_with_horizon() -> None:
    history, _ = synthetic(84, BASE, np.zeros(3), noise=0.1, seed=5)
    fc = forecast(history, 364 * DAY, scenarios=40, seed=0)
    daily = fc.paths.reshape(40, 364, DAY, 3).mean(axis=2)  # daily means per scenario
    spread = np.percentile(daily, 90, axis=0) - np.percentile(daily, 10, axis=0)
    first, last = spread[:7].mean(axis=0), spread[-7:].mean(axis=0)
    assert (last > 1.5 * first).all(), (first, last)


def test_baselines() -> None:
    history, _ = synthetic(30, BASE, SLOPE, noise=0.05)
    naive = forecast(history, 2 * WEEK + 5, model="seasonal_naive", scenarios=3)
    last_week = history.values[-WEEK:]
    np.testing.assert_allclose(naive.paths[1, :WEEK], last_week, rtol=1e-6)
    np.testing.assert_allclose(naive.paths[2, WEEK: 2 * WEEK], last_week, rtol=1e-6)
    flat = forecast(history, 10, model="flat")
    np.testing.assert_allclose(flat.mean(), np.broadcast_to(history.values[-30 * DAY:].mean(axis=0), (10, 3)),
                               rtol=1e-6)


def test_launch_and_decommission() -> None:
    history, _ = synthetic(70, BASE, np.zeros(3))
    values = history.values.copy()
    values[: 50 * DAY, 0] = 0.0  # launched 20 days ago
    values[-10 * DAY:, 1] = 0.0  # decommissioned 10 days ago
    fc = forecast(UsageMatrix(START, history.pools, values), 14 * DAY, seed=0)
    mean = fc.mean()
    assert mean[:, 0].mean() == pytest.approx(BASE[0], rel=0.02)
    assert (fc.paths[:, :, 1] == 0).all()


def ramped(days: int, ends_days_before: int, noise: float = 0.05, seed: int = 0) -> tuple[UsageMatrix, np.ndarray]:
    """Pool 0: flat at 50, then a 14-day migration ramp to 100 ending ``ends_days_before`` days before
    the end of history; pool 1: the pool it drains (100 -> 50); pool 2: a steady trend (100, +0.2/day).
    Returns the history and each pool's mean level over its last week."""
    t = np.arange(days * DAY)
    end = (days - ends_days_before) * DAY
    ramp = np.clip((t - (end - 14 * DAY)) / (14 * DAY), 0.0, 1.0)
    level = np.stack([50 + 50 * ramp, 100 - 50 * ramp, 100 + 0.2 * (t - 11.5) / DAY], axis=1)
    truth = level * weekly_profile()[t % WEEK][:, None]
    noisy = truth * np.maximum(0.0, 1 + noise * np.random.default_rng(seed).standard_normal(truth.shape))
    return UsageMatrix(START, tuple(f"aws:ec2:us-east-1:m5:p{p}" for p in range(3)), noisy), level[-WEEK:].mean(axis=0)


@pytest.mark.parametrize("ends_days_before", [0, 3, 10, 21, 35])
def test_ramp_ending_in_history_is_held_flat_at_its_end_level(ends_days_before: int) -> None:
    history, last_week = ramped(180, ends_days_before, seed=ends_days_before)
    mean = forecast(history, 364 * DAY, scenarios=20, seed=0).mean()
    weekly = mean.reshape(-1, WEEK, 3).mean(axis=1)  # 52 weekly means
    # the ramps are not extrapolated for a year: both pools stay at their last week's level (the
    # end level, 100 and 50, once the ramp is over; a ramp still running is not extrapolated either)
    np.testing.assert_allclose(weekly[:, 0], last_week[0], rtol=0.05)
    np.testing.assert_allclose(weekly[:, 1], last_week[1], rtol=0.08)
    # the steady trend next to them is still extrapolated: 0.2/day for a year
    assert abs(weekly_slope(mean)[2] - 0.2) < 0.05
    assert weekly[-1, 2] == pytest.approx(100 + 0.2 * (180 + 360), rel=0.08)  # held flat: ~136


@pytest.mark.parametrize("seed", range(5))
def test_steady_noisy_trends_are_extrapolated(seed: int) -> None:
    """No bend is seen in a steady trend with noise and spikes: the year ahead keeps the slope."""
    history, truth = synthetic(180, BASE, SLOPE, noise=0.1, seed=seed, total_days=180 + 364)
    values = history.values.copy()
    rng = np.random.default_rng(100 + seed)
    for p in range(3):  # a few spikes of a day, up to 1.5 × the level
        for at in rng.integers(0, 180 * DAY - DAY, size=3):
            values[at : at + DAY, p] += BASE[p] * rng.uniform(0.3, 1.5)
    mean = forecast(UsageMatrix(START, history.pools, values), 364 * DAY, seed=0).mean()
    actual = truth[180 * DAY:]
    assert np.abs(actual - mean).sum() / actual.sum() < 0.08
    np.testing.assert_allclose(weekly_slope(mean), SLOPE, atol=0.25 * np.abs(SLOPE).max())


def test_backtest_wape_is_stored() -> None:
    history, _ = synthetic(60, BASE, SLOPE, noise=0.05)
    fc = forecast(history, 48, backtest_hours=14 * DAY)
    assert fc.wape == pytest.approx(backtest_wape(history, 14 * DAY, "seasonal_trend"))
    assert 0 <= fc.wape < 0.1


def test_seasonal_trend_beats_baselines_on_generated_estates() -> None:
    """Measured (20 pools, 150 days, 28-day holdout, seeds 0–2); see the report for the numbers."""
    days, holdout = 150, 28 * DAY
    wape = {m: [] for m in MODELS}
    for seed in (0, 1, 2):
        estate = generate_estate(20, days, seed, savings_plans="none")
        history = usage_matrix_from_frame(estate.usage, "2025-01-01T00:00:00Z", days * DAY)
        for m in MODELS:
            wape[m].append(backtest_wape(history, holdout, m))
    mean = {m: float(np.mean(v)) for m, v in wape.items()}
    assert mean["seasonal_trend"] < mean["seasonal_naive"], wape
    assert mean["seasonal_trend"] < mean["flat"], wape


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"horizon_hours": 0}, "horizon_hours must be a positive"),
    ({"horizon_hours": -5}, "horizon_hours must be a positive"),
    ({"model": "prophet"}, "unknown forecast model 'prophet'"),
    ({"scenarios": 0}, "scenarios must be at least 1"),
])
def test_bad_arguments(kwargs: dict, message: str) -> None:
    history, _ = synthetic(20, BASE, SLOPE)
    with pytest.raises(ValueError, match=message):
        forecast(history, **{"horizon_hours": 24, **kwargs})


def test_bad_history() -> None:
    short, _ = synthetic(13, BASE, SLOPE)
    with pytest.raises(ValueError, match="at least 14 days"):
        forecast(short, 24)
    history, _ = synthetic(20, BASE, SLOPE)
    bad = history.values.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite and >= 0"):
        forecast(UsageMatrix(START, history.pools, bad), 24)
    with pytest.raises(ValueError, match="at least 14 days"):
        backtest_wape(history, 10 * DAY, "flat")  # 10 days left to fit on
    with pytest.raises(ValueError, match="holdout_hours must be a positive"):
        backtest_wape(history, 0, "flat")
