"""End-to-end tests of the ``commitplan`` command line (api/cli.py).

A few cases run the CLI as a real subprocess (``python -m api.cli``), where stdout is exactly what a
shell pipeline sees (including anything native libraries print); the rest use typer's CliRunner,
which is faster. Estates are tiny so the whole file runs in well under a minute.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.test_readers import CASES

MALFORMED = Path(__file__).parent / "malformed"
EXPECTED = {name: (row, column, phrase) for name, _, row, column, phrase in CASES}

PLAN_SUMMARY_KEYS = {
    "on_demand_equivalent", "expected_cost", "expected_savings", "effective_savings_rate", "coverage", "utilization",
}
BILL_KEYS = {
    "on_demand_equivalent", "commitment_cost", "on_demand_paid", "total_cost", "savings", "effective_savings_rate",
    "coverage",
}

runner = CliRunner()


# --------------------------------------------------------------------------- helpers


def cli(*args: str | Path):
    """Run the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return runner.invoke(app, [str(a) for a in args])


def cli_subprocess(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m api.cli`` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=180,
        env={**os.environ, **(env or {})},
    )


def squash(text: str) -> str:
    """``text`` without whitespace: rich wraps long messages to the terminal width."""
    return "".join(text.split())


def close(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def estate(tmp_path_factory) -> Path:
    """A small generated estate: 4 pools × 14 days, two savings plans."""
    out = tmp_path_factory.mktemp("estate")
    result = cli("sample", "--pools", 4, "--days", 14, "--seed", 3, "--savings-plans", "two", "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def planned(estate, tmp_path_factory) -> tuple[Path, dict]:
    """The plan of ``estate`` written by ``plan --out`` (HiGHS, the default backend)."""
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    result = cli("plan", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--out", path)
    assert result.exit_code == 0, result.output
    return path, json.loads(path.read_text())


AB_PRICES = """\
offering,kind,term_months,payment,pool,hourly_rate,upfront
on_demand,on_demand,,,a,1.0,
on_demand,on_demand,,,b,2.0,
ri1,reservation,12,no_upfront,a,0.6,0
sp1,savings_plan,12,no_upfront,a,0.7,0
sp1,savings_plan,12,no_upfront,b,1.4,0
"""


@pytest.fixture(scope="module")
def ab(tmp_path_factory) -> dict[str, Path]:
    """A valid hand-written estate over the pools (a, b) and offerings (ri1, sp1) the malformed corpus uses."""
    d = tmp_path_factory.mktemp("ab")
    rows = [f"2025-01-01T{h:02d}:00:00Z,{p},{q}" for h in range(24) for p, q in (("a", 3 + h % 4), ("b", 1.5))]
    (d / "usage.csv").write_text("timestamp,pool,quantity\n" + "\n".join(rows) + "\n")
    (d / "prices.csv").write_text(AB_PRICES)
    (d / "existing.csv").write_text("offering,quantity,start,end\nri1,1,2024-06-01T00:00:00Z,2025-06-01T00:00:00Z\n")
    (d / "plan.json").write_text('{"purchases": [{"offering": "ri1", "quantity": 2, "start": "2025-01-01T00:00:00Z"}]}')
    return {k: d / f for k, f in
            [("usage", "usage.csv"), ("prices", "prices.csv"), ("existing", "existing.csv"), ("plan", "plan.json")]}


# --------------------------------------------------------------------------- sample


def test_python_dash_m_runs_the_cli(tmp_path):
    done = cli_subprocess("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for command in ("plan", "bill", "sample", "demo"):
        assert command in done.stdout


def test_sample_is_deterministic_across_processes(tmp_path):
    args = ["sample", "--pools", "4", "--days", "14", "--seed", "11", "--savings-plans", "two"]
    first = cli_subprocess(*args, "--out", tmp_path / "one", cwd=tmp_path, env={"PYTHONHASHSEED": "1"})
    second = cli_subprocess(*args, "--out", tmp_path / "two", cwd=tmp_path, env={"PYTHONHASHSEED": "2"})
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    one, two = snapshot(tmp_path / "one"), snapshot(tmp_path / "two")
    assert set(one) == {"usage.csv", "prices.csv"}
    assert one == two
    assert one["usage.csv"].startswith(b"timestamp,pool,quantity\n")
    assert one["prices.csv"].startswith(b"offering,kind,term_months,payment,pool,hourly_rate,upfront")
    other = cli("sample", "--pools", 4, "--days", 14, "--seed", 12, "--savings-plans", "two", "--out", tmp_path / "c")
    assert other.exit_code == 0, other.output
    assert (tmp_path / "c" / "usage.csv").read_bytes() != one["usage.csv"]


def test_sample_rejects_an_unknown_savings_plan_option(tmp_path):
    result = cli("sample", "--pools", 2, "--days", 1, "--savings-plans", "bogus", "--out", tmp_path / "s")
    assert result.exit_code == 2
    assert "savings_plans" in result.stderr and "bogus" in result.stderr


# --------------------------------------------------------------------------- plan and bill


def test_plan_writes_the_plan_json_contract(estate, planned):
    _, plan = planned
    offerings = {line.split(",", 1)[0] for line in (estate / "prices.csv").read_text().splitlines()[1:]}
    assert isinstance(plan["purchases"], list) and plan["purchases"], "the small estate should buy something"
    for p in plan["purchases"]:
        assert {"offering", "quantity", "start"} <= set(p)
        assert p["offering"] in offerings and p["offering"] != "on_demand"
        assert is_number(p["quantity"]) and p["quantity"] > 0
        assert datetime.fromisoformat(p["start"]).utcoffset().total_seconds() == 0
    s = plan["summary"]
    assert PLAN_SUMMARY_KEYS <= set(s)
    assert all(is_number(s[k]) for k in PLAN_SUMMARY_KEYS), s
    assert close(s["expected_savings"], s["on_demand_equivalent"] - s["expected_cost"])
    assert close(s["effective_savings_rate"], s["expected_savings"] / s["on_demand_equivalent"])
    assert 0 < s["expected_cost"] < s["on_demand_equivalent"]
    assert 0 <= s["coverage"] <= 1 and 0 <= s["utilization"] <= 1


def test_bill_of_the_plan_matches_the_planners_figures(estate, planned, tmp_path):
    path, plan = planned
    done = cli_subprocess(
        "bill", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--plan", path, "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    bill = json.loads(done.stdout)
    assert isinstance(bill, dict) and BILL_KEYS <= set(bill)
    assert all(is_number(bill[k]) for k in BILL_KEYS), bill
    s = plan["summary"]
    assert close(bill["total_cost"], s["expected_cost"]), (bill["total_cost"], s["expected_cost"])
    assert close(bill["on_demand_equivalent"], s["on_demand_equivalent"])
    assert close(bill["effective_savings_rate"], s["effective_savings_rate"])
    assert close(bill["total_cost"], bill["commitment_cost"] + bill["on_demand_paid"])
    assert close(bill["savings"], bill["on_demand_equivalent"] - bill["total_cost"])


def test_bill_prints_a_table_without_json(estate, planned):
    path, _ = planned
    result = cli("bill", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--plan", path)
    assert result.exit_code == 0, result.output
    assert "total cost" in result.stdout and "effective savings rate" in result.stdout


@pytest.mark.parametrize("backend", ["ortools", "cbc"])
def test_backends_agree_with_highs(estate, planned, backend, tmp_path):
    _, plan = planned
    out = tmp_path / f"{backend}.json"
    result = cli("plan", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--backend", backend,
                 "--out", out)
    assert result.exit_code == 0, result.output
    other = json.loads(out.read_text())
    assert other["solve"]["backend"] == backend
    assert close(other["summary"]["expected_cost"], plan["summary"]["expected_cost"]), (
        other["summary"]["expected_cost"], plan["summary"]["expected_cost"])


def test_plan_and_bill_agree_with_existing_commitments(estate, tmp_path):
    usage, prices = estate / "usage.csv", estate / "prices.csv"
    existing = tmp_path / "existing.csv"
    existing.write_text(
        "offering,quantity,start,end\n"
        "ri-1y-nu-aws:ec2:us-east-1:m5:linux,20,2024-06-01T00:00:00Z,2025-06-01T00:00:00Z\n"
        "csp-1y-nu,0.05,2025-01-03T00:00:00Z,2026-01-03T00:00:00Z\n"
    )
    path = tmp_path / "plan.json"
    result = cli("plan", "--usage", usage, "--prices", prices, "--existing", existing, "--out", path)
    assert result.exit_code == 0, result.output
    plan = json.loads(path.read_text())
    billed = cli("bill", "--usage", usage, "--prices", prices, "--existing", existing, "--plan", path, "--json")
    assert billed.exit_code == 0, billed.output
    bill = json.loads(billed.stdout)
    assert close(bill["total_cost"], plan["summary"]["expected_cost"]), (bill["total_cost"], plan["summary"])


def test_plan_json_on_stdout_is_valid_json(estate, tmp_path):
    """Run as a subprocess: stdout must be exactly one JSON document, nothing printed around it."""
    out = tmp_path / "plan.json"
    done = cli_subprocess(
        "plan", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--json", "--out", out, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    try:
        printed = json.loads(done.stdout)
    except json.JSONDecodeError as e:
        pytest.fail(f"`plan --json` stdout is not valid JSON ({e}); it starts with {done.stdout[:200]!r}")
    assert printed == json.loads(out.read_text())
    assert PLAN_SUMMARY_KEYS <= set(printed["summary"])


def test_plan_json_is_plain_even_when_colour_is_forced(estate, tmp_path):
    """CI systems often set FORCE_COLOR; a JSON document on stdout must still carry no ANSI escapes."""
    done = cli_subprocess(
        "plan", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--json", cwd=tmp_path,
        env={"FORCE_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout, f"ANSI escapes in `plan --json` output: {done.stdout[:80]!r}"
    assert PLAN_SUMMARY_KEYS <= set(json.loads(done.stdout)["summary"])


def test_plan_json_in_process(estate):
    result = cli("plan", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--json",
                 "--backend", "ortools")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert {"purchases", "summary"} <= set(printed)


def test_plan_without_json_shows_tables(estate):
    result = cli("plan", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv")
    assert result.exit_code == 0, result.output
    assert "What to buy" in result.stdout and "effective savings rate" in result.stdout


# --------------------------------------------------------------------------- bad input


def test_unknown_backend_fails_clearly(estate, tmp_path):
    out = tmp_path / "plan.json"
    result = cli("plan", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--backend", "gurobi",
                 "--out", out)
    assert result.exit_code != 0
    assert "unknown backend 'gurobi'" in result.stderr
    assert all(b in result.stderr for b in ("highs", "ortools", "cbc"))
    assert not out.exists()


def test_demo_with_an_unknown_backend_fails_clearly():
    result = cli("demo", "--backend", "gurobi")
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.exception!r}"
    assert "unknown backend 'gurobi'" in result.stderr


def test_unknown_method_fails_clearly(estate, tmp_path):
    out = tmp_path / "plan.json"
    result = cli("plan", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--method", "simplex",
                 "--out", out)
    assert result.exit_code == 2
    assert "unknown method 'simplex'" in result.stderr
    assert not out.exists()


def expected_error(path: Path) -> tuple[str, str]:
    """The error text the readers' table promises for a corpus file, as ``InputError.__str__`` renders it."""
    row, column, phrase = EXPECTED[path.name]
    where = str(path) + (f", row {row}" if row is not None else "") + (f", column '{column}'" if column else "")
    return f"{where}: ", phrase


# option of `plan` the corpus file is given as; the other inputs come from the valid (a, b) estate
PLAN_CASES = [
    ("usage", "usage_negative.csv"),
    ("usage", "usage_bad_timestamp.csv"),
    ("usage", "usage_duplicate.csv"),
    ("usage", "usage_unclosed_quote.csv"),
    ("usage", "usage_corrupt.csv.gz"),
    ("usage", "usage_unknown_pool.csv"),
    ("usage", "usage_header_only.csv"),
    ("prices", "prices_missing_column.csv"),
    ("prices", "prices_negative_rate.csv"),
    ("prices", "prices_ri_two_pools.csv"),
    ("prices", "prices_sp_inconsistent_increment.csv"),
    ("existing", "existing_bad_start.csv"),
    ("existing", "existing_end_before_start.csv"),
    ("existing", "existing_unknown_offering.csv"),
    ("existing", "existing_zero_quantity.csv"),
]


def check_input_error(result, path: Path) -> None:
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.stderr
    where, phrase = expected_error(path)
    stderr = squash(result.stderr)
    assert squash(where) in stderr, result.stderr
    assert squash(phrase) in stderr, result.stderr
    assert squash(where) not in squash(result.stdout)


@pytest.mark.parametrize(("option", "name"), PLAN_CASES, ids=[n for _, n in PLAN_CASES])
def test_plan_rejects_malformed_input_without_writing(ab, tmp_path, option, name):
    files = {"usage": ab["usage"], "prices": ab["prices"], "existing": ab["existing"], option: MALFORMED / name}
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = cli("plan", "--usage", files["usage"], "--prices", files["prices"], "--existing", files["existing"],
                 "--out", out_dir / "plan.json")
    check_input_error(result, MALFORMED / name)
    assert list(out_dir.iterdir()) == [], "nothing may be written, not even a temporary file"


@pytest.mark.parametrize("name", [
    "plan_invalid.json", "plan_missing_key.json", "plan_bad_start.json", "plan_negative_quantity.json",
    "plan_no_purchases.json", "plan_empty.json",
])
def test_bill_rejects_a_malformed_plan(ab, name):
    result = cli("bill", "--usage", ab["usage"], "--prices", ab["prices"], "--plan", MALFORMED / name, "--json")
    check_input_error(result, MALFORMED / name)
    assert result.stdout == ""


@pytest.mark.parametrize(("option", "name"), [("usage", "usage_nan.csv"), ("prices", "prices_unknown_kind.csv"),
                                              ("existing", "existing_missing_column.csv")])
def test_bill_rejects_malformed_input(ab, option, name):
    files = {"usage": ab["usage"], "prices": ab["prices"], "existing": ab["existing"], option: MALFORMED / name}
    result = cli("bill", "--usage", files["usage"], "--prices", files["prices"], "--existing", files["existing"],
                 "--plan", ab["plan"], "--json")
    check_input_error(result, MALFORMED / name)


def test_bill_rejects_a_plan_with_offerings_not_in_the_price_book(ab, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text('{"purchases": [{"offering": "ri-gone", "quantity": 1, "start": "2025-01-01T00:00:00Z"}]}')
    result = cli("bill", "--usage", ab["usage"], "--prices", ab["prices"], "--plan", plan)
    assert result.exit_code == 2
    assert squash(f"{plan}: offerings not in the price book") in squash(result.stderr), result.stderr
    assert "ri-gone" in result.stderr


def test_the_valid_ab_estate_plans_and_bills(ab, tmp_path):
    """Control for the corpus tests above: with no malformed file, the same commands succeed."""
    out = tmp_path / "plan.json"
    result = cli("plan", "--usage", ab["usage"], "--prices", ab["prices"], "--existing", ab["existing"], "--out", out)
    assert result.exit_code == 0, result.output
    billed = cli("bill", "--usage", ab["usage"], "--prices", ab["prices"], "--existing", ab["existing"],
                 "--plan", ab["plan"], "--json")
    assert billed.exit_code == 0, billed.output


def test_bad_input_leaves_an_existing_out_file_unchanged(ab, tmp_path):
    out = tmp_path / "plan.json"
    out.write_text('{"previous": "plan"}\n')
    before = out.stat()
    bad = MALFORMED / "usage_negative.csv"
    done = cli_subprocess("plan", "--usage", bad, "--prices", ab["prices"], "--out", out, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert squash(expected_error(bad)[0]) in squash(done.stderr)
    assert out.read_text() == '{"previous": "plan"}\n'
    assert out.stat().st_mtime_ns == before.st_mtime_ns and out.stat().st_ino == before.st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_bad_input_does_not_create_the_out_directory(ab, tmp_path):
    out = tmp_path / "new" / "dir" / "plan.json"
    result = cli("plan", "--usage", MALFORMED / "usage_nan.csv", "--prices", ab["prices"], "--out", out)
    assert result.exit_code == 2
    assert not (tmp_path / "new").exists()


def test_missing_input_file_is_reported(ab, tmp_path):
    missing = tmp_path / "nowhere.csv"
    result = cli("plan", "--usage", missing, "--prices", ab["prices"], "--out", tmp_path / "plan.json")
    assert result.exit_code == 2
    assert squash(f"{missing}: ") in squash(result.stderr) and "does not exist" in result.stderr
    assert not (tmp_path / "plan.json").exists()


def test_error_messages_are_printed_verbatim(ab, tmp_path):
    """Text from the user's files (values, paths) must not be read as rich markup."""
    folder = tmp_path / "estate[prod]"
    folder.mkdir()
    usage = folder / "usage.csv"
    usage.write_text("timestamp,pool,quantity\n2025-01-01T00:00:00Z,a,[bold]\n")
    result = cli("plan", "--usage", usage, "--prices", ab["prices"])
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.exception!r}"
    assert squash(f"{usage}, row 2, column 'quantity': quantity '[bold]' is not a number") in squash(result.stderr), (
        result.stderr)
    usage.write_text("timestamp,pool,quantity\n2025-01-01T00:00:00Z,a,[/]\n")
    result = cli("plan", "--usage", usage, "--prices", ab["prices"])
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.exception!r}"
    assert "'[/]' is not a number" in result.stderr


# --------------------------------------------------------------------------- demo


def test_demo_shows_what_to_buy_and_the_savings_rate():
    result = cli("demo")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "What to buy" in text or "Buy nothing" in text
    assert "What to buy" in text, "the shipped demo estate should buy commitments"
    assert "effective savings rate" in text
    line = next(l for l in text.splitlines() if "effective savings rate" in l)
    assert "%" in line


def test_conflicting_limits_exit_2_with_the_smallest_conflict_in_words(estate, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("coverage_min: 0.9\nallowed_kinds: [reservation]\nallowed_payments: [all_upfront]\n"
                      "upfront_budget: 1\nmax_three_year_share: 0.9\n")
    result = cli("plan", "--usage", estate / "usage.csv", "--prices", estate / "prices.csv", "--policy", policy,
                 "--out", tmp_path / "plan.json")
    assert result.exit_code == 2
    text = squash(result.stderr)
    assert squash("coverage of at least 90.0%") in text and squash("an upfront budget of 1.00 $") in text
    assert "3-year" not in text and "Traceback" not in result.output
    assert not (tmp_path / "plan.json").exists()
