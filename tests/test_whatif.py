"""What-if overlays (scenarios/whatif.py): effects computed by hand, invariants, examples, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from models import InputError, PriceBook
from models.readers import read_price_book, read_usage
from models.usage import UsageMatrix
from scenarios.whatif import (
    Decommission,
    Growth,
    Launch,
    Migration,
    apply_overlays,
    apply_to_paths,
    load_overlays,
)

UTC = timezone.utc
JAN1 = datetime(2025, 1, 1, tzinfo=UTC)
EXAMPLES = Path(__file__).parent.parent / "scenarios" / "examples"
EAST = "aws:ec2:us-east-1:m5:linux"
GRAVITON = "aws:ec2:us-east-1:m7g:linux"
WEST = "aws:ec2:us-west-2:m5:linux"


def at(hours: int) -> datetime:
    return JAN1 + timedelta(hours=hours)


def flat_usage(hours: int = 120, east: float = 10.0, west: float = 4.0) -> UsageMatrix:
    values = np.column_stack([np.full(hours, east), np.full(hours, west)])
    return UsageMatrix(JAN1, (EAST, WEST), values)


def write(tmp_path: Path, text: str, name: str = "whatif.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- each kind, by hand ----------------------------------------------------------------------

def test_growth_factor_is_a_step_at_from_without_ramp() -> None:
    out = apply_overlays(flat_usage(), [Growth(pools=("aws:ec2:us-east-1:*",), factor=1.5, start=at(48))])
    east = out.column(EAST)
    assert np.all(east[:48] == 10.0) and np.all(east[48:] == 15.0)
    assert np.all(out.column(WEST) == 4.0)


def test_growth_ramp_reaches_half_way_at_the_midpoint() -> None:
    # from hour 24, ramp 2 days = 48 h: w(t) = (t - 24 + 1) / 48; midpoint t = 47 -> w = 0.5
    out = apply_overlays(flat_usage(), [Growth(pools=(EAST,), factor=2.0, start=at(24), ramp_days=2)]).column(EAST)
    assert out[23] == 10.0
    assert out[24] == pytest.approx(10.0 * (1 + 1 / 48))
    assert out[47] == pytest.approx(15.0)
    assert np.allclose(out[71:], 20.0)


def test_growth_default_from_is_the_outlook_start_and_shrink_works() -> None:
    out = apply_overlays(flat_usage(), [Growth(pools=("*",), factor=0.7)])
    assert np.allclose(out.values, flat_usage().values * 0.7)


def test_growth_annual_rate_compounds_from_its_date() -> None:
    usage = UsageMatrix(JAN1, (EAST,), np.full((8761 + 100, 1), 10.0))
    out = apply_overlays(usage, [Growth(pools=(EAST,), annual_rate=1.0, start=at(100))]).column(EAST)
    assert np.all(out[:100] == 10.0)
    assert out[100] == pytest.approx(10.0)
    assert out[100 + 4380] == pytest.approx(10.0 * np.sqrt(2))
    assert out[100 + 8760] == pytest.approx(20.0)


def test_migration_moves_a_share_with_a_ramp_into_a_new_sorted_column() -> None:
    out = apply_overlays(flat_usage(), [Migration(EAST, GRAVITON, start=at(24), share=0.5, ramp_days=2)])
    assert out.pools == (EAST, GRAVITON, WEST)
    east, graviton = out.column(EAST), out.column(GRAVITON)
    assert np.all(east[:24] == 10.0) and np.all(graviton[:24] == 0.0)
    assert east[47] == pytest.approx(7.5) and graviton[47] == pytest.approx(2.5)  # half of the half
    assert np.allclose(east[71:], 5.0) and np.allclose(graviton[71:], 5.0)
    assert np.all(out.column(WEST) == 4.0)


def test_migration_ratio_scales_what_arrives() -> None:
    out = apply_overlays(flat_usage(), [Migration(EAST, WEST, start=at(0), ramp_days=0, ratio=2.0)])
    assert np.allclose(out.column(EAST), 0.0)
    assert np.allclose(out.column(WEST), 4.0 + 2 * 10.0)


def test_migration_with_ratio_1_conserves_usage_every_hour() -> None:
    rng = np.random.default_rng(3)
    values = rng.gamma(2.0, 5.0, size=(500, 2))
    usage = UsageMatrix(JAN1, (EAST, WEST), values)
    out = apply_overlays(usage, [Migration(EAST, WEST, start=at(100), share=0.7, ramp_days=5)])
    np.testing.assert_allclose(out.values.sum(axis=1), values.sum(axis=1), rtol=1e-12)
    assert np.all(out.values >= 0)
    # and into a new pool: the two columns together still carry exactly the source's usage
    out = apply_overlays(usage, [Migration(EAST, GRAVITON, start=at(100), share=0.7, ramp_days=5)])
    np.testing.assert_allclose(out.column(EAST) + out.column(GRAVITON), values[:, 0], rtol=1e-12)


def test_launch_flat_with_ramp() -> None:
    out = apply_overlays(flat_usage(), [Launch(GRAVITON, level=6.0, start=at(24), ramp_days=1)])
    graviton = out.column(GRAVITON)
    assert np.all(graviton[:24] == 0.0)
    assert graviton[35] == pytest.approx(3.0)  # w = 12 / 24
    assert np.allclose(graviton[47:], 6.0)


def test_launch_into_an_existing_pool_adds_on_top() -> None:
    out = apply_overlays(flat_usage(), [Launch(WEST, level=1.0, start=at(0))])
    assert np.allclose(out.column(WEST), 5.0) and out.pools == (EAST, WEST)


def test_launch_daily_profile_follows_the_outlook_daily_cycle() -> None:
    # usage 1 every hour except 3 at 12:00 UTC: hour-of-day means 1 (x23) and 3 -> mean 26/24;
    # profile at noon = 3 / (26/24) = 72/26, elsewhere 24/26; level 26 adds 72 at noon, 24 otherwise.
    start = datetime(2025, 1, 1, 6, tzinfo=UTC)  # so noon UTC is hour t = 6
    hours = 96
    noon = (6 + np.arange(hours)) % 24 == 12
    usage = UsageMatrix(start, (EAST,), np.where(noon, 3.0, 1.0)[:, None])
    out = apply_overlays(usage, [Launch(GRAVITON, level=26.0, start=start, daily_profile=True)])
    added = out.column(GRAVITON)
    assert np.allclose(added[noon], 72.0) and np.allclose(added[~noon], 24.0)
    assert added[6] == pytest.approx(72.0)
    assert added.mean() == pytest.approx(26.0)


def test_launch_daily_profile_on_an_all_zero_outlook_is_flat() -> None:
    usage = UsageMatrix(JAN1, (EAST,), np.zeros((48, 1)))
    out = apply_overlays(usage, [Launch(GRAVITON, level=5.0, start=JAN1, daily_profile=True)])
    assert np.allclose(out.column(GRAVITON), 5.0)


def test_decommission_ramps_down_to_zero() -> None:
    out = apply_overlays(flat_usage(), [Decommission(pools=("aws:ec2:*:m5:*",), start=at(24), ramp_days=1)])
    for pool, level in ((EAST, 10.0), (WEST, 4.0)):
        column = out.column(pool)
        assert np.all(column[:24] == level)
        assert column[35] == pytest.approx(level / 2)
        assert np.all(column[47:] == 0.0)


def test_dates_outside_the_outlook() -> None:
    before = apply_overlays(flat_usage(), [Decommission(pools=(EAST,), start=at(-10), ramp_days=1)])
    assert before.column(EAST)[0] == pytest.approx(10.0 * (1 - 11 / 24))  # already 11 h into the ramp
    after = apply_overlays(flat_usage(), [Decommission(pools=(EAST,), start=at(500))])
    assert np.array_equal(after.values, flat_usage().values)


# --- order, paths, invariants ----------------------------------------------------------------

def test_order_of_application_matters_as_documented() -> None:
    grow = Growth(pools=(EAST,), factor=2.0)
    move = Migration(EAST, GRAVITON, start=JAN1, ramp_days=0)
    grow_then_move = apply_overlays(flat_usage(), [grow, move])
    move_then_grow = apply_overlays(flat_usage(), [move, grow])
    assert np.allclose(grow_then_move.column(GRAVITON), 20.0)  # the grown usage moved
    assert np.allclose(move_then_grow.column(GRAVITON), 10.0)  # only what was left grew (nothing)
    assert np.allclose(move_then_grow.column(EAST), 0.0)


def test_paths_equal_applying_to_each_scenario() -> None:
    rng = np.random.default_rng(7)
    pools = (WEST, EAST, "aws:ec2:eu-west-1:t3:linux")  # unsorted on purpose
    paths = rng.gamma(2.0, 3.0, size=(4, 200, 3)).astype(np.float32)
    start = datetime(2025, 3, 1, 5, tzinfo=UTC)
    overlays = [
        Growth(pools=("aws:ec2:us-*",), factor=1.4, start=start + timedelta(hours=30), ramp_days=2),
        Migration(EAST, GRAVITON, start=start + timedelta(hours=50), share=0.6, ramp_days=3),
        Launch("aws:ec2:ap-southeast-1:c6i:linux", level=7.0, start=start + timedelta(hours=10), daily_profile=True),
        Decommission(pools=("aws:ec2:eu-west-1:*",), start=start + timedelta(hours=120), ramp_days=1),
    ]
    out, out_pools = apply_to_paths(paths, pools, start, overlays)
    assert out.dtype == np.float32 and out_pools == tuple(sorted(out_pools)) and len(out_pools) == 5
    for s in range(paths.shape[0]):
        single = apply_overlays(UsageMatrix(start, pools, paths[s].astype(np.float64)), overlays)
        assert single.pools == out_pools
        np.testing.assert_allclose(out[s], single.values, rtol=1e-5, atol=1e-5)
    assert np.array_equal(paths, paths.astype(np.float32))  # input untouched (copy semantics)


def test_input_is_not_modified_and_quantities_stay_non_negative() -> None:
    usage = flat_usage()
    before = usage.values.copy()
    out = apply_overlays(usage, [Growth(pools=("*",), factor=0.0), Migration(EAST, WEST, start=JAN1)])
    assert np.array_equal(usage.values, before)
    assert np.all(out.values >= 0)


# --- files -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo() -> UsageMatrix:
    return read_usage(EXAMPLES / "demo" / "usage.csv.gz")


@pytest.fixture(scope="module")
def demo_prices() -> PriceBook:
    return read_price_book(EXAMPLES / "demo" / "prices.csv")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_loads_and_applies_to_the_demo_estate(path: Path, demo: UsageMatrix,
                                                            demo_prices: PriceBook) -> None:
    overlays = load_overlays(path)
    assert overlays
    out = apply_overlays(demo, overlays)
    assert np.all(out.values >= 0) and out.hours == demo.hours
    assert not np.allclose(out.values, demo.values)  # every example changes something in 2025
    assert set(out.pools) <= set(demo_prices.on_demand)  # the outlook can be planned with the demo prices


def test_there_are_example_files() -> None:
    assert 2 <= len(list(EXAMPLES.glob("*.yaml"))) <= 4


def test_load_reads_every_field(tmp_path: Path) -> None:
    path = write(tmp_path, """\
