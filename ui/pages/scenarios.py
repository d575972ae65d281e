"""Scenarios: what-if overlays (growth, migrations, launches, decommissions) to plan against, and plans
compared side by side (``commitplan compare``'s figures, read from the stored plans)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import service
from ui.common import attempt, current_actor, plan_label

st.title("Scenarios")
actor = current_actor()

st.subheader("What-if overlays")
examples = service.example_whatifs()
example = st.selectbox("Start from an example", list(examples), key="scenario_example")
text = st.text_area("Overlays (YAML)", examples.get(example, ""), height=220, key=f"scenario_yaml_{example}")
name = st.text_input("Name", example.removesuffix(".yaml") if example else "what-if", key=f"scenario_name_{example}")
if st.button("Check and save", key="scenario_save"):
    saved = attempt(service.add_scenario, actor, name, text)
    if saved:
        st.success(f"Saved scenario {saved['name']} ({saved['id'][:8]}): pick it on the Plan page with a horizon.")
stored = service.scenarios()
if stored:
    st.dataframe(pd.DataFrame(stored), hide_index=True, width="stretch")

st.subheader("Plans side by side")
done = service.plans(status="done")
labels = {p["id"]: plan_label(p) for p in done}
chosen = st.multiselect("Plans to compare", list(labels), default=list(labels)[:2], key="compare_plans",
                        format_func=labels.get)
if chosen:
    result = attempt(service.compare, chosen)
    if result:
        plans = pd.DataFrame(result["plans"]).set_index("name")
        st.dataframe(pd.DataFrame(result["table"]), hide_index=True, width="stretch")
        savings = plans[["expected_savings", "savings_p10", "savings_p50", "savings_p90"]].reset_index()
        st.bar_chart(savings.melt("name", var_name="figure", value_name="$").dropna(), x="figure", y="$",
                     color="name", stack=False)
        st.bar_chart(plans[["coverage", "utilization", "effective_savings_rate"]].reset_index()
                     .melt("name", var_name="figure", value_name="share"), x="figure", y="share", color="name",
                     stack=False)
        if result["purchases"]:
            rows = [{"offering": r["offering"], "kind": r["kind"], **r["quantities"]} for r in result["purchases"]]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
else:
    st.info("Run plans on the Plan page (with and without a what-if) to compare them here.")
