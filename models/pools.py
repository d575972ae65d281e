"""Commitment pools: the unit of usage a commitment can cover, named by a structured id."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator


class Pool(BaseModel):
    """A pool id such as ``aws:ec2:us-east-1:m5:linux`` (provider:service:region:family:os).

    Ids with other shapes are allowed (the contracts only need a stable string); the parsed
    parts are then empty. Quantities are in the pool's unit: normalized-unit-hours for
    size-flexible reservations, vCPU-hours for resource CUDs, on-demand dollars for spend pools.
    """

    model_config = ConfigDict(frozen=True)
    id: str
    provider: str = ""
    service: str = ""
    region: str = ""
    family: str = ""
    os: str = ""

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data):
        if isinstance(data, dict) and "id" in data:
            parts = str(data["id"]).split(":")
            if len(parts) == 5:
                for key, value in zip(("provider", "service", "region", "family", "os"), parts):
                    data.setdefault(key, value)
        return data

    @model_validator(mode="after")
    def _non_empty(self) -> "Pool":
        if not self.id.strip():
            raise ValueError("a pool id must not be empty")
        return self

    @classmethod
    def parse(cls, pool_id: str) -> "Pool":
        return cls(id=pool_id)
