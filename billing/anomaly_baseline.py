"""The expected spend of a day from the days before it: weekday profile × level, with a trend.

For each series, from a trailing window of ``window`` days (56: eight whole weeks) that ends the
day before the day judged — never the day itself or any later day:

- **weekday profile**: each whole week of the window is divided by its own mean, and each
  weekday's factor is the 20%-trimmed mean of its ratios over the weeks (a level shift inside the
  window moves no factor, one odd week does not either); it needs ``profile_weeks`` (3) weeks with
  a ratio for every weekday, else the profile is flat. After a level shift the profile comes from
  the weeks since the shift once there are 3 of them, and until then is the old one shrunk toward
  flat by old level / new level (see ``_profile``);
- **level**: the 20%-trimmed mean of the last ``level_days`` (14) deseasonalized days the caller
  marks usable (the detector leaves out days of an open incident and days before a level shift it
  has absorbed);
- **trend**: when the 14 usable days before those are there too, the difference of the two
  blocks' levels per day, carried from the recent block's centre to the day judged, damped by
  ``trend_damping`` (0.5) and kept within ½–2× the level;
- **noise**: the robust scale of day-to-day changes of the log deseasonalized spend (a MAD, then
  the root mean square of changes clipped at 3 MADs, ÷ √2: a step or a burst is one or two
  outliers in it), at least ``sigma_floor`` (2%), or ``sigma_prior`` (15%) where fewer than 6
  changes are known; corrected for the profile fitted on the same weeks and inflated for the error
  of the level and of the profile: σ·√(1 + 1.1/n_level + 1.1/n_weeks). Measured on lognormal
  noise with weekday effects and trends, the resulting z-scores have a standard deviation of 1.05.

A series with no spend at all in the window has expected spend 0 (``new``). One that spent nothing
on more than a quarter of its recent days, weekday profile aside (an intermittent series: a batch
job), is expected at its mean, with a relative scale of 1: only spend tens of times its mean
stands out. A series whose level is
negative (credits) gets no verdict (expected NaN).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

MAD_TO_SIGMA = 1.4826
TRIM = 0.2
"""Share cut at each end by the trimmed means (weekday factors, level)."""
VARIANCE_FACTOR = 1.1
"""Variance of a 20%-trimmed mean of n normal values, in units of σ²/n (about 1.06–1.15 for n ≤ 14)."""
INTERMITTENT = 0.25
"""A series with no spend on more than this share of its recent days (its weekday profile aside) is
intermittent."""
CLIP = 3.0
CLIPPED_VARIANCE = 0.9950
"""E[min(X², CLIP²)] for a standard normal X at CLIP = 3: the clipped scale's correction."""


@dataclass(frozen=True)
class BaselineParams:
    window: int = 56
    level_days: int = 14
    profile_weeks: int = 3
    trend_damping: float = 0.5
    sigma_floor: float = 0.02
    sigma_prior: float = 0.15
    min_history: int = 7
    """Days of ledger history before the first day judged."""

    def __post_init__(self) -> None:
        if self.window % 7 or self.window < 14:
            raise ValueError(f"window must be a whole number of weeks, at least 2 (got {self.window} days)")
        if not 1 <= self.level_days <= self.window // 2:
            raise ValueError(f"level_days must be between 1 and half the window (got {self.level_days})")


@dataclass
class Baseline:
    expected: np.ndarray
    """Expected spend of the day judged, per series (NaN: no verdict possible)."""
    sigma: np.ndarray
    """Relative (log) scale of the day's deviation from ``expected``."""
    new: np.ndarray
    """No spend at all in the window."""
    factor: np.ndarray
    """The weekday factor applied to the day judged."""


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(*args, **kwargs)


