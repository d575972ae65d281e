"""Tests for the deterministic sample-estate generator (scenarios/sample_estate.py)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.sample_estate import (
    CSP_3Y_FACTOR,
    DEMO_DIR,
    HOURS_PER_MONTH,
    REGIONS,
    RI_DISCOUNTS,
    Estate,
    generate_estate,
    parse_pool,
    write_demo,
)


def _files(estate: Estate, out: Path, gz: bool = True) -> dict[str, bytes]:
    return {k: p.read_bytes() for k, p in estate.write(out, gzip_usage=gz, gzip_prices=gz).items()}


def _prices(estate: Estate, tmp_path: Path) -> pd.DataFrame:
    """The price book as a consumer reads it back from CSV."""
    return pd.read_csv(estate.write(tmp_path / "pb")["prices"], keep_default_na=False, na_values={"increment": [""]})


def _rates(prices: pd.DataFrame, offering: str) -> pd.Series:
    return prices[prices.offering == offering].set_index("pool").hourly_rate


def test_deterministic_bytes(tmp_path: Path) -> None:
    a = _files(generate_estate(6, 10, seed=3), tmp_path / "a")
    b = _files(generate_estate(6, 10, seed=3), tmp_path / "b")
    c = _files(generate_estate(6, 10, seed=4), tmp_path / "c")
    assert a == b
    assert a["usage"] != c["usage"]
    plain = _files(generate_estate(6, 10, seed=3), tmp_path / "d", gz=False)
    assert gzip.decompress(a["usage"]) == plain["usage"]


def test_shape_and_format() -> None:
    pools, days = 12, 14
    e = generate_estate(pools, days, seed=1)
    u = e.usage
    assert list(u.columns) == ["timestamp", "pool", "quantity"]
    assert u.pool.nunique() == pools == len(e.pools) and 3 <= len({parse_pool(p)[0] for p in e.pools}) <= 6
    assert len(u) <= pools * days * 24 and not u.duplicated(["timestamp", "pool"]).any()
    assert u.timestamp.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00Z").all()
    assert u.timestamp.min() == "2025-01-01T00:00:00Z" and u.timestamp.nunique() == days * 24
    assert (u.quantity > 0).all() and np.allclose(u.quantity, u.quantity.round(3))
    assert all(re.fullmatch(r"aws:ec2:[a-z0-9-]+:[a-z0-9]+:linux", p) for p in e.pools)
    assert (u.quantity % 1 != 0).mean() > 0.9  # normalized units: non-integer


def test_os_variants_keep_ids_unique() -> None:
    e = generate_estate(100, 2, seed=2)
    assert len(set(e.pools)) == 100 and {parse_pool(p)[2] for p in e.pools} > {"linux"}
    with pytest.raises(ValueError):
        generate_estate(10_000, 1, seed=2)


def test_seasonality() -> None:
    e = generate_estate(10, 28, seed=5)
    u = e.usage.assign(ts=pd.to_datetime(e.usage.timestamp))
    business = weekday = 0
    for pool, g in u.groupby("pool"):
        local = g.ts + pd.to_timedelta(REGIONS[parse_pool(pool)[0]][2], unit="h")
        hour, dow = local.dt.hour, local.dt.day_of_week
        business += g.quantity[hour.between(9, 17)].mean() > g.quantity[hour.between(0, 5)].mean()
        weekday += g.quantity[dow < 5].mean() > g.quantity[dow >= 5].mean()
    assert business >= 8 and weekday >= 8
    dow = u.ts.dt.day_of_week
    assert u.quantity[dow < 5].sum() / (dow < 5).sum() > u.quantity[dow >= 5].sum() / (dow >= 5).sum()


def test_migration_and_late_start_visible() -> None:
    days = 120
    e = generate_estate(12, days, seed=11)
    wide = e.usage.pivot(index="timestamp", columns="pool", values="quantity").reindex(
        columns=e.pools).fillna(0.0)
    assert len(wide) == days * 24 and e.migrations
    first, last = wide.iloc[: 14 * 24].mean(), wide.iloc[-14 * 24:].mean()
    for old, new in e.migrations:
        assert parse_pool(old)[0] == parse_pool(new)[0] and parse_pool(old)[1] != parse_pool(new)[1]
        assert last[old] < 0.05 * first[old]
        assert last[new] - first[new] > 0.5 * first[old]
    for pool in e.late_starts:
        assert wide[pool].iloc[:24].sum() == 0 and wide[pool].iloc[-24:].sum() > 0


def test_price_book_consistency(tmp_path: Path) -> None:
    e = generate_estate(100, 1, seed=9)
    pb = _prices(e, tmp_path)
    od = _rates(pb, "on_demand")
    assert sorted(od.index) == e.pools and (od > 0).all()
    csp1, csp3 = _rates(pb, "csp-1y-nu"), _rates(pb, "csp-3y-nu")
    assert set(csp1.index) == set(csp3.index) == set(e.pools)
    # rule (2): 3y compute SP = 1y compute SP × one constant
    assert np.allclose(csp3 / csp1, CSP_3Y_FACTOR, rtol=1e-9, atol=0)
    d_c = 1 - csp1 / od[csp1.index]
    assert d_c.between(0.17, 0.30).all()
    isps = sorted(o for o in pb.offering.unique() if o.startswith("isp-"))
    assert len(isps) == len({parse_pool(p)[:2] for p in e.pools})
    multi = 0
    for name in isps:
        rates = _rates(pb, name)
        family, region = re.fullmatch(r"isp-1y-nu-([a-z0-9]+)-(.+)", name).groups()
        expected = sorted(p for p in e.pools if parse_pool(p)[:2] == (region, family))
        assert sorted(rates.index) == expected
        ratio = rates / csp1[rates.index]  # rule (1): one k < 1 per instance SP
        assert np.allclose(ratio, ratio.iloc[0], rtol=1e-9, atol=0) and ratio.iloc[0] < 1
        multi += len(rates) > 1
    assert multi > 0
    sp = pb[pb.kind == "savings_plan"]
    assert (sp.payment == "no_upfront").all() and (sp.upfront == 0).all() and (sp.increment == 0.001).all()


def test_reservation_discounts(tmp_path: Path) -> None:
    e = generate_estate(8, 1, seed=9)
    pb = _prices(e, tmp_path)
    od = _rates(pb, "on_demand")
    ri = pb[pb.kind == "reservation"].copy()
    assert len(ri) == 6 * len(e.pools) and (ri.increment == 0.25).all()
    hours = ri.term_months * HOURS_PER_MONTH
    effective = ri.hourly_rate + ri.upfront / hours
    discount = 1 - effective / ri.pool.map(od)
    for (months, pay), nominal in RI_DISCOUNTS.items():
        rows = ri.offering.str.startswith(f"ri-{months // 12}y-{pay}-")
        assert rows.sum() == len(e.pools)
        assert (discount[rows] - nominal).abs().max() < 0.015
    au = ri.payment == "all_upfront"
    assert (ri.hourly_rate[au] == 0).all() and (ri.upfront[au] > 0).all()
    pu = ri.payment == "partial_upfront"
    assert (ri.upfront[pu] / (effective[pu] * hours[pu])).between(0.45, 0.55).all()
    assert (ri.upfront[ri.payment == "no_upfront"] == 0).all()


def test_savings_plan_modes(tmp_path: Path) -> None:
    two = _prices(generate_estate(100, 1, seed=9, savings_plans="two"), tmp_path / "two")
    sps = two[two.kind == "savings_plan"].groupby("offering").pool.apply(list)
    assert sorted(sps.index)[0] == "csp-1y-nu" and len(sps) == 2
    isp = sps.index[1]
    assert isp.startswith("isp-1y-nu-") and len(sps["csp-1y-nu"]) == 100
    groups = pd.Series([parse_pool(p)[:2] for p in sps["csp-1y-nu"]]).value_counts()
    assert len(sps[isp]) == groups.max() > 1
    none = generate_estate(5, 1, seed=9, savings_plans="none").prices
    assert set(none.kind) == {"on_demand", "reservation"}
    with pytest.raises(ValueError):
        generate_estate(5, 1, seed=9, savings_plans="some")


def test_shipped_demo_matches_fresh_generation(tmp_path: Path) -> None:
    fresh = write_demo(tmp_path)
    assert fresh["prices"].read_bytes() == (DEMO_DIR / "prices.csv").read_bytes()
    shipped = (DEMO_DIR / "usage.csv.gz").read_bytes()
    assert len(shipped) < 3_000_000
    assert gzip.decompress(fresh["usage"].read_bytes()) == gzip.decompress(shipped)


def test_a_thousand_pools_fit_in_more_regions():
    estate = generate_estate(1000, 1, seed=3, savings_plans="two")
    assert len(set(estate.pools)) == 1000
    regions = {p.split(":")[2] for p in estate.pools}
    assert len(regions) > 6
