"""Purchase policy: the limits finance states (a YAML file), validated. No business logic here.

```yaml
allowed_kinds: [reservation, savings_plan]      # default: both
allowed_terms: [12, 36]                         # months; default: any
allowed_payments: [no_upfront, partial_upfront] # default: any
upfront_budget: 50000                           # $ paid upfront for new purchases, at most
max_three_year_share: 0.5                       # of new purchases' amortized $/h in terms of 36+ months
risk_weight: 0.5                                # objective: E[cost] + weight × CVaR_alpha[cost]
alpha: 0.95                                     # CVaR confidence level
```
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
