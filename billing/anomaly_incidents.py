"""The detector's memory, series by series: open incidents, level shifts absorbed, days kept out
of the baseline, and incidents shared by several series (see ``billing.anomalies``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from billing.anomaly_series import Series

LINK_DAYS = 7


@dataclass
class _Incident:
    number: int
    onset: int
    series: set[int]


class IncidentState:
    """Per series: open incident, its first day and length, a fall's first day and length, the
    first day of the current level, and the days kept out of the baseline (open incidents)."""

    def __init__(self, series: Series, present: np.ndarray, window: int):
        n_series, n_days = series.spend.shape
        self.w = window
        self.spend = np.where(present[None, :], series.spend, np.nan)
        self.padded = np.concatenate([np.full((n_series, window), np.nan), self.spend], axis=1)
        self.excluded = np.zeros(self.padded.shape, dtype=bool)
        self.start = np.zeros(n_series, dtype=int)
        self.open = np.zeros(n_series, dtype=bool)
        self.run_start = np.zeros(n_series, dtype=int)
        self.run = np.zeros(n_series, dtype=int)
        self.quiet = np.zeros(n_series, dtype=int)
        self.fall_start = np.zeros(n_series, dtype=int)
        self.fall = np.zeros(n_series, dtype=int)
        self.incident = np.full(n_series, -1)
        self.by_cell: dict[tuple, _Incident] = {}
        self.incidents = 0

    def window(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The days before ``t``: spend, days fit for profile and noise, days fit for the level."""
        ok = ~self.excluded[:, t : t + self.w]
        days = t - self.w + np.arange(self.w)
        return self.padded[:, t : t + self.w], ok, ok & (days[None, :] >= self.start[:, None])

    def active(self, incident: int) -> bool:
        return bool(np.any(self.open & (self.incident == incident)))

    def link(self, key: tuple | None, s: int, t: int) -> tuple[int, bool]:
        """The incident of an onset in series ``s`` whose top contributor is ``key``, and whether
        to report it: the same day as another series' onset with that top contributor, the same
        incident, reported; a later day, while that incident is open or within ``LINK_DAYS`` of
        its onset (a wider series catching up with a ramp or a new region), the same incident,
        not reported again; else a new incident."""
        known = self.by_cell.get(key) if key is not None else None
        if known is not None and s not in known.series and (
                t - known.onset <= LINK_DAYS or self.active(known.number)):
            known.series.add(s)
            self.incident[s] = known.number
            return known.number, known.onset == t
        self.incidents += 1
        if key is not None:
            self.by_cell[key] = _Incident(self.incidents, t, {s})
        self.incident[s] = self.incidents
        return self.incidents, True

    def update(self, t: int, onset, elevated, low, new, shift_days: int) -> None:
        """An incident closes after two days in a row back within half the thresholds; it is a
        level shift once ``shift_days`` have passed since its onset and all but one of them were
        elevated (a weekend of a dev account may not be)."""
        self.quiet = np.where(onset | elevated, 0, self.quiet + 1)
        self.open = onset | (self.open & (self.quiet < 2))
        self.incident = np.where(self.open, self.incident, -1)
        self.run_start = np.where(onset, t, self.run_start)
        self.run = np.where(onset, 1, np.where(self.open & elevated, self.run + 1, self.run))
        self.excluded[:, t + self.w] = self.open
        self.fall_start = np.where(low & (self.fall == 0), t, self.fall_start)
        self.fall = np.where(low, self.fall + 1, 0)
        days = t - self.run_start + 1
        shifted = (self.open & (days >= shift_days) & (self.run >= max(shift_days - 1, 1))) | (onset & new)
        for s in np.flatnonzero(shifted):
            self.start[s] = self.run_start[s]  # a level shift: absorbed from its first day
            self.excluded[s, self.run_start[s] + self.w : t + self.w + 1] = False
        self.start = np.where(self.fall >= shift_days, self.fall_start, self.start)
