"""Commitments already owned and purchases proposed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _utc_hour(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a UTC offset")
    return value


class Commitment(BaseModel):
    """An existing commitment, active on hours [start, end)."""

    model_config = ConfigDict(frozen=True)
    offering: str
    quantity: float = Field(gt=0)
    start: datetime
    end: datetime

    _tz = field_validator("start", "end")(_utc_hour)

    @model_validator(mode="after")
    def _order(self) -> "Commitment":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Purchase(BaseModel):
    """A purchase of ``quantity`` of an offering, active from ``start`` for its whole term."""

    model_config = ConfigDict(frozen=True)
    offering: str
    quantity: float = Field(ge=0)
    start: datetime

    _tz = field_validator("start")(_utc_hour)
