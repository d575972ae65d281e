"""Plan: finance's risk limits as controls, a solve with its progress, purchases with explanations, P10/P50/P90."""

from __future__ import annotations

import streamlit as st

from ui import service, views
from ui.common import attempt, current_actor, dataset_picker, plan_label

st.title("Plan")
actor = current_actor()

inputs, limits_col = st.columns(2)
with inputs:
    st.subheader("Inputs")
    usage_id = dataset_picker("Usage (history for a forecast)", "usage", "plan_usage")
    prices_id = dataset_picker("Price book", "prices", "plan_prices")
    commitments_id = dataset_picker("Existing commitments", "commitments", "plan_commitments", optional=True)
    name = st.text_input("Plan name", "procurement plan", key="plan_name")
    horizon = st.number_input("Forecast horizon in months (0: optimize for exactly this usage)", 0, 36, 3,
                              key="plan_horizon")
    scenario_rows = service.scenarios()
    scenario_names = {r["id"]: r["name"] for r in scenario_rows}
    scenario_id = st.selectbox("What-if scenario (forecast only)", [None, *scenario_names], key="plan_scenario",
                               format_func=lambda i: "— none —" if i is None else scenario_names[i])
with limits_col:
    st.subheader("Risk limits")
    band = st.slider("Coverage band (ends at 0% and 100%: no limit)", 0.0, 1.0, (0.0, 1.0), 0.05,
                     key="plan_coverage")
    floor = st.number_input("Utilization floor of each new commitment (empty: none)", 0.01, 1.0, None, 0.05,
                            key="plan_util_floor")
    risk_weight = st.number_input("CVaR weight in the objective", 0.0, 10.0, 0.0, 0.1, key="plan_risk_weight")
    alpha = st.number_input("CVaR level α", 0.5, 0.99, 0.95, 0.01, key="plan_alpha")
    cvar_limit = st.number_input("CVaR limit, $ (empty: none)", 0.0, None, None, key="plan_cvar_limit")
    budget = st.number_input("Upfront budget, $ (empty: none)", 0.0, None, None, key="plan_upfront")
    three_year = st.number_input("Largest share of 3-year terms (empty: none)", 0.0, 1.0, None, 0.05,
                                 key="plan_three_year")
    ladder = st.number_input("Ladder: purchase dates, one a month", 1, 24, 1, key="plan_ladder")
    monthly = st.number_input("Most new $/h starting in one month (empty: none)", 0.0, None, None,
                              key="plan_max_monthly")

run = st.button("Run the plan", key="plan_run", type="primary", disabled=not (usage_id and prices_id))
if run:
    limits = attempt(service.policy, coverage_min=band[0] or None, coverage_max=band[1] if band[1] < 1 else None,
                     utilization_floor=floor, risk_weight=risk_weight or None, alpha=alpha, cvar_limit=cvar_limit,
                     upfront_budget=budget, max_three_year_share=three_year,
                     ladder_months=ladder if ladder > 1 else None, max_monthly_purchase=monthly)
    if limits is not None:
        with st.status("Solving…", expanded=True) as status:
            done = attempt(service.create_and_solve, actor, name, usage_id, prices_id, commitments_id, limits,
                           int(horizon) or None, scenario_id, on_status=status.write)
            ok = bool(done and done["status"] == "done")
            status.update(label="Solved" if ok else "Not solved", state="complete" if ok else "error",
                          expanded=not ok)
        if done:
            st.session_state["plan_shown"] = done["id"]

st.divider()
rows = service.plans()
if rows:
    ids = [r["id"] for r in rows]
    labels = {r["id"]: plan_label(r) for r in rows}
    if st.session_state.get("plan_shown") in ids:  # the plan just run is the one shown
        st.session_state["plan_pick"] = st.session_state.pop("plan_shown")
    picked = st.selectbox("Plan", ids, key="plan_pick", format_func=labels.get)
    shown = service.plan(picked)
    if shown["status"] == "done" and shown["approval"] == "draft":
        if st.button("Submit for approval", key="plan_submit"):
            shown = attempt(service.submit, actor, picked) or shown
    if shown["approval"] == "submitted":
        st.success("Submitted: finance approves or rejects it on the Approvals page.")
    views.plan(shown)
else:
    st.info("No plan yet: pick the inputs and limits above, then run.")
