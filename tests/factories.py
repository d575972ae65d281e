"""Small random estates for solver tests, built in code (independent of the sample generator)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from models import Offering, OfferingKind, Payment, PriceBook, UsageMatrix

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def random_usage(rng: np.random.Generator, pools: int, hours: int) -> UsageMatrix:
    t = np.arange(hours)
    base = rng.lognormal(1.5, 0.8, pools)
    daily = 1 + 0.3 * np.sin(2 * np.pi * (t[:, None] / 24 + rng.uniform(0, 1, pools)))
    noise = rng.gamma(4.0, 0.25, (hours, pools))
    values = np.round(np.maximum(base * daily * noise - rng.uniform(0, 0.5, pools) * base, 0), 3)
    return UsageMatrix(START, tuple(f"aws:ec2:us-east-1:f{p % 3}:p{p}" for p in range(pools)), values)


def random_prices(
    rng: np.random.Generator,
    pools: tuple[str, ...],
    payments: tuple[str, ...] = ("no_upfront", "partial_upfront", "all_upfront"),
    savings_plans: int = 2,
    term_months: int = 12,
) -> PriceBook:
    """Reservations in several payment options per pool; a compute SP over all pools and
    (when ``savings_plans == 2``) a narrower instance SP over the first family, with a rate that is
    the compute rate times one constant (the consistent structure providers publish)."""
    od = {p: float(np.round(rng.uniform(0.02, 0.4), 4)) for p in pools}
    offerings = {}
    hours = term_months * 730
    for p in pools:
        for k, pay in enumerate(payments):
            eff = od[p] * (1 - rng.uniform(0.25, 0.5))
            share = {"no_upfront": 0.0, "partial_upfront": 0.5, "all_upfront": 1.0}[pay]
            oid = f"ri-{pay}-{p}"
            offerings[oid] = Offering(
                id=oid, kind=OfferingKind.RESERVATION, term_months=term_months, payment=Payment(pay),
                upfront=round(eff * share * hours, 2), increment=1.0,
                rates={p: round(eff * (1 - share), 6)},
            )
    if savings_plans >= 1:
        rates = {p: round(od[p] * (1 - rng.uniform(0.15, 0.35)), 6) for p in pools}
        offerings["csp"] = Offering(
            id="csp", kind=OfferingKind.SAVINGS_PLAN, term_months=term_months, payment=Payment.NO_UPFRONT,
            upfront=0.0, increment=0.001, rates=rates,
        )
        if savings_plans >= 2:
            k = rng.uniform(0.8, 0.92)
            family = [p for p in pools if ":f0:" in p]
            offerings["isp"] = Offering(
                id="isp", kind=OfferingKind.SAVINGS_PLAN, term_months=term_months, payment=Payment.NO_UPFRONT,
                upfront=0.0, increment=0.001, rates={p: round(rates[p] * k, 6) for p in family},
            )
    return PriceBook(on_demand=od, offerings=offerings)


def scaled_scenarios(seed: int, n: int, pools: int, hours: int, low: float, high: float):
    """A random estate and n usage scenarios: the base and n − 1 copies with each pool scaled by a
    factor drawn from [low, high]. Returns (rng, scenarios, prices); the rng continues the draws."""
    rng = np.random.default_rng(seed)
    base = random_usage(rng, pools, hours)
    prices = random_prices(rng, base.pools)
    out = [base]
    for _ in range(n - 1):
        factor = rng.uniform(low, high, pools)
        out.append(UsageMatrix(base.start, base.pools, np.round(base.values * factor, 3)))
    return rng, out, prices
