"""Allocation rules: who owns each charge and how shared and commitment costs are split (YAML).

The whole schema (every key optional; a worked example is ``scenarios/examples/allocation/rules.yaml``)::

    cost: effective            # effective: amortized, EffectiveCost (default) | billed: BilledCost (cash)
    owner_from:                # per charge, the first matcher that yields an owner wins
      - tag: team              # the tag's value; key matched exactly, else ignoring case; GCP label lists too
        map: {PeoriaData: data-platform}    # optional: rename some values, the others pass unchanged
      - account: {"51738928782": payments}  # sub account (AWS account, subscription, project): id or name
      - column: sub_account_name            # the value of any text column of the ledger (optional map)
      - owner: platform                     # a constant owner (a catch-all before the fallback)
    fallback: unallocated      # owner of charges no matcher claims; reported as the unallocated share
    shared:                    # charges split among owners; per charge, the first matching rule wins
      - name: support          # optional label
        match: {service_name: "AWS Support*"}  # column: glob (or list of globs, any of); all keys must
                                               # match; key 'owner' matches the owner found above
        split: proportional    # evenly | proportional (to each owner's own usage cost) | fixed
        shares: {checkout: 0.6, data-platform: 0.4}  # fixed only: each > 0, summing to exactly 1
        among: [checkout, data-platform]  # evenly/proportional: receivers (default: every owner with
                                          # own usage cost > 0, except the fallback)
    commitments:
      buyer: owner_from        # default: owner_from applied to the commitment's purchase row (else its
                               # unused row); or an owner name; or a matcher or list of matchers
      unused: buyer            # buyer | spread (over the commitment's users, by their covered cost)

Errors name the file, the line and the key (``shared[0].shares``) through :class:`InputError`.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from decimal import Decimal
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)

from billing.ledger_schema import CHARGE_COLUMNS
from models.errors import InputError

TEXT_COLUMNS = frozenset(c.name for c in CHARGE_COLUMNS if c.sql_type == "VARCHAR")
"""Ledger columns a ``column`` matcher or a ``match`` may name."""


def _owner_name(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("an owner name must not be empty")
        return value.strip()
    return value


OwnerName = Annotated[str, BeforeValidator(_owner_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Matcher(_Strict):
    """One way to find a charge's owner: exactly one of ``tag``, ``account``, ``column``, ``owner``."""

    tag: str | None = None
    account: dict[str, OwnerName] | None = None
    column: str | None = None
    owner: OwnerName | None = None
    map: dict[str, OwnerName] = {}

    @field_validator("column")
    @classmethod
    def _known_column(cls, value: str | None) -> str | None:
        if value is not None and value not in TEXT_COLUMNS:
            raise ValueError(f"unknown ledger column {value!r}; use one of {', '.join(sorted(TEXT_COLUMNS))}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Matcher:
        kinds = [k for k in ("tag", "account", "column", "owner") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a matcher needs exactly one of tag, account, column, owner; got {kinds or 'none'}")
        if self.map and kinds[0] not in ("tag", "column"):
            raise ValueError(f"'map' goes with 'tag' or 'column', not with '{kinds[0]}'")
        return self

    def find(self, charge: Mapping[str, str | None]) -> str | None:
        """The owner this matcher gives a charge (its ledger columns by name), or None."""
        if self.owner is not None:
            return self.owner
        if self.account is not None:
            ids = (charge.get("sub_account_id"), charge.get("sub_account_name"))
            return next((self.account[i] for i in ids if i is not None and i in self.account), None)
        if self.tag is not None:
            tags = parse_tags(charge.get("tags"))
            value = tags.get(self.tag, next((v for k, v in tags.items() if k.lower() == self.tag.lower()), None))
        else:
            value = (charge.get(self.column) or "").strip() or None
        return None if value is None else self.map.get(value, value)


def owner_of(matchers: list[Matcher], charge: Mapping[str, str | None]) -> str | None:
    """The first owner a matcher finds (``owner_from`` semantics)."""
    return next((o for o in (m.find(charge) for m in matchers) if o is not None), None)


@lru_cache(maxsize=65536)
def parse_tags(text: str | None) -> dict[str, str]:
    """Tags as text: FOCUS/CUR ``{"k": "v"}``, GCP labels ``[{"key": k, "value": v}]``, Azure ``"k": "v",...``;
    empty values dropped."""
    if not text or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = json.loads("{" + text + "}")
        except ValueError:
            return {}
    if isinstance(data, list):
        data = {d.get("key"): d.get("value") for d in data if isinstance(d, dict)}
    if not isinstance(data, dict):
        return {}
    pairs = ((str(k), (v if isinstance(v, str) else json.dumps(v)).strip()) for k, v in data.items()
             if k is not None and v is not None)
    return {k: v for k, v in pairs if v}


def _share(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"a share must be a number between 0 and 1, got {value!r}")
    return value


class SharedRule(_Strict):
    """Charges matching ``match`` are split among owners by ``split``."""

    name: str | None = None
    match: dict[str, list[str]]
    split: Literal["evenly", "proportional", "fixed"]
    shares: dict[OwnerName, Annotated[Decimal, BeforeValidator(_share)]] | None = None
    among: list[OwnerName] | None = None

    @field_validator("match", mode="before")
    @classmethod
    def _patterns(cls, value: Any) -> Any:
        if not isinstance(value, dict) or not value:
            raise ValueError("match needs a mapping of column: glob, e.g. {service_name: 'AWS Support*'}")
        for key in value:
            if key != "owner" and key not in TEXT_COLUMNS:
                raise ValueError(f"match: unknown column {key!r}; use 'owner' or one of "
                                 f"{', '.join(sorted(TEXT_COLUMNS))}")
        scalar = (str, int, float)  # an unquoted id is a number to YAML (quote ids with leading zeros)
        return {k: [str(x) if isinstance(x, scalar) and not isinstance(x, bool) else x
                    for x in (v if isinstance(v, list) else [v])] for k, v in value.items()}

    @field_validator("shares")
    @classmethod
    def _sum_to_one(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        if value is not None:
            if not value or any(not 0 < s <= 1 for s in value.values()):
                raise ValueError("shares needs owner: share pairs with each share > 0 and <= 1")
            if sum(value.values()) != 1:
                raise ValueError(f"fixed shares must sum to exactly 1, they sum to {sum(value.values())}")
        return value

    @model_validator(mode="after")
    def _fits_split(self) -> SharedRule:
        if self.split == "fixed" and self.shares is None:
            raise ValueError("split: fixed needs 'shares' (owner: share, summing to 1)")
        if self.split != "fixed" and self.shares is not None:
            raise ValueError(f"'shares' goes with split: fixed, not {self.split}")
        if self.split == "fixed" and self.among is not None:
            raise ValueError("'among' goes with evenly or proportional; fixed splits among its shares")
        if self.among is not None and not self.among:
            raise ValueError("'among' must list at least one owner")
        return self

    def matches(self, charge: Mapping[str, str | None], owner: str) -> bool:
        """Every ``match`` key has a glob (case-sensitive; NULL is '') that matches the charge."""
        return all(any(fnmatchcase((owner if k == "owner" else charge.get(k)) or "", p) for p in patterns)
                   for k, patterns in self.match.items())


class CommitmentRules(_Strict):
    """Who bought the commitments (``None``: owner_from) and where their unused cost goes."""

    buyer: list[Matcher] | None = None
    unused: Literal["buyer", "spread"] = "buyer"

    @field_validator("buyer", mode="before")
    @classmethod
    def _buyer_forms(cls, value: Any) -> Any:
        if value is None or value == "owner_from":
            return None
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return [{"owner": value}]
        return [value] if isinstance(value, dict) else value


class Rules(_Strict):
    """A whole rules file (schema in the module docstring)."""

    cost: Literal["effective", "billed"] = "effective"
    owner_from: list[Matcher] = []
    fallback: OwnerName = "unallocated"
    shared: list[SharedRule] = []
    commitments: CommitmentRules = CommitmentRules()


class _Map(dict):
    line: int = 1
    key_lines: dict[str, int]


class _Seq(list):
    line: int = 1
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader keeping line numbers; mapping keys stay as written ('0123' is not octal 83)."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(None, None, "keys must be plain text", key_node.start_mark)
        key = key_node.value
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.line, out.item_lines = node.start_mark.line + 1, [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_rules(path: str | Path) -> Rules:
    """Read and validate a rules file; any problem is an :class:`InputError` with line and key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot read the file: {exc.strerror or exc}") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, file: str = "<rules>") -> Rules:
    """Like :func:`load_rules` for YAML text; ``file`` names it in errors."""
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InputError(file, f"not valid YAML: {exc.problem or exc}",
                         row=mark.line + 1 if mark is not None else None) from None
    except yaml.YAMLError as exc:
        raise InputError(file, f"not valid YAML: {exc}") from None
    if not isinstance(document, _Map):
        raise InputError(file, "expected a mapping with keys such as owner_from, fallback, shared, commitments "
                               "(see scenarios/examples/allocation/rules.yaml)", row=1)
    try:
        return Rules.model_validate(dict(document))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        raise InputError(file, _message(error, loc), row=_line(document, loc), column=_path(loc)) from None


def _message(error: dict, loc: tuple) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return f"missing key '{loc[-1]}'"
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        return f"unknown key '{loc[-1]}'" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return f"{msg}, got {error.get('input')!r}"


def _line(document: _Map, loc: tuple) -> int:
    node: Any = document
    line = document.line
    for part in loc:
        if isinstance(node, _Map) and part in node:
            line, node = node.key_lines[part], node[part]
        elif isinstance(node, _Seq) and isinstance(part, int) and part < len(node):
            line, node = node.item_lines[part], node[part]
        else:
            break
    return line


def _path(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top)"


def _fields_at(loc: tuple) -> list[str]:
    """The keys the model at ``loc`` accepts (for 'unknown key' messages)."""
    model: type[BaseModel] | None = Rules
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model is not None else None
        model = _model_in(field.annotation) if field is not None else None
    return sorted(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
