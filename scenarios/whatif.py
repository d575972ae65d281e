"""What-if overlays on a usage outlook (DESIGN.md §2: U_s ``+ what-if overlays``).

``load_overlays(path)`` reads a YAML file of overlays; ``apply_overlays(usage, overlays)`` applies
them to one :class:`~models.usage.UsageMatrix`, ``apply_to_paths(paths, pools, start, overlays)``
to every scenario of a forecast (``paths[scenario, hour, pool]``) at once, with the same result as
applying them to each scenario separately. Overlays apply in file order, each to the result of
the ones before it (grow a pool, then migrate it: the grown usage moves; migrate, then grow the
source: only what is left grows). A pool that does not exist yet (a launch, a migration target)
becomes a new column; pools stay sorted. Quantities stay >= 0.

YAML schema::

    overlays:
      - kind: growth                 # multiply usage of the selected pools
        pools: "aws:ec2:us-east-1:*" # selector: a glob pattern on pool ids, or a list of them
        factor: 1.3                  # >= 0: 1.3 = +30 %, 0.7 = -30 % ...
        # annual_rate: 0.25          # ... or compound growth of +25 %/year from `from` (> -1);
        #                            # exactly one of factor / annual_rate
        from: 2025-07-01             # optional, default: the start of the outlook
        ramp_days: 30                # optional (factor only): 1 -> factor linearly over 30 days
      - kind: migration              # move usage from one pool to another
        from_pool: aws:ec2:us-east-1:t3:linux   # exact id, must exist
        to_pool: aws:ec2:us-east-1:t4g:linux    # exact id, created if new
        share: 1.0                   # in [0, 1], share of the source's usage moved (default 1)
        start: 2025-09-01
        ramp_days: 30                # default 14
        ratio: 1.0                   # > 0, units of to_pool per unit of from_pool (default 1)
      - kind: launch                 # new usage in a pool (new or existing)
        pool: aws:ec2:us-west-2:m6i:linux
        level: 40                    # >= 0 units per hour (average over a day)
        start: 2025-10-01
        ramp_days: 14                # optional, default 0
        daily_profile: true          # optional: shaped by the outlook's average daily cycle
      - kind: decommission           # usage of the selected pools falls to zero
        pools: ["aws:ec2:eu-west-1:m5:*"]
        start: 2025-11-15
        ramp_days: 7                 # optional, default 0

Dates are ISO 8601 dates or date-times (``2025-07-01``, ``2025-07-01T06:00:00Z``); without a zone
they are UTC. A date before the outlook means the change is already (partly) in effect when it
begins; a date after its end means no effect.

Ramps, with ``s`` the hour index of the start (floor of the offset from the outlook start) and
``R = max(1, round(24 × ramp_days))`` hours: the weight in hour ``t`` is
``w(t) = clip((t − s + 1) / R, 0, 1)`` — 0 before the start, 1/R in the start hour, complete in
hour ``s + R − 1`` (no ramp: a step at ``s``). Then, with ``x`` the usage before the overlay:

- growth (factor ``f``): ``x × (1 + (f − 1) w(t))``; growth (annual rate ``r``):
  ``x × (1 + r) ** ((t − s) / 8760)`` for ``t >= s``, unchanged before;
- migration: ``moved = share × w(t) × x[from_pool]``; ``x[from_pool] −= moved``,
  ``x[to_pool] += ratio × moved`` (ratio 1 conserves usage exactly);
- launch: ``x[pool] += level × w(t) × d(hour of day)``, ``d`` = 1, or with ``daily_profile`` the
  mean total usage of the outlook (all pools, as it stands before this overlay, per scenario) by
  UTC hour of day divided by its mean over the hours of day (flat when the outlook is all zero);
- decommission: ``x × (1 − w(t))``.

Errors in the file raise :class:`~models.errors.InputError` naming the file, the line (of the
offending key, or of the item when a key is missing) and the key. A selector that matches no pool
is only known when the overlays meet an outlook; ``apply_*`` raise the same error then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase

import numpy as np

from models.usage import UsageMatrix

from scenarios.overlay_files import load_overlays, parse_overlays
from scenarios.overlays import (
    HOURS_PER_YEAR, KINDS, Decommission, Growth, Launch, Migration, Origin, Overlay,
)

__all__ = [
    "Decommission", "Growth", "KINDS", "Launch", "Migration", "Origin", "Overlay",
    "apply_overlays", "apply_to_paths", "load_overlays", "parse_overlays",
]



def apply_overlays(usage: UsageMatrix, overlays: list[Overlay]) -> UsageMatrix:
    """``usage`` with ``overlays`` applied in order (a new matrix; new pools become columns)."""
    paths, pools = apply_to_paths(usage.values[None, :, :], usage.pools, usage.start, overlays)
    return UsageMatrix(usage.start, pools, paths[0])


def apply_to_paths(paths: np.ndarray, pools: tuple[str, ...] | list[str], start: datetime,
                   overlays: list[Overlay]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Apply ``overlays`` to every scenario of ``paths[scenario, hour, pool]`` (hour 0 = ``start``).

    Returns new ``(paths, pools)`` in the dtype of ``paths``; ``pools`` sorted, new pools added.
    """
    if paths.ndim != 3 or paths.shape[2] != len(pools):
        raise ValueError("paths must be scenarios × hours × pools")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    state = _State(np.array(paths, copy=True), list(pools), start)
    state.sort()
    for overlay in overlays:
        _APPLY[overlay.kind](state, overlay)
    np.maximum(state.paths, 0.0, out=state.paths)
    return state.paths, tuple(state.pools)