def trimmed_mean(values: np.ndarray, trim: float = TRIM) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each row's non-NaN values without the ``trim`` share at each end (NaN for an
    empty row), and the number of values."""
    ordered = np.sort(values, axis=1)  # NaN last
    n = np.sum(~np.isnan(values), axis=1)
    k = np.floor(trim * n).astype(int)
    sums = np.concatenate([np.zeros((len(values), 1)), np.cumsum(np.nan_to_num(ordered), axis=1)], axis=1)
    hi = np.take_along_axis(sums, (n - k)[:, None], axis=1)[:, 0]
    lo = np.take_along_axis(sums, k[:, None], axis=1)[:, 0]
    kept = n - 2 * k
    return np.where(kept > 0, (hi - lo) / np.maximum(kept, 1), np.nan), n


def weekday_factors(window: np.ndarray, ok: np.ndarray, profile_weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """Factors (S, 7) for the columns of the window reshaped to weeks: column 0 is the weekday of
    the day judged (the window is whole weeks and ends the day before). Mean 1 per series; flat
    (all 1) without ``profile_weeks`` ratios for every weekday. Also the weeks used (0 if flat)."""
    s, w = window.shape
    x = np.where(ok, window, np.nan).reshape(s, w // 7, 7)
    counts = np.sum(~np.isnan(x), axis=2)
    week_mean = _quiet(np.nanmean, x, axis=2)
    week_mean[(counts < 6) | ~(week_mean > 0)] = np.nan
    ratio = (x / week_mean[:, :, None]).transpose(0, 2, 1).reshape(s * 7, w // 7)
    factors, rows = trimmed_mean(ratio)
    factors, rows = factors.reshape(s, 7), rows.reshape(s, 7)
    weeks = rows.min(axis=1)
    enough = weeks >= profile_weeks
    factors = np.where(enough[:, None], factors, 1.0)
    mean = factors.mean(axis=1, keepdims=True)
    factors = np.where(mean > 0, factors / np.where(mean > 0, mean, 1.0), 1.0)
    return factors, np.where(enough, weeks, 0)


def noise_scale(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Robust standard deviation of one day's log spend, from day-to-day changes of the log
    deseasonalized spend: a MAD first, then the root mean square of the changes clipped at
    ``CLIP`` MADs (far more efficient than the MAD alone on a few dozen changes, as robust to
    the odd step or burst). NaN with fewer than 6 changes."""
    logs = np.where(ok & (x > 0), np.log(np.where(x > 0, x, 1.0)), np.nan)
    steps = np.diff(logs, axis=1)
    n = np.sum(~np.isnan(steps), axis=1)
    centre = _quiet(np.nanmedian, steps, axis=1)
    deviation = steps - centre[:, None]
    mad = MAD_TO_SIGMA * _quiet(np.nanmedian, np.abs(deviation), axis=1)
    bound = CLIP * mad[:, None]
    clipped = np.clip(deviation, -bound, bound)
    rms = np.sqrt(_quiet(np.nanmean, clipped**2, axis=1) / CLIPPED_VARIANCE)
    return np.where(n >= 6, rms / np.sqrt(2.0), np.nan)


def _last_block(valid: np.ndarray, skip: int, take: int) -> np.ndarray:
    """Mask of the valid positions ranked skip+1 … skip+take counting from the window's end."""
    rank = np.cumsum(valid[:, ::-1], axis=1)[:, ::-1]
    return valid & (rank > skip) & (rank <= skip + take)


def _deseasonalize(window: np.ndarray, factors: np.ndarray) -> np.ndarray:
    f = factors[:, np.arange(window.shape[1]) % 7]
    return np.where(f > 0.05, window / np.where(f > 0.05, f, 1.0), np.nan)


