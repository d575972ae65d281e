"""Exact money for splitting: amounts as integers of 1e-12 (the ledger's scale), split by largest
remainder so parts add up exactly, then rounded to cents so that every figure and every total foots."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix

SCALE, CENT = 10**12, 10**10  # the ledger's unit is 1e-12; a cent is 1e10 of them


def units(value: Decimal | int) -> int:
    """An exact ledger amount as an integer of 1e-12 (more decimals than the ledger keeps is an error)."""
    numerator, denominator = Fraction(value).as_integer_ratio()
    if SCALE % denominator:
        raise ValueError(f"{value} has more decimals than the ledger's 12")
    return numerator * (SCALE // denominator)


def money(units: int, scale: int = 12) -> Decimal:
    return Decimal(f"{units}E-{scale}")


def half_up_cents(units: int) -> int:
    cents, rest = divmod(abs(units), CENT)
    return (cents + (2 * rest >= CENT)) * (1 if units >= 0 else -1)


def split(amount: int, weights: dict[str, int]) -> dict[str, int]:
    """``amount`` in whole units in proportion to positive ``weights``: largest remainder, ties by name."""
    total = sum(weights.values())
    parts = {k: divmod(amount * w, total) for k, w in sorted(weights.items())}
    lucky = set(sorted(parts, key=lambda k: -parts[k][1])[:amount - sum(q for q, _ in parts.values())])
    return {k: q + (k in lucky) for k, (q, _) in parts.items()}


def round_table(cells: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Units to cents: every cell, row total and column total rounded up or down, the grand total half-up,
    the cells' rounding error as small as those allow (one way: largest remainder; two ways: an LP
    whose constraint matrix is a network matrix, so its optimum is integral)."""
    low = {k: u // CENT for k, u in cells.items()}
    frac = sorted(k for k, u in cells.items() if u % CENT)
    need = half_up_cents(sum(cells.values())) - sum(low.values())
    rows, cols = sorted({k[0] for k in frac}), sorted({k[1] for k in frac})
    if need == 0 or len(rows) <= 1 or len(cols) <= 1:
        up = set(sorted(frac, key=lambda k: -(cells[k] % CENT))[:need])
        return {k: c + (k in up) for k, c in low.items()}
    rest = [cells[k] % CENT for k in frac]
    constraints = [LinearConstraint(np.ones((1, len(frac))), need, need)]
    for axis, labels in ((0, rows), (1, cols)):
        position = {label: i for i, label in enumerate(labels)}
        member = [position[k[axis]] for k in frac]
        residue = [0] * len(labels)
        for i, r in zip(member, rest):
            residue[i] += r
        matrix = csr_matrix((np.ones(len(frac)), (member, np.arange(len(frac)))), shape=(len(labels), len(frac)))
        constraints.append(LinearConstraint(matrix, [r // CENT for r in residue], [-(-r // CENT) for r in residue]))
    result = milp(1 - 2 * np.array(rest, dtype=float) / CENT, constraints=constraints,
                  integrality=np.ones(len(frac)), bounds=Bounds(0, 1))
    if result.x is None:
        raise RuntimeError(f"rounding to cents failed: {result.message}")
    up = {k for k, x in zip(frac, result.x) if x > 0.5}
    return {k: c + (k in up) for k, c in low.items()}
