"""Reading what-if overlays from YAML, with errors that name the file, line and key.

The schema is in :mod:`scenarios.whatif`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from models.errors import InputError

from scenarios.overlays import (
    DEFAULT_MIGRATION_RAMP_DAYS, KINDS, Decommission, Growth, Launch, Migration, Origin, Overlay,
)

_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required keys, optional keys)
    "growth": ({"pools"}, {"factor", "annual_rate", "from", "ramp_days"}),
    "migration": ({"from_pool", "to_pool", "start"}, {"share", "ramp_days", "ratio"}),
    "launch": ({"pool", "level", "start"}, {"ramp_days", "daily_profile"}),
    "decommission": ({"pools", "start"}, {"ramp_days"}),
}




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


