"""The shipped AWS EC2 price book (``billing/data/aws_ec2_price_book.csv``) and how it is built.

The public samples hold no Linux rows for the common families, so this book is built from AWS's
published list prices for Linux/UNIX, shared tenancy, as known to its author (AWS EC2 pricing
pages, prices current through 2024; NOT read from an offer file, NOT re-verified when built):

- on demand: the ``.large`` hourly price per family and region (``t3``: ``t3.large``) / its
  normalization factor 4, i.e. $ per normalized-unit-hour. The eu-west-1 m7g and c7g prices are
  estimates (the Ireland/N. Virginia ratio of m5 and c5 applied to the us-east-1 prices).
- Standard RIs and Compute Savings Plans: on demand × an effective-rate ratio per term and
  payment, anchored on the published us-east-1 m5.large rates (1y standard RI: no upfront
  $0.060/h, partial $251 + $0.029/h, all upfront $492; 3y: $0.041/h, $517 + $0.020/h, $975).
  Real ratios vary by family and region by a few points. Partial upfront prepays half of the
  term's cost (AWS's split is close to half); SP partial upfront prepays half the commitment.

Regenerate from real price files with ``import_catalogs([offer_csv, savings_plans_csv])`` for
production use; rebuild this one with ``python -m billing.catalogs.reference_aws``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from billing.catalogs.book import (
    SHORT_PAYMENT,
    make_frame,
    offering_row,
    on_demand_row,
    savings_plan_upfront,
    write_price_book,
)
from models.pricing import HOURS_PER_MONTH

BOOK = Path(__file__).resolve().parent.parent / "data" / "aws_ec2_price_book.csv"
AS_OF = "AWS public list prices as published through 2024 (author's knowledge; not verified against an offer file)"
LARGE = 4.0  # normalization factor of .large

# on-demand $/h of the .large size, Linux/UNIX, shared tenancy
LARGE_PRICE: dict[str, dict[str, float]] = {
    "us-east-1": {"m5": 0.096, "c5": 0.085, "r5": 0.126, "m6i": 0.096, "c6i": 0.085, "r6i": 0.126,
                  "m7g": 0.0816, "c7g": 0.0725, "t3": 0.0832},
    "eu-west-1": {"m5": 0.107, "c5": 0.096, "r5": 0.141, "m6i": 0.107, "c6i": 0.096, "r6i": 0.141,
                  "m7g": 0.0910, "c7g": 0.0820, "t3": 0.0912},
}
LARGE_PRICE["us-east-2"] = dict(LARGE_PRICE["us-east-1"])  # Ohio and Oregon list the same as N. Virginia
LARGE_PRICE["us-west-2"] = dict(LARGE_PRICE["us-east-1"])
ESTIMATED = {("eu-west-1", "m7g"), ("eu-west-1", "c7g")}
SMALLEST_FACTOR = {"m5": 4.0, "c5": 4.0, "r5": 4.0, "m6i": 4.0, "c6i": 4.0, "r6i": 4.0, "m7g": 2.0, "c7g": 2.0,
                   "t3": 0.25}  # large, large, …, medium, medium, nano: the least one RI adds

# effective (amortized) rate / on-demand, by (term months, payment)
RI_RATIO = {(12, "no_upfront"): 0.625, (12, "partial_upfront"): 0.6005, (12, "all_upfront"): 0.585,
            (36, "no_upfront"): 0.427, (36, "partial_upfront"): 0.413, (36, "all_upfront"): 0.3865}
COMPUTE_SP_RATIO = {(12, "no_upfront"): 0.72, (12, "partial_upfront"): 0.69, (12, "all_upfront"): 0.67,
                    (36, "no_upfront"): 0.50, (36, "partial_upfront"): 0.47, (36, "all_upfront"): 0.45}


def _reservation(eff: float, months: int, payment: str) -> tuple[float, float]:
    """(hourly, upfront) per unit with amortized rate ``eff``; partial prepays half the term's cost."""
    hours = months * HOURS_PER_MONTH
    if payment == "all_upfront":
        return 0.0, round(eff * hours, 4)
    if payment == "partial_upfront":
        upfront = round(eff * hours / 2, 4)
        return round(eff - upfront / hours, 10), upfront
    return round(eff, 10), 0.0


def build_reference_book() -> pd.DataFrame:
    """The shipped book as a catalog frame (same columns and attrs as the importers return)."""
    rows = []
    for region, prices in sorted(LARGE_PRICE.items()):
        for family, large in sorted(prices.items()):
            pool = f"aws:ec2:{region}:{family}:linux"
            kind = "estimated list price" if (region, family) in ESTIMATED else "list price"
            source = f"AWS {kind} through 2024: {family}.large ${large}/h / 4"
            od = round(large / LARGE, 10)
            rows.append(on_demand_row(pool, od, source))
            for (months, payment), ratio in RI_RATIO.items():
                hourly, upfront = _reservation(od * ratio, months, payment)
                offering = f"aws-ri-{family}-{region}-linux-{months // 12}y-standard-{SHORT_PAYMENT[payment]}"
                rows.append(offering_row(offering, "reservation", months, payment, pool, hourly, upfront,
                                         f"{source}; standard RI = on demand × {ratio}", SMALLEST_FACTOR[family]))
            for (months, payment), ratio in COMPUTE_SP_RATIO.items():
                offering = f"aws-sp-compute-{months // 12}y-{SHORT_PAYMENT[payment]}"
                rows.append(offering_row(offering, "savings_plan", months, payment, pool, round(od * ratio, 10),
                                         savings_plan_upfront(payment, months),
                                         f"{source}; Compute SP rate = on demand × {ratio}"))
    notes = [f"estimated (no published figure at hand): {f} in {r}" for r, f in sorted(ESTIMATED)]
    notes.append("RI and Compute SP rates are on-demand × one ratio per term and payment, anchored on us-east-1 "
                 "m5.large; real per-family ratios differ by a few points")
    return make_frame(rows, AS_OF + "; Linux/UNIX shared tenancy, per normalized-unit-hour", notes)


def write_reference_book(path: Path = BOOK) -> Path:
    return write_price_book(build_reference_book(), path)


if __name__ == "__main__":
    print(write_reference_book())
