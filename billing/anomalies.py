"""Spend anomalies: days whose spend stands out from a seasonal baseline, reported from their onset.

Series: daily ``EffectiveCost`` (``billing.anomaly_series``) by service, account, region, each
tracked tag value, and the total. Each day of each series is judged against a baseline computed
only from the days before it (``billing.anomaly_baseline``: weekday profile × level with a damped
trend over a trailing 8-week window). A day is anomalous when its spend exceeds the baseline by at
least the dollar threshold **and** the percent threshold **and** ``z`` robust standard deviations
(on the log scale); a series with no spend in the whole window (a new region, a new service) is
anomalous from its first day of spend at or above the dollar threshold.

Incidents, not days: the first anomalous day of a series opens an incident and is the one
reported. The incident stays open until the series has been back within half the thresholds
(hysteresis) two days in a row, and its days are kept out of the baseline. Once ``shift_days``
(3) days have passed since the onset, all but one of them elevated, the rise is a level shift
and is absorbed: the level is recomputed from the onset on, so a step is reported once, on its
first day. Falls are not reported but are absorbed the same way (three days in a row below the
band), so a lower level does not make every later day look high. Anomalies of several series on
one day with the same top contributor are one incident (one ``incident`` number); a wider series
that crosses its thresholds on a later day because of the same top contributor (a ramp seen
first in its account, later in the total) is not reported again while that incident is open or
within a week of it. A spike that repeats one of the same series on the same day of the previous
month (a monthly charge: that day stood out by the thresholds too, and today is at most 25% above
it) is not reported again.

History: no day is judged before ``min_history`` (7) days of ledger; the weekday profile needs 3
whole weeks (flat before); days on which the ledger holds no charge at all are passed over. So a
ledger of a few days yields no anomaly and says why in ``notes``. Nothing here looks ahead: a
day's verdict depends on that day and the days before it only, so appending later days never
changes an earlier verdict.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from billing.anomaly_attribution import Contributor, attribute
from billing.anomaly_baseline import Baseline, BaselineParams, baseline
from billing.anomaly_incidents import IncidentState
from billing.anomaly_series import DailySpend, Series, daily_spend, series_of


@dataclass(frozen=True)
class Thresholds:
    dollars: float = 100.0
    """Minimum excess over the baseline, in the ledger's currency per day."""
    percent: float = 20.0
    """Minimum excess as a percent of the baseline (20 means 20%)."""
    z: float = 4.0
    """Minimum robust z-score of the day's log spend against the baseline."""
    shift_days: int = 3
    """Days after which a rise (elevated on all of them but one) or a fall (below the band on all
    of them) is a level shift, absorbed into the baseline from its first day."""

    def __post_init__(self) -> None:
        if self.dollars < 0:
            raise ValueError(f"the dollar threshold must be ≥ 0 (got {self.dollars})")
        if not 0 <= self.percent < 10_000:
            raise ValueError(f"the percent threshold is in percent (20 means 20%), ≥ 0 (got {self.percent})")
        if self.z <= 0:
            raise ValueError(f"the z-score threshold must be > 0 (got {self.z})")
        if self.shift_days < 1:
            raise ValueError(f"shift_days must be ≥ 1 (got {self.shift_days})")


@dataclass(frozen=True)
class Anomaly:
    date: dt.date
    """The onset: the first day the series shows the incident."""
    dimension: str
    """'total', 'service', 'account', 'region' or 'tag:<key>'."""
    value: str
    amount: float
    """The day's spend in the series."""
    expected: float
    excess: float
    percent: float | None
    """Excess as a percent of expected (None for a new series: expected 0)."""
    z: float | None
    kind: str
    """'new' (no spend in the baseline window) or 'spike'."""
    likely_owner: str | None
    """The owner tag value (else the account name) with the largest part of the excess."""
    top_contributors: tuple[Contributor, ...] = ()
    name: str | None = None
    """The account's name, for the account dimension."""
    incident: int = 0
    """Anomalies of one incident (same day, same top contributor) share this number."""

    def to_json(self) -> dict:
        return {
            "date": self.date.isoformat(), "incident": self.incident, "dimension": self.dimension,
            "value": self.value, "name": self.name,
            "amount": round(self.amount, 2), "expected": round(self.expected, 2), "excess": round(self.excess, 2),
            "percent": None if self.percent is None else round(self.percent, 1),
            "z": None if self.z is None else round(self.z, 2), "kind": self.kind,
            "likely_owner": self.likely_owner, "top_contributors": [c.to_json() for c in self.top_contributors],
        }


