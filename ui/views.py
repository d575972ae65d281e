"""How a stored plan is shown (Plan and Approvals pages): every figure read from the plan JSON as stored."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui.common import money, pct

PURCHASE_COLUMNS = ["offering", "quantity", "start", "term_months", "payment", "upfront_cost", "window_cost",
                    "break_even_utilization", "marginal_value", "why"]


def plan_header(p: dict[str, Any]) -> None:
    st.markdown(f"**{p['name']}** — run **{p['status']}**, approval **{p['approval']}**; created by "
                f"{p['created_by']}" + (f", submitted by {p['submitted_by']}" if p.get("submitted_by") else "")
                + (f", decided by {p['decided_by']}" if p.get("decided_by") else ""))
    if p.get("decision_comment"):
        st.caption(f"Decision comment: {p['decision_comment']}")
    if p.get("policy"):
        with st.expander("Risk limits (policy)"):
            st.json(p["policy"])


def figures(result: dict[str, Any]) -> None:
    """Headline figures and risk: expected cost and savings, ESR, coverage, utilization, P10/P50/P90, CVaR."""
    s, risk = result["summary"], result.get("risk")
    cols = st.columns(5)
    cols[0].metric("Expected cost", money(s["expected_cost"]))
    cols[1].metric("Expected savings", money(s["expected_savings"]))
    cols[2].metric("Effective savings rate", pct(s["effective_savings_rate"]))
    cols[3].metric("Coverage", pct(s["coverage"]))
    cols[4].metric("Utilization", pct(s["utilization"]))
    upfront = sum(x.get("upfront_cost", 0.0) for x in result["purchases"])
    st.caption(f"On-demand equivalent {money(s['on_demand_equivalent'])}; cost with current commitments only "
               f"{money(s.get('cost_without_purchases'))}; upfront {money(upfront)}; window of "
               f"{result['window_hours']:,} h from {result['window_start'][:16].replace('T', ' ')} UTC.")
    if risk:
        cols = st.columns(5)
        cols[0].metric("Savings P10", money(risk["savings_p10"]))
        cols[1].metric("Savings P50", money(risk["savings_p50"]))
        cols[2].metric("Savings P90", money(risk["savings_p90"]))
        cols[3].metric(f"CVaR {risk['alpha']:.0%} of cost", money(risk["cvar_cost"]))
        cols[4].metric("Worst idle commitment", money(risk["worst_idle_commitment"]))
        wape = risk.get("forecast_wape")
        st.caption(f"Risk over the forecast scenarios ({risk.get('forecast_model') or 'forecast'}"
                   + (f", holdout WAPE {wape:.1%}" if wape is not None else "") + f"); CVaR {risk['cvar_basis']}.")
    else:
        st.caption("P10/P50/P90 savings and CVaR come with a forecast plan (a horizon in months).")


def purchases(result: dict[str, Any]) -> None:
    rows = result["purchases"]
    st.subheader(f"What to buy ({len(rows)} purchases)")
    if not rows:
        st.info("This plan buys nothing: no commitment pays off against on-demand under these limits.")
        return
    frame = pd.DataFrame(rows).reindex(columns=PURCHASE_COLUMNS)
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "why": st.column_config.TextColumn("why (explanation)", width="large"),
        "upfront_cost": st.column_config.NumberColumn("upfront $", format="%.2f"),
        "window_cost": st.column_config.NumberColumn("window cost $", format="%.2f"),
        "break_even_utilization": st.column_config.NumberColumn("break-even util.", format="%.3f"),
    })
    with st.expander("Why each purchase (explanations)"):
        for x in rows:
            st.markdown(f"- **{x['offering']}** × {x['quantity']:g}: {x.get('why') or '—'}")


def charts(result: dict[str, Any]) -> None:
    """The monthly commitment schedule and the savings of each forecast scenario."""
    schedule = result.get("schedule") or []
    if schedule:
        frame = pd.DataFrame([{"month": m["month"], "existing $/h": m["active_existing_hourly"],
                               "new purchases $/h": m["active_purchase_hourly"]} for m in schedule])
        st.subheader("Active commitment by month ($/h, amortized)")
        st.bar_chart(frame, x="month", y=["existing $/h", "new purchases $/h"], stack=True)
    scenarios = result.get("scenarios") or []
    if scenarios:
        st.subheader("Savings in each forecast scenario")
        frame = pd.DataFrame([{"scenario": s["index"], "savings $": s["savings"], "coverage": s["coverage"]}
                              for s in scenarios])
        st.bar_chart(frame, x="scenario", y="savings $")


def solve_info(result: dict[str, Any]) -> None:
    solve = result.get("solve")
    if solve:
        st.caption(f"Solved by {solve['method']} on {solve['backend']} in {solve['seconds']:.2f} s "
                   f"({solve['status']}); certified gap {solve['gap']:.1e}; cost of rounding "
                   f"{money(solve['rounding_cost'])}. {result.get('cost_convention', '')}")


def plan(p: dict[str, Any]) -> None:
    """A plan as finance reads it: state, limits, figures, risk, purchases with explanations, charts."""
    plan_header(p)
    if p["status"] == "failed":
        st.warning(f"The solve failed: {p['error']}")
        return
    if p["result"] is None:
        st.info(f"The plan is {p['status']}: no result yet.")
        return
    figures(p["result"])
    purchases(p["result"])
    charts(p["result"])
    solve_info(p["result"])
