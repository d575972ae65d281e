"""Deterministic generator of realistic AWS-like estates (usage CSV + price book CSV, DESIGN.md §4).

``generate_estate(pools, days, seed)`` draws everything from ``numpy.random.default_rng(seed)``,
so the same arguments always give byte-identical files. Quantities are normalized-unit-hours
(size-flexible Linux RIs), rates are $ per normalized-unit-hour.

The price book is built so that the AWS billing greedy (DESIGN.md §5) is LP-optimal:
compute SP 1y rates lie on a 0.000025 grid, the 3y compute SP rate is exactly 0.72 × the 1y
rate, and each EC2 Instance SP rate is exactly ``k × compute rate`` with ``k = j / 25`` shared
by all pools of that family and region (so every rate is exact at 6 decimals).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

HOURS_PER_MONTH = 730
DEMO_DIR = Path(__file__).parent / "examples" / "demo"

# region -> (on-demand multiplier, popularity weight, UTC offset of its users in hours)
REGIONS: dict[str, tuple[float, float, int]] = {
    "us-east-1": (1.00, 3.0, -5),
    "us-west-2": (1.00, 2.0, -8),
    "eu-west-1": (1.10, 1.8, 0),
    "eu-central-1": (1.15, 1.2, 1),
    "ap-southeast-1": (1.20, 1.0, 8),
    "ap-northeast-1": (1.25, 1.0, 9),
    # further regions are used only when the six above cannot hold the requested pools
    "us-east-2": (1.00, 1.0, -5),
    "us-west-1": (1.12, 0.8, -8),
    "ca-central-1": (1.08, 0.7, -5),
    "eu-west-2": (1.12, 0.9, 0),
    "eu-west-3": (1.14, 0.6, 1),
    "eu-north-1": (1.05, 0.6, 1),
    "eu-south-1": (1.16, 0.4, 1),
    "ap-south-1": (1.05, 0.8, 5),
    "ap-southeast-2": (1.22, 0.8, 10),
    "ap-northeast-2": (1.20, 0.7, 9),
    "ap-northeast-3": (1.25, 0.4, 9),
    "ap-east-1": (1.30, 0.4, 8),
    "sa-east-1": (1.45, 0.5, -3),
    "me-south-1": (1.30, 0.3, 3),
    "af-south-1": (1.35, 0.3, 2),
    "il-central-1": (1.25, 0.3, 2),
    "ap-southeast-3": (1.22, 0.3, 7),
    "mx-central-1": (1.20, 0.3, -6),
}
# family -> (Linux on-demand $/NU-h in us-east-1 (= .large price / 4), popularity weight)
FAMILIES: dict[str, tuple[float, float]] = {
    "m5": (0.024, 3.0),
    "c5": (0.02125, 2.5),
    "r5": (0.0315, 2.0),
    "t3": (0.0208, 2.0),
    "m6i": (0.024, 2.5),
    "c6i": (0.02125, 2.0),
    "r6i": (0.0315, 1.5),
    "m7g": (0.0204, 1.5),
    "c7g": (0.018125, 1.2),
    "r7g": (0.026775, 1.0),
    "m7i": (0.0252, 1.0),
    "c7i": (0.0223125, 0.8),
    "t4g": (0.0168, 0.8),
}
GRAVITON = {"m7g", "c7g", "r7g", "t4g"}
# OS -> licence add-on in $/NU-h (variants are used only when family × region combos run out)
OPERATING_SYSTEMS: dict[str, float] = {"linux": 0.0, "windows": 0.023, "rhel": 0.015, "suse": 0.0125}
# (old family, newer family) pairs a workload migrates between
MIGRATIONS = [("m5", "m6i"), ("c5", "c6i"), ("r5", "r6i"), ("m5", "m7g"), ("c5", "c7g"),
              ("r5", "r7g"), ("t3", "t4g"), ("m6i", "m7i"), ("c6i", "c7i")]

# nominal effective RI discounts by (term months, payment)
RI_DISCOUNTS: dict[tuple[int, str], float] = {
    (12, "nu"): 0.28, (12, "pu"): 0.31, (12, "au"): 0.33,
    (36, "nu"): 0.45, (36, "pu"): 0.49, (36, "au"): 0.52,
}
PAYMENTS = {"nu": "no_upfront", "pu": "partial_upfront", "au": "all_upfront"}
CSP_DISCOUNT_RANGE = (0.175, 0.295)  # per family; stays within 17–30 % after grid rounding
CSP_GRID = 25e-6  # 1y compute SP rates are multiples of this
CSP_3Y_FACTOR = 0.72  # 3y compute SP rate = 0.72 × 1y rate (exact on the grid)
ISP_K_NUMERATORS = (21, 22, 23)  # instance SP rate = compute SP rate × j / 25
RI_INCREMENT = 0.25
SP_INCREMENT = 0.001
PRICE_COLUMNS = ["offering", "kind", "term_months", "payment", "pool", "hourly_rate", "upfront", "increment"]


@dataclass
class Estate:
    """A generated estate: canonical usage rows, the price book, and what was planted in it."""

    usage: pd.DataFrame
    prices: pd.DataFrame
    pools: list[str] = field(default_factory=list)
    migrations: list[tuple[str, str]] = field(default_factory=list)  # (ramping down, ramping up)
    late_starts: list[str] = field(default_factory=list)

    def write(self, out_dir: str | Path, gzip_usage: bool = False, gzip_prices: bool = False) -> dict[str, Path]:
        """Write ``usage.csv[.gz]`` and ``prices.csv[.gz]``; gzip output is deterministic (mtime 0)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        usage_text = self.usage.to_csv(index=False, lineterminator="\n", float_format="%.3f")
        prices = self.prices.copy()
        prices["hourly_rate"] = prices["hourly_rate"].map(lambda x: f"{x:.6f}")
        prices["upfront"] = prices["upfront"].map(lambda x: f"{x:.2f}")
        prices_text = prices.to_csv(index=False, lineterminator="\n")
        return {
            "usage": _write_text(out / "usage.csv", usage_text, gzip_usage),
            "prices": _write_text(out / "prices.csv", prices_text, gzip_prices),
        }