@dataclass
class AnomalyReport:
    anomalies: list[Anomaly]
    thresholds: Thresholds
    first_day: dt.date | None
    last_day: dt.date | None
    first_verdict: dt.date | None
    """The first day judged (None: the ledger is too short for any)."""
    series: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        iso = (lambda d: None if d is None else d.isoformat())
        return {
            "anomalies": [a.to_json() for a in self.anomalies],
            "thresholds": {"dollars": self.thresholds.dollars, "percent": self.thresholds.percent,
                           "z": self.thresholds.z},
            "first_day": iso(self.first_day), "last_day": iso(self.last_day),
            "first_verdict": iso(self.first_verdict), "series": self.series, "notes": list(self.notes),
        }

    def anomalies_json(self) -> list[dict]:
        """What ``commitplan anomalies --json`` prints: one object per anomaly."""
        return [a.to_json() for a in self.anomalies]

    def to_text(self) -> str:
        """A plain table, one line per anomaly, then the notes."""
        head = (f"{len(self.anomalies)} anomalies in {self.series} series, {self.first_day} to {self.last_day} "
                f"(thresholds: {self.thresholds.dollars:g}/day, {self.thresholds.percent:g}%, z ≥ {self.thresholds.z:g})")
        lines = [head]
        for a in self.anomalies:
            change = "new" if a.percent is None else f"{a.percent:+.0f}%"
            top = ", ".join(f"{c.service}/{c.account}/{c.region} {c.excess:+,.0f}" for c in a.top_contributors)
            lines.append(f"{a.date}  #{a.incident:<3} {a.dimension}={a.value}{f' ({a.name})' if a.name else ''}: "
                         f"{a.amount:,.2f} vs {a.expected:,.2f} expected ({a.excess:+,.2f}, {change}); "
                         f"owner {a.likely_owner or '?'}; top: {top or '—'}")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _month_before(days: np.ndarray) -> np.ndarray:
    """Index of the same day of the month before (the month's last day where it is shorter); -1 if before."""
    months = days.astype("datetime64[M]")
    dom = (days - months.astype("datetime64[D]")).astype(int)
    previous = (months - 1).astype("datetime64[D]")
    last = months.astype("datetime64[D]") - 1
    target = np.minimum(previous + dom, last)
    index = (target - days[0]).astype(int) if len(days) else np.array([], dtype=int)
    return np.where(index >= 0, index, -1)


