"""``commitplan compare``: real plans side by side, every figure equal to the one in its file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.output import money
from models.policy import Policy
from models.pricing import OfferingKind
from models.readers import read_price_book, read_usage
from scenarios.sample_estate import generate_estate
from solver.risk import RiskSpec
from solver.future_plan import plan_for_history
from solver.planner import plan_for_usage

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, Path]:
    """Three real plans of one estate: unrestricted, reservations only, and a forecast plan with risk figures."""
    d = tmp_path_factory.mktemp("compare")
    paths = generate_estate(4, 42, 3, savings_plans="two").write(d)
    prices = read_price_book(paths["prices"])
    usage = read_usage(paths["usage"], known_pools=set(prices.on_demand))
    made = {
        "base": plan_for_usage(usage, prices),
        "ri_only": plan_for_usage(usage, prices, policy=Policy(allowed_kinds=[OfferingKind.RESERVATION])),
        "forecast": plan_for_history(usage, prices, horizon_months=1, scenarios=4, seed=1, risk=RiskSpec(0.8, 0.5)),
    }
    out = {}
    for name, plan in made.items():
        out[name] = d / f"{name}.json"
        out[name].write_text(plan.model_dump_json(indent=2))
    out["prices"] = paths["prices"]
    return out


def _rows(text: str) -> dict[str, list[str]]:
    """Table rows by their first cell (continuation lines of folded cells are skipped)."""
    rows = {}
    for line in text.replace("┃", "│").splitlines():  # the header row is drawn with heavy bars
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            if cells[0]:
                rows.setdefault(cells[0], cells[1:])
    return rows


def test_json_figures_are_the_files_figures(plans):
    names = ["base", "ri_only", "forecast"]
    result = cli("compare", *[plans[n] for n in names], "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert [p["name"] for p in got["plans"]] == names
    prices = read_price_book(plans["prices"])
    for p in got["plans"]:
        raw = json.loads(Path(p["path"]).read_text())
        s = raw["summary"]
        assert p["expected_cost"] == s["expected_cost"]
        assert p["expected_savings"] == s["expected_savings"]
        assert p["effective_savings_rate"] == s["effective_savings_rate"]
        assert p["coverage"] == s["coverage"] and p["utilization"] == s["utilization"]
        assert p["window_hours"] == raw["window_hours"]
        assert p["upfront_total"] == pytest.approx(sum(q["upfront_cost"] for q in raw["purchases"]), rel=1e-12)
        amortized = sum(q["quantity"] * prices.offerings[q["offering"]].hourly_cost_per_unit() for q in raw["purchases"])
        if p["name"] == "forecast":
            assert p["commitment_hourly_bought"] is None or p["commitment_hourly_bought"] == pytest.approx(amortized)
        else:
            assert p["commitment_hourly_bought"] == pytest.approx(amortized, rel=1e-12)
        risk = raw.get("risk")
        for key in ("savings_p10", "savings_p50", "savings_p90", "cvar_cost", "worst_idle_commitment", "forecast_wape"):
            assert p[key] == (risk[key] if risk else None)
    assert got["plans"][2]["cvar_alpha"] == 0.8
    assert got["plans"][1]["commitment_hourly_bought"] > 0
    # purchases per offering: every offering any plan buys, with each plan's quantity (0 when it buys none)
    bought = {n: {} for n in names}
    for n in names:
        for q in json.loads(plans[n].read_text())["purchases"]:
            bought[n][q["offering"]] = bought[n].get(q["offering"], 0.0) + q["quantity"]
    offerings = sorted(set().union(*bought.values()))
    assert [r["offering"] for r in got["purchases"]] == offerings
    for row in got["purchases"]:
        assert row["quantities"] == {n: bought[n].get(row["offering"], 0.0) for n in names}
    assert all(row["kind"] == "reservation" for row in got["purchases"] if row["quantities"]["ri_only"] > 0)
    assert any(row["kind"] == "savings_plan" for row in got["purchases"]), "the base plan should buy a savings plan"


def test_tables_show_the_files_figures(plans):
    names = ["base", "ri_only", "forecast"]
    result = cli("compare", *[plans[n] for n in names])
    assert result.exit_code == 0, result.output
    raws = [json.loads(plans[n].read_text()) for n in names]
    figures, _, purchases = result.stdout.partition("Purchases per offering")
    rows = _rows(figures)
    assert rows["figure"] == names
    assert rows["expected cost"] == [money(r["summary"]["expected_cost"]) for r in raws]
    assert rows["expected savings"] == [money(r["summary"]["expected_savings"]) for r in raws]
    assert rows["effective savings rate"] == [f"{r['summary']['effective_savings_rate']:.2%}" for r in raws]
    assert rows["coverage"] == [f"{r['summary']['coverage']:.2%}" for r in raws]
    assert rows["utilization"] == [f"{r['summary']['utilization']:.2%}" for r in raws]
    assert rows["upfront total"] == [money(sum(q["upfront_cost"] for q in r["purchases"])) for r in raws]
    risk = raws[2]["risk"]
    assert rows["savings P10"] == ["—", "—", money(risk["savings_p10"])]
    assert rows["savings P90"] == ["—", "—", money(risk["savings_p90"])]
    assert rows["CVaR 80% of cost"] == ["—", "—", money(risk["cvar_cost"])]
    assert rows["worst idle commitment"] == ["—", "—", money(risk["worst_idle_commitment"])]
    assert rows["forecast WAPE"] == ["—", "—", f"{risk['forecast_wape']:.2%}"]
    table = _rows(purchases)
    for n, raw in zip(names, raws):
        for q in raw["purchases"]:
            assert table[q["offering"]][1 + names.index(n)] == f"{q['quantity']:g}"


def test_plans_without_risk_figures_show_no_risk_rows(plans):
    result = cli("compare", plans["base"], plans["ri_only"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert "expected cost" in rows and not any(k.startswith(("savings P", "CVaR", "forecast")) for k in rows)


def test_a_plan_written_before_the_new_fields_still_compares(plans, tmp_path):
    raw = json.loads(plans["base"].read_text())
    raw.pop("schedule")
    for q in raw["purchases"]:
        for key in ("hourly_commitment", "break_even_utilization", "marginal_value"):
            q.pop(key)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(raw))
    result = cli("compare", plans["base"], old, "--json")
    assert result.exit_code == 0, result.output
    new, before = json.loads(result.stdout)["plans"]
    assert before["commitment_hourly_bought"] == pytest.approx(new["commitment_hourly_bought"], rel=1e-9)
    assert before["expected_cost"] == new["expected_cost"]


def test_files_with_the_same_stem_are_told_apart(plans, tmp_path):
    other = tmp_path / "base.json"
    other.write_text(plans["ri_only"].read_text())
    result = cli("compare", plans["base"], other, "--json")
    assert result.exit_code == 0, result.output
    assert [p["name"] for p in json.loads(result.stdout)["plans"]] == [str(plans["base"]), str(other)]


@pytest.mark.parametrize("content, phrase", [
    ('{"purchases": [}', "not valid JSON (line 1, column 16"),
    ("[1, 2]", "not a plan"),
    ('{"purchases": []}', "not a plan: window_start: Field required"),
    (b"\xff\xfe{", "cannot read"),
])
def test_a_bad_file_fails_with_its_name_and_exit_2(plans, tmp_path, content, phrase):
    bad = tmp_path / "broken[1].json"  # brackets: the name must not be read as rich markup
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = cli("compare", plans["base"], bad)
    assert result.exit_code == 2, result.output
    text = "".join(result.stderr.split())
    assert "".join(f"{bad}:".split()) in text and "".join(phrase.split()) in text, result.stderr
    assert result.stdout == ""


def test_a_missing_file_fails_with_its_name_and_exit_2(plans, tmp_path):
    missing = tmp_path / "nowhere.json"
    result = cli("compare", missing, plans["base"], "--json")
    assert result.exit_code == 2
    assert "".join(f"{missing}: the file does not exist".split()) in "".join(result.stderr.split())
    assert result.stdout == ""