@dataclass
class _State:
    paths: np.ndarray  # [scenarios, hours, pools]
    pools: list[str]
    start: datetime

    @property
    def hours(self) -> int:
        return int(self.paths.shape[1])

    def sort(self) -> None:
        order = sorted(range(len(self.pools)), key=self.pools.__getitem__)
        if order != list(range(len(self.pools))):
            self.paths = self.paths[:, :, order]
            self.pools = [self.pools[i] for i in order]

    def column(self, pool: str) -> int:
        """Index of ``pool``, adding a zero column (kept sorted) when it is new."""
        if pool in self.pools:
            return self.pools.index(pool)
        at = int(np.searchsorted(np.array(self.pools, dtype=object), pool)) if self.pools else 0
        self.paths = np.insert(self.paths, at, 0.0, axis=2)
        self.pools.insert(at, pool)
        return at

    def select(self, patterns: tuple[str, ...], origin: Origin, key: str) -> list[int]:
        chosen = [i for i, pool in enumerate(self.pools) if any(fnmatchcase(pool, p) for p in patterns)]
        if not chosen:
            shown = ", ".join(self.pools[:5]) + (" …" if len(self.pools) > 5 else "")
            raise origin.error(key, f"{key} {list(patterns)} matches no pool of the outlook (pools: {shown})")
        return chosen

    def offset(self, moment: datetime | None) -> int:
        if moment is None:
            return 0
        return math.floor((moment - self.start) / timedelta(hours=1))

    def ramp(self, moment: datetime | None, ramp_days: float) -> np.ndarray:
        """w(t) over the outlook's hours (float64, in [0, 1])."""
        s = self.offset(moment)
        length = max(1, round(24 * ramp_days))
        t = np.arange(self.hours, dtype=np.float64)
        return np.clip((t - s + 1) / length, 0.0, 1.0)


def _growth(state: _State, overlay: Growth) -> None:
    columns = state.select(overlay.pools, overlay.origin, "pools")
    if overlay.factor is not None:
        multiplier = 1.0 + (overlay.factor - 1.0) * state.ramp(overlay.start, overlay.ramp_days)
    else:
        elapsed = np.arange(state.hours, dtype=np.float64) - state.offset(overlay.start)
        multiplier = np.where(elapsed >= 0, (1.0 + overlay.annual_rate) ** (np.maximum(elapsed, 0) / HOURS_PER_YEAR),
                              1.0)
    state.paths[:, :, columns] *= multiplier[None, :, None].astype(state.paths.dtype)


def _migration(state: _State, overlay: Migration) -> None:
    if overlay.from_pool not in state.pools:
        raise overlay.origin.error("from_pool", f"from_pool '{overlay.from_pool}' is not a pool of the outlook")
    target = state.column(overlay.to_pool)
    source = state.pools.index(overlay.from_pool)
    weight = overlay.share * state.ramp(overlay.start, overlay.ramp_days)
    moved = state.paths[:, :, source] * weight[None, :].astype(state.paths.dtype)
    state.paths[:, :, source] -= moved
    state.paths[:, :, target] += moved if overlay.ratio == 1.0 else moved * overlay.ratio


def _launch(state: _State, overlay: Launch) -> None:
    shape = np.ones((state.paths.shape[0], state.hours))
    if overlay.daily_profile:
        shape = _daily_profile(state)
    column = state.column(overlay.pool)
    added = overlay.level * state.ramp(overlay.start, overlay.ramp_days)[None, :] * shape
    state.paths[:, :, column] += added.astype(state.paths.dtype)


def _daily_profile(state: _State) -> np.ndarray:
    """[scenarios, hours]: each scenario's mean total usage by UTC hour of day / its mean over hours of day."""
    total = state.paths.sum(axis=2, dtype=np.float64)  # [scenarios, hours]
    hour_of_day = (state.start.astimezone(timezone.utc).hour + np.arange(state.hours)) % 24
    present = np.bincount(hour_of_day, minlength=24) > 0
    sums = np.stack([np.bincount(hour_of_day, weights=row, minlength=24) for row in total])
    by_hour = sums[:, present] / np.bincount(hour_of_day, minlength=24)[present]
    level = by_hour.mean(axis=1, keepdims=True)
    profile = np.ones((total.shape[0], 24))
    live = level[:, 0] > 0
    profile[np.ix_(live, present)] = by_hour[live] / level[live]
    return profile[:, hour_of_day]


def _decommission(state: _State, overlay: Decommission) -> None:
    columns = state.select(overlay.pools, overlay.origin, "pools")
    keep = 1.0 - state.ramp(overlay.start, overlay.ramp_days)
    state.paths[:, :, columns] *= keep[None, :, None].astype(state.paths.dtype)


_APPLY = {"growth": _growth, "migration": _migration, "launch": _launch, "decommission": _decommission}