def _z(amount: np.ndarray, expected: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(np.where(amount > 0, amount, np.nan) / expected) / sigma
    z = np.where((expected == 0) & (amount > 0), np.inf, z)
    return np.where((amount <= 0) & (expected > 0), -np.inf, z)


def _beyond(excess, expected, z, thresholds: Thresholds, scale: float) -> np.ndarray:
    return ((excess >= scale * thresholds.dollars) & (excess >= scale * thresholds.percent / 100 * expected)
            & (z >= scale * thresholds.z))


def detect(daily: DailySpend, thresholds: Thresholds = Thresholds(), params: BaselineParams = BaselineParams(),
           since: dt.date | None = None) -> AnomalyReport:
    """Anomalies of every series of ``daily``, oldest first (those from ``since`` on, if given)."""
    if not len(daily.days):
        return AnomalyReport([], thresholds, None, None, None, 0, ["the ledger holds no charge"])
    series = series_of(daily)
    state = IncidentState(series, daily.present, params.window)
    month_before = _month_before(daily.days)
    found: list[Anomaly] = []
    first_verdict = None
    for t in range(params.min_history, len(daily.days)):
        if not daily.present[t]:
            continue
        if first_verdict is None:
            first_verdict = t
        base = baseline(*state.window(t), params)
        amount = state.spend[:, t]
        excess = amount - base.expected
        z = _z(amount, base.expected, base.sigma)
        judged = ~np.isnan(base.expected)
        with np.errstate(invalid="ignore"):
            hit = judged & _beyond(excess, base.expected, z, thresholds, 1.0)
            elevated = judged & _beyond(excess, base.expected, z, thresholds, 0.5)
            low = judged & _beyond(-excess, base.expected, -z, thresholds, 1.0)
        onset = hit & ~state.open
        onset_quiet = _monthly(state, t, month_before[t], amount, thresholds)
        for s in np.flatnonzero(onset & ~onset_quiet):
            anomaly = _anomaly(daily, series, s, t, amount[s], base, z[s], params)
            incident, new = state.link(_key(anomaly), s, t)
            if new:
                found.append(replace(anomaly, incident=incident))
        state.update(t, onset, elevated, low, base.new, thresholds.shift_days)
    if since is not None:
        found = [a for a in found if a.date >= since]
    found.sort(key=lambda a: (a.date, a.incident, -a.excess))
    return _report(found, thresholds, daily, first_verdict, len(series.value), params)


def _monthly(state: IncidentState, t: int, before: int, amount: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Spikes that repeat one of the same day of the month before (a monthly charge): that day
    spent at least amount / 1.25 and stood out from the window's median by the thresholds."""
    if before < 0:
        return np.zeros(len(amount), dtype=bool)
    prior = state.spend[:, before]
    typical = np.nan_to_num(_quiet_median(state.window(t)[0]))
    with np.errstate(invalid="ignore"):
        return ((prior * 1.25 >= amount) & (prior - typical >= thresholds.dollars)
                & (prior - typical >= thresholds.percent / 100 * typical))


def _quiet_median(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=1)


def _key(anomaly: Anomaly) -> tuple | None:
    top = anomaly.top_contributors
    return (top[0].service, top[0].account, top[0].region) if top else None


def _report(found: list[Anomaly], thresholds: Thresholds, daily: DailySpend, first_verdict: int | None,
            n_series: int, params: BaselineParams) -> AnomalyReport:
    n_days = len(daily.days)
    day = (lambda i: None if i is None else daily.days[i].item())
    report = AnomalyReport(found, thresholds, day(0), day(n_days - 1), day(first_verdict), n_series)
    if first_verdict is None:
        report.notes.append(f"the ledger holds {int(daily.present.sum())} day(s) of spend; the baseline needs "
                            f"{params.min_history} days of history before the first day judged: no verdict yet")
    elif n_days - first_verdict < 21:
        report.notes.append("fewer than 3 weeks of history: no weekday profile yet (a flat baseline)")
    missing = int((~daily.present).sum())
    if missing:
        report.notes.append(f"{missing} day(s) without any charge in the ledger were passed over (export gaps?)")
    return report


def _anomaly(daily: DailySpend, series: Series, s: int, t: int, amount: float, base: Baseline, z: float,
             params: BaselineParams) -> Anomaly:
    expected = float(base.expected[s])
    excess = amount - expected
    contributors, owner = attribute(daily, series.members[s], t, params)
    return Anomaly(
        date=daily.days[t].item(), dimension=series.dimension[s], value=series.value[s], amount=float(amount),
        expected=expected, excess=float(excess), percent=100 * excess / expected if expected > 0 else None,
        z=float(z) if math.isfinite(z) else None, kind="new" if base.new[s] else "spike",
        likely_owner=owner, top_contributors=contributors, name=series.name[s],
    )


def find_anomalies(ledger: Path | str, thresholds: Thresholds = Thresholds(), tag_keys: list[str] | None = None,
                   since: dt.date | None = None, until: dt.date | None = None,
                   params: BaselineParams = BaselineParams()) -> AnomalyReport:
    """Anomalies in a ledger: ``commitplan anomalies``. ``tag_keys``: tag keys to track as series
    (default: the owner-like keys present); ``since``: report only onsets from that day; ``until``:
    judge the ledger as it stood at the end of that day."""
    return detect(daily_spend(ledger, tag_keys, until), thresholds, params, since)
