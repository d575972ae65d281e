"""What-if overlay types: growth, migration, launch, decommission (see :mod:`scenarios.whatif`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


from models.errors import InputError

KINDS = ("growth", "migration", "launch", "decommission")
HOURS_PER_YEAR = 8760
DEFAULT_MIGRATION_RAMP_DAYS = 14.0

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


