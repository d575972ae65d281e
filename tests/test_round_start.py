"""Where a round of re-drawn floor caps starts: the last plan cut back only where the new caps and
the linear limits need it (solver.decomposition._cut_into, _within_limits)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.decomposition import LinearLimit, _cut_into, _scaled_into, _within_limits


def _case(seed: int):
    rng = np.random.default_rng(seed)
    n, m = 12, 7
    link = sp.csr_matrix((rng.random((m, n)) < 0.3).astype(float))
    x = rng.uniform(0.0, 5.0, n)
    caps = (link @ x) * rng.uniform(0.5, 1.3, m)
    return link, x, caps


@given(st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_cut_back_plans_fit_the_caps_and_keep_more_than_scaling_the_whole_plan(seed):
    link, x, caps = _case(seed)
    y = _cut_into(x, link, caps)
    assert np.all(link @ y <= caps * (1 + 1e-12) + 1e-12)
    assert np.all(y <= x + 1e-12)
    assert np.all(y >= _scaled_into(x, link, caps) - 1e-12)
    over = np.flatnonzero(link @ x > caps)
    untouched = np.asarray(link[over].sum(axis=0)).ravel() == 0  # decisions feeding no capacity over its cap
    np.testing.assert_array_equal(y[untouched], x[untouched])


@given(st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_a_share_limit_broken_by_a_hair_is_met_by_trimming_its_positive_side_only(seed):
    rng = np.random.default_rng(seed)
    n = 10
    cost = rng.uniform(1.0, 100.0, n)
    three_year = rng.random(n) < 0.5
    share = rng.uniform(0.3, 0.8)
    a = cost * (three_year - share)  # Σ 3-year cost − share · Σ cost ≤ 0
    x = rng.uniform(0.0, 3.0, n)
    budget = LinearLimit("upfront", cost, float(cost @ x) * 1.5)
    y = _within_limits(x, [LinearLimit("3-year share", a, 0.0), budget])
    assert a @ y <= 1e-9 * (np.abs(a) @ x)
    assert budget.holds(y)
    assert np.all(y[a <= 0] == x[a <= 0]) and np.all(y <= x + 1e-12)
    if a @ x <= 0:
        np.testing.assert_array_equal(y, x)


def test_a_round_after_caps_are_redrawn_starts_from_the_cut_back_plan():
    """Mutation guard: with floors re-drawn below the last plan, the round's start keeps the
    reservations (scaling the whole plan down would cut them by the savings plans' ratio)."""
    link = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))  # a reservation; two savings plans
    x = np.array([10.0, 4.0, 4.0])
    caps = np.array([np.inf, 4.0])
    y = _cut_into(x, link, caps)
    np.testing.assert_allclose(y, [10.0, 2.0, 2.0])
    assert _scaled_into(x, link, caps)[0] == pytest.approx(5.0)