overlays:
  - kind: growth
    pools: ["a:*", "b:*"]
    factor: 1.3
    from: 2025-07-01T06:30:00+02:00
    ramp_days: 2.5
  - kind: migration
    from_pool: a:x
    to_pool: b:y
    start: "2025-08-01"
  - kind: launch
    pool: c:z
    level: 3
    start: 2025-09-01 12:00:00
    daily_profile: yes
  - kind: decommission
    pools: a:*
    start: 2025-10-01
""")
    growth, migration, launch, decommission = load_overlays(path)
    assert growth == Growth(pools=("a:*", "b:*"), factor=1.3, start=datetime(2025, 7, 1, 4, 30, tzinfo=UTC),
                            ramp_days=2.5, origin=growth.origin)
    assert growth.origin.line == 2 and growth.origin.key_lines["factor"] == 4
    assert (migration.share, migration.ramp_days, migration.ratio) == (1.0, 14.0, 1.0)
    assert migration.start == datetime(2025, 8, 1, tzinfo=UTC)
    assert launch.daily_profile is True and launch.start == datetime(2025, 9, 1, 12, tzinfo=UTC)
    assert decommission.pools == ("a:*",) and decommission.ramp_days == 0.0


def test_empty_overlay_list_is_allowed(tmp_path: Path) -> None:
    assert load_overlays(write(tmp_path, "overlays: []\n")) == []
    assert load_overlays(write(tmp_path, "overlays:\n")) == []


BAD = {
    # name: (text, line, key, words in the message)
    "unknown_kind": ("overlays:\n  - kind: growht\n    pools: '*'\n    factor: 2\n", 2, "kind", "unknown kind"),
    "missing_kind": ("overlays:\n  - pools: '*'\n    factor: 2\n", 2, "kind", "missing 'kind'"),
    "missing_field": ("# m5 -> m7g\noverlays:\n  - kind: migration\n    from_pool: a:x\n    start: 2025-01-01\n",
                      3, "to_pool", "needs 'to_pool'"),
    "negative_factor": ("overlays:\n  - kind: growth\n    pools: '*'\n\n    factor: -0.3\n", 5, "factor", ">= 0"),
    "share_above_1": ("overlays:\n  - kind: growth\n    pools: '*'\n    factor: 1\n  - kind: migration\n"
                      "    from_pool: a:x\n    to_pool: a:y\n    start: 2025-01-01\n    share: 1.5\n",
                      9, "share", "between 0 and 1"),
    "bad_calendar_date": ("overlays:\n  - kind: decommission\n    pools: '*'\n    start: 2025-13-01\n",
                          4, "start", "ISO date"),
    "date_in_words": ("overlays:\n  - kind: launch\n    pool: a:x\n    level: 1\n    start: next tuesday\n",
                      5, "start", "ISO date"),
    "growth_from_unparseable": ("overlays:\n  - kind: growth\n    pools: '*'\n    factor: 1.1\n    from: 01/07/2025\n",
                                5, "from", "ISO date"),
    "level_not_number": ("overlays:\n  - kind: launch\n    pool: a:x\n    level: forty\n    start: 2025-01-01\n",
                         4, "level", "must be a number"),
    "unknown_key": ("overlays:\n  - kind: decommission\n    pools: '*'\n    start: 2025-01-01\n    ramp_day: 3\n",
                    5, "ramp_day", "unknown key"),
    "factor_and_rate": ("overlays:\n  - kind: growth\n    pools: '*'\n    factor: 1.1\n    annual_rate: 0.1\n",
                        4, "factor", "exactly one"),
    "neither_factor_nor_rate": ("overlays:\n  - kind: growth\n    pools: '*'\n", 2, "factor", "exactly one"),
    "rate_with_ramp": ("overlays:\n  - kind: growth\n    pools: '*'\n    annual_rate: 0.1\n    ramp_days: 3\n",
                       5, "ramp_days", "factor' only"),
    "rate_below_minus_1": ("overlays:\n  - kind: growth\n    pools: '*'\n    annual_rate: -1\n", 4, "annual_rate", "> -1"),
    "pattern_as_migration_source": ("overlays:\n  - kind: migration\n    from_pool: 'a:*'\n    to_pool: a:y\n"
                                    "    start: 2025-01-01\n", 3, "from_pool", "exact pool id"),
    "same_source_and_target": ("overlays:\n  - kind: migration\n    from_pool: a:x\n    to_pool: a:x\n"
                               "    start: 2025-01-01\n", 4, "to_pool", "differ"),
    "zero_ratio": ("overlays:\n  - kind: migration\n    from_pool: a:x\n    to_pool: a:y\n"
                   "    start: 2025-01-01\n    ratio: 0\n", 6, "ratio", "> 0"),
    "negative_ramp": ("overlays:\n  - kind: decommission\n    pools: '*'\n    start: 2025-01-01\n    ramp_days: -2\n",
                      5, "ramp_days", ">= 0"),
    "empty_selector": ("overlays:\n  - kind: decommission\n    pools: []\n    start: 2025-01-01\n", 3, "pools", "glob"),
    "profile_not_bool": ("overlays:\n  - kind: launch\n    pool: a:x\n    level: 1\n    start: 2025-01-01\n"
                         "    daily_profile: daily\n", 6, "daily_profile", "true or false"),
    "item_not_mapping": ("overlays:\n  - growth\n", 1, "overlays", "mapping"),
    "overlays_not_list": ("\noverlays: growth\n", 2, "overlays", "must be a list"),
    "no_overlays_key": ("growth:\n  - pools: '*'\n", 1, "overlays", "top-level"),
    "invalid_yaml": ("overlays:\n  - kind: growth\n    pools: '*'\n   factor: 2\n", 4, None, "not valid YAML"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_names_file_line_and_key(name: str, tmp_path: Path) -> None:
    text, line, key, words = BAD[name]
    path = write(tmp_path, text, f"{name}.yaml")
    with pytest.raises(InputError) as caught:
        load_overlays(path)
    error = caught.value
    assert (error.file, error.row, error.column) == (str(path), line, key), str(error)
    assert words in error.message, str(error)


@pytest.mark.parametrize("text, line, key", [
    ("overlays:\n  - kind: growth\n    pools: 'gcp:*'\n    factor: 2\n", 3, "pools"),
    ("overlays:\n  - kind: decommission\n    start: 2025-01-01\n    pools: ['azure:*', 'gcp:*']\n", 4, "pools"),
    ("overlays:\n  - kind: migration\n    from_pool: aws:ec2:us-east-1:m4:linux\n    to_pool: a:y\n"
     "    start: 2025-01-01\n", 3, "from_pool"),
])
def test_selector_matching_no_pool_fails_when_applied(text: str, line: int, key: str, tmp_path: Path) -> None:
    path = write(tmp_path, text)
    overlays = load_overlays(path)
    with pytest.raises(InputError) as caught:
        apply_overlays(flat_usage(), overlays)
    assert (caught.value.file, caught.value.row, caught.value.column) == (str(path), line, key)
    assert "pool" in caught.value.message


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_overlays(tmp_path / "nope.yaml")
