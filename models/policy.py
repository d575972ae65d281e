"""Purchase policy: the limits finance states (a YAML file), validated. No business logic here.

```yaml
allowed_kinds: [reservation, savings_plan]      # default: both
allowed_terms: [12, 36]                         # months; default: any
allowed_payments: [no_upfront, partial_upfront] # default: any
upfront_budget: 50000                           # $ paid upfront for new purchases, at most
max_three_year_share: 0.5                       # of new purchases' amortized $/h in terms of 36+ months
risk_weight: 0.5                                # objective: E[cost] + weight × CVaR_alpha[cost]
alpha: 0.95                                     # CVaR confidence level
cvar_limit: 1200000                             # $: CVaR_alpha of total cost at most
coverage_min: 0.60                              # share of eligible usage (on-demand-equivalent $) covered,
coverage_max: 0.90                              #   expected over the scenarios
utilization_floor: 0.95                         # every new commitment's utilization, at least ...
utilization_scenario: low                       #   ... in this scenario: low (least usage) or an index
ladder_months: 12                               # purchase dates: the first hour of each of the first 12 months
max_monthly_purchase: 40                        # $/h (amortized) of new commitment starting in any one month
max_monthly_expiry: 60                          # $/h of commitment (existing + new) expiring in any one month
cost_of_capital: 0.08                           # a year: minimize the present value of cost (NPV)
renew_existing: true                            # renewing an existing commitment at expiry is a decision
```

Limits that cannot all hold are explained by :mod:`solver.conflicts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.errors import InputError
from models.pricing import OfferingKind, Payment


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_kinds: list[OfferingKind] | None = None
    allowed_terms: list[int] | None = None
    allowed_payments: list[Payment] | None = None
    upfront_budget: float | None = Field(default=None, ge=0)
    max_three_year_share: float | None = Field(default=None, ge=0, le=1)
    risk_weight: float = Field(default=0.0, ge=0)
    alpha: float = Field(default=0.95, ge=0, lt=1)
    cvar_limit: float | None = Field(default=None, ge=0)
    coverage_min: float | None = Field(default=None, ge=0, le=1)
    coverage_max: float | None = Field(default=None, ge=0, le=1)
    utilization_floor: float | None = Field(default=None, gt=0, le=1)
    utilization_scenario: Literal["low"] | int = "low"
    ladder_months: int = Field(default=1, ge=1, le=120)
    max_monthly_purchase: float | None = Field(default=None, ge=0)
    max_monthly_expiry: float | None = Field(default=None, ge=0)
    cost_of_capital: float | None = Field(default=None, ge=0, lt=1)
    renew_existing: bool = True

    @field_validator("utilization_scenario")
    @classmethod
    def _scenario(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value < 0:
            raise ValueError("a scenario index is ≥ 0")
        return value


def _key_lines(text: str) -> dict[str, int]:
    """Line (1-based) of each top-level key, for errors that point into the file."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value}


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "file not found")
    text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(str(path), f"not valid YAML: {getattr(e, 'problem', e)}", row=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError(str(path), "a policy is a mapping of limit names to values")
    try:
        return Policy(**data)
    except ValidationError as e:
        first = e.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else None
        message = "unknown limit (known: " + ", ".join(Policy.model_fields) + ")" if first["type"] == "extra_forbidden" else first["msg"]
        raise InputError(str(path), message, row=_key_lines(text).get(key), column=key) from None
