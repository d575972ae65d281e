"""GCP Compute Engine price catalog (``pricing.yml`` of google-cloud-pricing-cost-calculator) ->
on-demand and resource-based CUD rows of the price book.

The catalog prices whole machine types per region (``compute.instance.<type>.cost.<region>``:
``hour`` on demand, ``month_1y`` / ``month_3y`` under a 1- or 3-year resource-based CUD) and gives
each type's ``cpu`` and ``ram`` (GiB). Resource CUDs commit vCPUs and memory per machine series
and region, so the importer recovers the per-vCPU-hour and per-GiB-hour rates of each series and
region by least squares over its machine types (price = cpu × a + ram × b), and keeps a fit only
when it is exact (every type within 1e-6 relative) and separable (at least two cpu:ram ratios).
CUD monthly prices become hourly by / 730 (the catalog's month). On demand uses ``hour`` — the
list price before sustained-use discounts, which the price book cannot express.

Pools ``gcp:compute:{region}:{series}:vcpu`` (vCPU-hours) and ``…:memory`` (GiB-hours), as
``billing.pool_rules`` names ingested usage; offerings ``gcp-cud-{series}-{region}-{vcpu|memory}-
{1y|3y}``, reservations paid monthly (no upfront). Machine types with GPUs, bundled local SSD or a
custom shape are left out of the fit (their price is not cpu × a + ram × b).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from billing.catalogs.book import make_frame, offering_row, on_demand_row
from models.csv_cells import existing_file
from models.errors import InputError
from models.pricing import HOURS_PER_MONTH

FIELDS = {"hour": ("on_demand", 0), "month_1y": ("reservation", 12), "month_3y": ("reservation", 36)}
EXACT = 1e-6
PLAIN_KEYS = {"cpu", "ram", "cost"}


def _scalar(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None if text in ("null", "~") else text


def _plain_mapping(lines: list[str]) -> dict | None:
    """Nested block mappings of plain ``key: scalar`` lines (the catalog's own shape), 20x faster
    than a YAML parser; None at the first line outside that subset (the caller then uses PyYAML)."""
    root: dict = {}
    stack: list[tuple[int, dict]] = [(-1, root)]
    for line in lines:
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        key, sep, value = body.partition(":")
        value = value.strip()
        if not sep or not key or key[0] in "-\"'{[?&*!|>" or (value and value[0] in "\"'{[&*!|>#"):
            return None
        indent = len(line) - len(line.lstrip(" "))
        while stack[-1][0] >= indent:
            stack.pop()
        if value:
            stack[-1][1][key] = _scalar(value)
        else:
            stack[-1][1][key] = child = {}
            stack.append((indent, child))
    return root


def _fast_load(path: Path) -> dict | None:
    """``about.generated`` and ``compute.instance`` read as plain mappings, or None to parse it all."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    try:
        start = lines.index("compute:")
        first = lines.index("  instance:", start)
    except ValueError:
        return None
    end = next((k for k in range(first + 1, len(lines)) if lines[k][:3].strip() and not lines[k].startswith("   ")),
               len(lines))
    instances = _plain_mapping(lines[first + 1:end])
    if instances is None:
        return None
    generated = next((line.split(":", 1)[1].strip() for line in lines[:start] if line.startswith("  generated:")), "?")
    return {"about": {"generated": generated}, "compute": {"instance": instances}}


def _load(path: Path) -> dict:
    fast = _fast_load(path)
    if fast is not None:
        return fast
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=loader)
    except UnicodeDecodeError:
        raise InputError(str(path), "the file is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark else None
        raise InputError(str(path), f"the file is not valid YAML ({getattr(exc, 'problem', exc)})", row=row) from None
    if not isinstance(data, dict) or not isinstance(data.get("compute"), dict) \
            or not isinstance(data["compute"].get("instance"), dict):
        raise InputError(str(path), "no compute.instance section: not a pricing.yml catalog", column="compute.instance")
    return data


def _line_of(path: Path, keys: list[str]) -> int | None:
    """File line of the value at ``keys`` (walks the composed YAML; only on the error path)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as handle:
        node = yaml.compose(handle, Loader=loader)
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value if k.value == key), None)
        if node is None:
            return None
    return node.start_mark.line + 1


def _number(path: Path, value: object, keys: list[str]) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value) and value >= 0
    if not ok:
        column = ".".join(keys)
        raise InputError(str(path), f"{keys[-1]} must be a number >= 0, got {value!r}", row=_line_of(path, keys),
                         column=column)
    return float(value)


def _observations(path: Path, instances: dict) -> tuple[dict, list[str]]:
    """(series, region) -> list of (machine type, cpu, ram, {field: price per hour})."""
    groups: dict[tuple[str, str], list] = defaultdict(list)
    left_out: list[str] = []
    for name, spec in instances.items():
        if not isinstance(spec, dict) or "cost" not in spec:
            continue
        if set(spec) - PLAIN_KEYS:
            left_out.append(name)
            continue
        base = ["compute", "instance", str(name)]
        cpu = _number(path, spec.get("cpu"), [*base, "cpu"])
        ram = _number(path, spec.get("ram"), [*base, "ram"])
        series = str(name).split("-")[0]
        for region, cost in (spec["cost"] or {}).items():
            prices = {}
            for field in FIELDS:
                if isinstance(cost, dict) and cost.get(field) is not None:
                    value = _number(path, cost[field], [*base, "cost", str(region), field])
                    prices[field] = value if field == "hour" else value / HOURS_PER_MONTH
            groups[(series, str(region))].append((str(name), cpu, ram, prices))
    return groups, left_out


def _fit(rows: list, field: str) -> tuple[np.ndarray | None, str]:
    """Per-vCPU and per-GiB hourly rates from the machine types priced under ``field``; None + why if not sound."""
    have = [(cpu, ram, prices[field]) for _, cpu, ram, prices in rows if field in prices]
    if not have:
        return None, "no prices"
    a = np.array([[cpu, ram] for cpu, ram, _ in have])
    y = np.array([p for _, _, p in have])
    if np.linalg.matrix_rank(a) < 2:
        return None, "every machine type has the same cpu:ram ratio, so vCPU and memory cannot be separated"
    rates, *_ = np.linalg.lstsq(a, y, rcond=None)
    worst = float(np.max(np.abs(a @ rates - y) / np.maximum(y, 1e-12)))
    if worst > EXACT or (rates <= 0).any():
        return None, f"machine-type prices are not cpu × a + ram × b (off by up to {100 * worst:.1f}%)"
    return np.array([float(f"{r:.12g}") for r in rates]), ""


def import_gcp_pricing(path: str | Path) -> pd.DataFrame:
    """On-demand and 1y/3y resource-based CUD rows per machine series, region and resource."""
    file = existing_file(path)
    data = _load(file)
    about = data.get("about") or {}
    label = f"GCP pricing.yml (google-cloud-pricing-cost-calculator) generated {about.get('generated', '?')}"
    groups, left_out = _observations(file, data["compute"]["instance"])
    notes = [f"left out of the fit (GPUs, local SSD or custom shape): {len(left_out)} machine types"] if left_out else []
    problems: dict[tuple[str, str], list[str]] = defaultdict(list)
    rows = []
    for (series, region), observed in sorted(groups.items()):
        pools = {r: f"gcp:compute:{region}:{series}:{r}" for r in ("vcpu", "memory")}
        fitted = {}
        for field, (kind, months) in FIELDS.items():
            rates, why = _fit(observed, field)
            if rates is None:
                if why != "no prices":
                    problems[(series, field)].append(f"{region}: {why}")
                continue
            fitted[field] = rates
        if "hour" not in fitted:
            continue
        source = f"{label}: {series} in {region}, fitted on {len(observed)} machine types"
        for k, resource in enumerate(("vcpu", "memory")):
            rows.append(on_demand_row(pools[resource], fitted["hour"][k], source))
            for field in ("month_1y", "month_3y"):
                if field in fitted:
                    months = FIELDS[field][1]
                    rows.append(offering_row(f"gcp-cud-{series}-{region}-{resource}-{months // 12}y", "reservation",
                                             months, "no_upfront", pools[resource], fitted[field][k], 0.0, source))
    for (series, field), where in sorted(problems.items()):
        notes.append(f"{series} {field}: not derivable in {len(where)} regions, e.g. {where[0]}")
    return make_frame(rows, f"{label} ({Path(path).name})", notes)