def _write_text(path: Path, text: str, compress: bool) -> Path:
    data = text.encode("utf-8")
    if compress:
        path = path.with_name(path.name + ".gz")
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)
    return path


def pool_id(region: str, family: str, os: str = "linux") -> str:
    return f"aws:ec2:{region}:{family}:{os}"


def parse_pool(pool: str) -> tuple[str, str, str]:
    """``aws:ec2:<region>:<family>:<os>`` -> (region, family, os)."""
    _, _, region, family, os = pool.split(":")
    return region, family, os


def _select_pools(rng: np.random.Generator, n: int) -> tuple[list[tuple[str, str, str]], list[tuple[int, int]]]:
    """Choose ``n`` (region, family, os) combos; returns them and migration index pairs."""
    per_region = sum(1 for o in OPERATING_SYSTEMS for f in FAMILIES if not (o == "windows" and f in GRAVITON))
    wanted = max(int(np.clip(3 + n // 10, 3, 6)), -(-n // per_region))
    regions = list(REGIONS)[: min(wanted, len(REGIONS))]
    combos = [(r, f, o) for o in OPERATING_SYSTEMS for f in FAMILIES for r in regions
              if not (o == "windows" and f in GRAVITON)]
    if n > len(combos):
        raise ValueError(f"at most {len(combos)} pools can be generated, got {n}")
    chosen: list[tuple[str, str, str]] = []
    pairs: list[tuple[int, int]] = []
    candidates = [(r, old, new) for r in regions for old, new in MIGRATIONS]
    for i in rng.permutation(len(candidates)):
        if len(pairs) >= (max(1, n // 12) if n >= 4 else 0):
            break
        r, old, new = candidates[i]
        a, b = (r, old, "linux"), (r, new, "linux")
        if a not in chosen and b not in chosen:
            chosen += [a, b]
            pairs.append((len(chosen) - 2, len(chosen) - 1))
    os_rank = {o: i for i, o in enumerate(OPERATING_SYSTEMS)}
    jitter = rng.lognormal(0.0, 0.5, size=len(combos))
    score = {c: FAMILIES[c[1]][1] * REGIONS[c[0]][1] * j for c, j in zip(combos, jitter)}
    rest = sorted((c for c in combos if c not in chosen), key=lambda c: (os_rank[c[2]], -score[c]))
    chosen += rest[: n - len(chosen)]
    return chosen, pairs


def _usage_matrix(rng: np.random.Generator, combos: list[tuple[str, str, str]], pairs: list[tuple[int, int]],
                  hours: int, start: pd.Timestamp) -> tuple[np.ndarray, list[int]]:
    """Hours × pools usage in normalized units; returns it and the indices of late-starting pools."""
    n = len(combos)
    t = np.arange(hours)
    offsets = np.array([REGIONS[r][2] for r, _, _ in combos])
    abs_h = start.hour + t[:, None] + offsets[None, :]
    local_hour = abs_h % 24
    local_day = (start.day_of_week + abs_h // 24) % 7
    base = rng.lognormal(np.log(30.0), 1.1, size=n)
    for old, new in pairs:  # a migration moves a material workload
        base[old] = max(base[old], base[new])
    daily_amp = rng.uniform(0.10, 0.45, size=n)
    weekend_drop = rng.uniform(0.05, 0.35, size=n)
    slope = np.clip(rng.normal(0.10, 0.25, size=n), -0.4, 0.8)  # relative change per year
    sigma = rng.uniform(0.03, 0.10, size=n)
    shape = (1.0 + daily_amp * np.cos(2 * np.pi * (local_hour - 14) / 24)) \
        * np.where(local_day >= 5, 1.0 - weekend_drop, 1.0) \
        * np.maximum(0.2, 1.0 + slope * t[:, None] / 8760.0)
    shocks = rng.normal(size=(hours, n))
    noise = np.empty_like(shocks)
    noise[0] = shocks[0]
    for h in range(1, hours):  # AR(1) noise, unit variance
        noise[h] = 0.8 * noise[h - 1] + 0.6 * shocks[h]
    q = base * shape * np.maximum(0.0, 1.0 + sigma * noise)
    for p in range(n):  # spikes: a few hours to a day
        for _ in range(rng.poisson(hours / 24 / 60)):
            at, length = int(rng.integers(0, hours)), int(rng.integers(3, 25))
            q[at:at + length, p] += base[p] * rng.uniform(0.3, 1.5)
    ramp_len = min(336, max(1, hours // 3))
    for old, new in pairs:  # the old family ramps down, the newer one takes the same units
        begin = int(rng.integers(int(0.2 * hours), max(int(0.2 * hours) + 1, int(0.7 * hours) - ramp_len)))
        left = np.clip(1.0 - (t - begin) / ramp_len, 0.0, 1.0)
        q[:, new] += q[:, old] * (1.0 - left)
        q[:, old] *= left
    in_pairs = {i for pair in pairs for i in pair}
    free = [p for p in range(n) if p not in in_pairs]
    n_late = max(1, n // 10) if n >= 5 else 0
    late = sorted(int(p) for p in rng.choice(free, size=min(n_late, len(free)), replace=False)) if free else []
    for p in late:
        q[: int(rng.integers(int(0.15 * hours), int(0.6 * hours) + 1)), p] = 0.0
    return np.round(np.maximum(q, 0.0), 3), late


def _price_book(rng: np.random.Generator, pools: list[str], savings_plans: str) -> pd.DataFrame:
    """On-demand, six RIs per pool, and the requested savings plans (see module docstring)."""
    fams, regs = list(FAMILIES), list(REGIONS)
    ri_jitter = dict(zip(fams, rng.uniform(-0.01, 0.01, size=(len(fams), 2))))
    d_c = dict(zip(fams, rng.uniform(*CSP_DISCOUNT_RANGE, size=len(fams))))
    k_num = rng.choice(ISP_K_NUMERATORS, size=(len(fams), len(regs)))
    rows: list[tuple] = []
    od, csp1 = {}, {}
    for pool in pools:
        region, family, os = parse_pool(pool)
        od[pool] = round(FAMILIES[family][0] * REGIONS[region][0] + OPERATING_SYSTEMS[os], 6)
        csp1[pool] = round(round(od[pool] * (1.0 - d_c[family]) / CSP_GRID) * CSP_GRID, 6)
        rows.append(("on_demand", "on_demand", 0, "", pool, od[pool], 0.0, np.nan))
    for pool in pools:
        family = parse_pool(pool)[1]
        for (months, pay), nominal in RI_DISCOUNTS.items():
            hours = months * HOURS_PER_MONTH
            eff = od[pool] * (1.0 - nominal - ri_jitter[family][int(months == 36)])
            upfront = {"nu": 0.0, "pu": round(eff * hours / 2, 2), "au": round(eff * hours, 2)}[pay]
            hourly = 0.0 if pay == "au" else round(eff - upfront / hours, 6)
            rows.append((f"ri-{months // 12}y-{pay}-{pool}", "reservation", months, PAYMENTS[pay],
                         pool, hourly, upfront, RI_INCREMENT))

    def sp(offering: str, months: int, rates: dict[str, float]) -> None:
        rows.extend((offering, "savings_plan", months, "no_upfront", p, r, 0.0, SP_INCREMENT)
                    for p, r in rates.items())

    groups: dict[tuple[str, str], list[str]] = {}
    for pool in pools:
        region, family, _ = parse_pool(pool)
        groups.setdefault((family, region), []).append(pool)
    if savings_plans in ("full", "two"):
        sp("csp-1y-nu", 12, csp1)
    if savings_plans == "full":
        sp("csp-3y-nu", 36, {p: round(r * CSP_3Y_FACTOR, 6) for p, r in csp1.items()})
    keys = sorted(groups) if savings_plans == "full" else \
        [max(sorted(groups), key=lambda g: len(groups[g]))] if savings_plans == "two" else []
    for family, region in keys:
        k = k_num[fams.index(family), regs.index(region)] / 25
        sp(f"isp-1y-nu-{family}-{region}", 12, {p: round(csp1[p] * k, 6) for p in groups[(family, region)]})
    return pd.DataFrame(rows, columns=PRICE_COLUMNS)


def generate_estate(pools: int, days: int, seed: int, start: str = "2025-01-01T00:00:00Z",
                    savings_plans: str = "full") -> Estate:
    """Generate ``pools`` pools of hourly usage over ``days`` days plus a consistent price book.

    ``savings_plans``: "full" (1y and 3y compute SP, one instance SP per family-region),
    "two" (1y compute SP + the instance SP of the family-region with most pools) or "none".
    """
    if pools < 1 or days < 1:
        raise ValueError("pools and days must be >= 1")
    if savings_plans not in ("full", "two", "none"):
        raise ValueError(f"savings_plans must be full, two or none, got {savings_plans!r}")
    t0 = pd.Timestamp(start)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    rng = np.random.default_rng(seed)
    prices_rng, usage_rng = rng.spawn(2)  # prices of a family do not depend on the pool draw
    combos, pairs = _select_pools(usage_rng, pools)
    hours = days * 24
    q, late = _usage_matrix(usage_rng, combos, pairs, hours, t0)
    ids = [pool_id(*c) for c in combos]
    order = np.argsort(ids, kind="stable")
    stamps = pd.date_range(t0, periods=hours, freq="h").strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
    usage = pd.DataFrame({
        "timestamp": np.repeat(stamps, len(ids)),
        "pool": np.tile(np.asarray(ids, dtype=object)[order], hours),
        "quantity": q[:, order].ravel(),
    })
    usage = usage[usage["quantity"] > 0].reset_index(drop=True)
    sorted_ids = sorted(ids)
    return Estate(
        usage=usage,
        prices=_price_book(prices_rng, sorted_ids, savings_plans),
        pools=sorted_ids,
        migrations=[(ids[a], ids[b]) for a, b in pairs],
        late_starts=sorted(ids[p] for p in late),
    )


def write_demo(out_dir: str | Path = DEMO_DIR) -> dict[str, Path]:
    """Regenerate the shipped demo estate (24 pools, 365 days, seed 7) as usage.csv.gz + prices.csv."""
    return generate_estate(24, 365, 7).write(out_dir, gzip_usage=True)


if __name__ == "__main__":
    for name, path in write_demo().items():
        print(f"{name}: {path} ({path.stat().st_size} bytes)")
