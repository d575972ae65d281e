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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from models.errors import InputError
from models.usage import UsageMatrix

KINDS = ("growth", "migration", "launch", "decommission")
HOURS_PER_YEAR = 8760
DEFAULT_MIGRATION_RAMP_DAYS = 14.0

_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required keys, optional keys)
    "growth": ({"pools"}, {"factor", "annual_rate", "from", "ramp_days"}),
    "migration": ({"from_pool", "to_pool", "start"}, {"share", "ramp_days", "ratio"}),
    "launch": ({"pool", "level", "start"}, {"ramp_days", "daily_profile"}),
    "decommission": ({"pools", "start"}, {"ramp_days"}),
}


@dataclass(frozen=True)
class Origin:
    """Where an overlay was written: file, line of the item and line of each of its keys."""

    file: str = "<overlays>"
    line: int | None = None
    key_lines: dict[str, int] = field(default_factory=dict)

    def error(self, key: str | None, message: str) -> InputError:
        row = self.key_lines.get(key, self.line) if key is not None else self.line
        return InputError(self.file, message, row=row, column=key)


@dataclass(frozen=True)
class Growth:
    pools: tuple[str, ...]  # glob patterns
    factor: float | None = None
    annual_rate: float | None = None
    start: datetime | None = None  # `from`; None = start of the outlook
    ramp_days: float = 0.0
    origin: Origin = Origin()
    kind: str = "growth"


@dataclass(frozen=True)
class Migration:
    from_pool: str
    to_pool: str
    start: datetime
    share: float = 1.0
    ramp_days: float = DEFAULT_MIGRATION_RAMP_DAYS
    ratio: float = 1.0
    origin: Origin = Origin()
    kind: str = "migration"


@dataclass(frozen=True)
class Launch:
    pool: str
    level: float
    start: datetime
    ramp_days: float = 0.0
    daily_profile: bool = False
    origin: Origin = Origin()
    kind: str = "launch"


@dataclass(frozen=True)
class Decommission:
    pools: tuple[str, ...]  # glob patterns
    start: datetime
    ramp_days: float = 0.0
    origin: Origin = Origin()
    kind: str = "decommission"


Overlay = Growth | Migration | Launch | Decommission


# ---------------------------------------------------------------------------------------------
# Reading


class _Mapping(dict):
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    line: int = 1
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings carry line numbers and whose timestamps stay strings."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            mapping[key] = loader.construct_object(value_node, deep=True)
        except TypeError:  # unhashable key
            raise yaml.constructor.ConstructorError(None, None, "unhashable key", key_node.start_mark)
        mapping.key_lines[str(key)] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def load_overlays(path: str | Path) -> list[Overlay]:
    """Read and validate a what-if YAML file (schema in the module docstring), in file order."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(file, f"cannot read the file: {exc.strerror or exc}") from None
    return parse_overlays(text, file)


def parse_overlays(text: str, file: str = "<overlays>") -> list[Overlay]:
    """Like :func:`load_overlays` for YAML text; ``file`` names it in errors."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        row = mark.line + 1 if mark is not None else None
        raise InputError(file, f"not valid YAML: {exc.problem or exc}", row=row) from None
    except yaml.YAMLError as exc:
        raise InputError(file, f"not valid YAML: {exc}") from None
    if not isinstance(document, _Mapping) or "overlays" not in document:
        raise InputError(file, "expected a top-level mapping with a list 'overlays:' of overlay items",
                         row=1, column="overlays")
    items = document["overlays"]
    if items is None:
        return []
    if not isinstance(items, list):
        raise InputError(file, "'overlays' must be a list of items, each starting with '- kind: ...'",
                         row=document.key_lines.get("overlays"), column="overlays")
    return [_parse_item(item, file, document.key_lines.get("overlays")) for item in items]