def _profile(window: np.ndarray, ok: np.ndarray, usable: np.ndarray, params: BaselineParams
             ) -> tuple[np.ndarray, np.ndarray]:
    """Weekday factors after a level shift: from the weeks since the shift once there are
    ``profile_weeks`` of them; before that, the window's profile shrunk toward flat by the ratio
    of the old level to the new (≤ 1): an added workload is taken to have no weekday pattern of
    its own, so a dev account whose weekends cost 40% does not make every weekend after a step
    look like a spike (a new series, from zero, is flat)."""
    factors, weeks = weekday_factors(window, ok, params.profile_weeks)
    before = ok & ~usable
    shifted = before.any(axis=1) & usable.any(axis=1)
    if not shifted.any():
        return factors, weeks
    after, weeks_after = weekday_factors(window, usable, params.profile_weeks)
    x = _deseasonalize(window, factors)
    old, _ = trimmed_mean(np.where(_last_block(before & ~np.isnan(x), 0, params.level_days), x, np.nan))
    new, _ = trimmed_mean(np.where(_last_block(usable & ~np.isnan(x), 0, params.level_days), x, np.nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.clip(np.nan_to_num(old / new, nan=0.0, posinf=1.0), 0.0, 1.0)
    shrunk = 1.0 + ratio[:, None] * (factors - 1.0)
    own = weeks_after > 0
    factors = np.where(shifted[:, None], np.where(own[:, None], after, shrunk), factors)
    weeks = np.where(shifted, np.where(own, weeks_after, weeks), weeks)
    return factors, weeks


def baseline(window: np.ndarray, ok: np.ndarray, usable: np.ndarray, params: BaselineParams) -> Baseline:
    """Expected spend of the day after ``window`` (S series × ``params.window`` days, NaN where a
    day is missing or before the ledger). ``ok``: days fit for the profile and the noise (not in an
    open incident); ``usable``: days fit for the level (also on or after the series' last level
    shift)."""
    s, w = window.shape
    ok = ok & ~np.isnan(window)
    usable = usable & ok
    factors, weeks = _profile(window, ok, usable, params)
    x = _deseasonalize(window, factors)

    valid = usable & ~np.isnan(x)
    recent = _last_block(valid, 0, params.level_days)
    before = _last_block(valid, params.level_days, params.level_days)
    level, n_recent = trimmed_mean(np.where(recent, x, np.nan))
    older, n_before = trimmed_mean(np.where(before, x, np.nan))
    positions = np.arange(w, dtype=float)
    centre = (recent * positions).sum(axis=1) / np.maximum(n_recent, 1)
    centre_before = (before * positions).sum(axis=1) / np.maximum(n_before, 1)
    half = params.level_days * 2 // 3
    trending = (n_recent >= half) & (n_before >= half) & (centre > centre_before) & (level > 0) & (older > 0)
    slope = np.where(trending, (level - older) / np.where(trending, centre - centre_before, 1.0), 0.0)
    forecast = level + params.trend_damping * slope * (w - centre)
    forecast = np.where(trending, np.clip(forecast, 0.5 * level, 2.0 * level), level)

    sigma = np.maximum(np.nan_to_num(noise_scale(x, ok), nan=params.sigma_prior), params.sigma_floor)
    with np.errstate(divide="ignore"):
        profile_error = np.where(weeks > 0, VARIANCE_FACTOR / np.maximum(weeks, 1), 0.0)
        in_sample = np.where(weeks > 0, 1.0 / np.sqrt(1.0 - 1.0 / np.maximum(weeks, 2)), 1.0)
    sigma = sigma * in_sample * np.sqrt(1.0 + VARIANCE_FACTOR / np.maximum(n_recent, 1) + profile_error)

    spent = np.where(ok, np.abs(window), 0.0).sum(axis=1) > 0
    new = ~spent & (ok.sum(axis=1) > 0)
    expected = forecast * factors[:, 0]
    zeros = np.sum(recent & ~(x > 0), axis=1)
    intermittent = spent & (~(level > 0) | (zeros > INTERMITTENT * n_recent))
    mean = _quiet(np.nanmean, np.where(usable, window, np.nan), axis=1)
    expected = np.where(intermittent, mean, expected)
    sigma = np.where(intermittent, 1.0, sigma)
    expected = np.where(new, 0.0, expected)
    judged = new | np.where(intermittent, mean > 0, level > 0)
    expected = np.where(judged, expected, np.nan)
    return Baseline(expected, sigma, new, factors[:, 0])
