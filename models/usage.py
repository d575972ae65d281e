"""Hourly usage per pool as a dense matrix (the canonical usage CSV, DESIGN.md §4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np


@dataclass(frozen=True)
class UsageMatrix:
    """``values[t, p]`` is the usage of ``pools[p]`` in the hour starting at ``start + t hours``.

    Missing rows of the CSV are zeros; the window is [start, start + hours).
    """

    start: datetime
    pools: tuple[str, ...]
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.pools):
            raise ValueError("values must be hours × pools")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")

    @property
    def hours(self) -> int:
        return int(self.values.shape[0])

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)

    def hour_index(self, moment: datetime) -> int:
        """Offset in hours of ``moment`` from the window start (may be negative or past the end)."""
        seconds = (moment - self.start).total_seconds()
        return int(np.floor(seconds / 3600.0))

    def column(self, pool: str) -> np.ndarray:
        return self.values[:, self.pools.index(pool)]