def _parse_item(item: Any, file: str, list_line: int | None) -> Overlay:
    if not isinstance(item, _Mapping):
        raise InputError(file, f"each overlay must be a mapping with a 'kind', got {item!r}",
                         row=list_line, column="overlays")
    origin = Origin(file, item.line, dict(item.key_lines))
    if "kind" not in item:
        raise origin.error("kind", f"missing 'kind': one of {', '.join(KINDS)}")
    kind = item["kind"]
    if kind not in KINDS:
        raise origin.error("kind", f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    required, optional = _FIELDS[kind]
    for key in sorted(required - item.keys()):
        raise origin.error(key, f"{kind} needs '{key}'")
    for key in item.keys() - required - optional - {"kind"}:
        allowed = ", ".join(sorted(required | optional))
        raise origin.error(str(key), f"unknown key '{key}' for {kind}; allowed: {allowed}")
    get = _Getter(item, origin)
    if kind == "growth":
        has_factor, has_rate = "factor" in item, "annual_rate" in item
        if has_factor == has_rate:
            raise origin.error("factor",
                               "growth needs exactly one of 'factor' (1.3 = +30 %) or 'annual_rate' (0.3 = +30 %/year)")
        if has_rate and "ramp_days" in item:
            raise origin.error("ramp_days", "ramp_days applies to 'factor' only; 'annual_rate' already grows gradually")
        return Growth(
            pools=get.selector("pools"),
            factor=get.number("factor", low=0.0, hint="1.3 means +30 %, 0.7 means -30 %") if has_factor else None,
            annual_rate=get.number("annual_rate", low=-1.0, low_open=True, hint="-0.2 means -20 %/year")
            if has_rate else None,
            start=get.moment("from") if "from" in item else None,
            ramp_days=get.ramp(0.0), origin=origin,
        )
    if kind == "migration":
        source, target = get.pool("from_pool"), get.pool("to_pool")
        if source == target:
            raise origin.error("to_pool", "to_pool must differ from from_pool")
        return Migration(
            from_pool=source, to_pool=target, start=get.moment("start"),
            share=get.number("share", low=0.0, high=1.0, default=1.0, hint="0.4 moves 40 % of the source's usage"),
            ramp_days=get.ramp(DEFAULT_MIGRATION_RAMP_DAYS),
            ratio=get.number("ratio", low=0.0, low_open=True, default=1.0,
                             hint="units of to_pool per unit of from_pool"),
            origin=origin,
        )
    if kind == "launch":
        profile = item.get("daily_profile", False)
        if not isinstance(profile, bool):
            raise origin.error("daily_profile", f"daily_profile must be true or false, got {profile!r}")
        return Launch(pool=get.pool("pool"), level=get.number("level", low=0.0, hint="units per hour"),
                      start=get.moment("start"), ramp_days=get.ramp(0.0), daily_profile=profile, origin=origin)
    return Decommission(pools=get.selector("pools"), start=get.moment("start"), ramp_days=get.ramp(0.0),
                        origin=origin)


@dataclass(frozen=True)
class _Getter:
    """Typed access to the keys of one item, raising InputError at the key's line."""

    item: _Mapping
    origin: Origin

    def number(self, key: str, low: float | None = None, high: float | None = None, low_open: bool = False,
               default: float | None = None, hint: str = "") -> float:
        value = self.item.get(key, default)
        note = f" ({hint})" if hint else ""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.origin.error(key, f"{key} must be a number{note}, got {value!r}")
        if low is not None and (value <= low if low_open else value < low):
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            raise self.origin.error(key, f"{key} must be {bound}{note}, got {value!r}")
        if high is not None and value > high:
            raise self.origin.error(key, f"{key} must be between {low:g} and {high:g}{note}, got {value!r}")
        return float(value)

    def ramp(self, default: float) -> float:
        return self.number("ramp_days", low=0.0, default=default, hint="days to reach the full effect")

    def pool(self, key: str) -> str:
        value = self.item[key]
        if not isinstance(value, str) or not value.strip():
            raise self.origin.error(key, f"{key} must be a pool id such as 'aws:ec2:us-east-1:m5:linux', got {value!r}")
        if any(c in value for c in "*?["):
            raise self.origin.error(key, f"{key} must be an exact pool id, not a pattern: {value!r}")
        return value.strip()

    def selector(self, key: str) -> tuple[str, ...]:
        value = self.item[key]
        patterns = [value] if isinstance(value, str) else value
        if not isinstance(patterns, list) or not patterns or \
                not all(isinstance(p, str) and p.strip() for p in patterns):
            raise self.origin.error(
                key, f"{key} must be a glob pattern such as 'aws:ec2:us-east-1:*' or a list of them, got {value!r}")
        return tuple(p.strip() for p in patterns)

    def moment(self, key: str) -> datetime:
        value = self.item[key]
        parsed = _parse_moment(value)
        if parsed is None:
            raise self.origin.error(key, f"{key} must be an ISO date or date-time such as 2025-07-01 or "
                                         f"2025-07-01T06:00:00Z, got {value!r}")
        return parsed


def _parse_moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


# ---------------------------------------------------------------------------------------------
# Applying


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
