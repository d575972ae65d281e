"""Usage & coverage: usage by pool over time, with today's coverage and utilization from the bill simulator
(usage under the commitments already held) and, when a ledger exists, as billed month by month."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import ledger, service
from ui.common import attempt, current_actor, dataset_picker, pct

st.title("Usage & coverage")
current_actor()  # the sign-in sidebar
usage_id = dataset_picker("Usage", "usage", "usage_dataset")
prices_id = dataset_picker("Price book", "prices", "usage_prices")
commitments_id = dataset_picker("Commitments held today", "commitments", "usage_commitments", optional=True)
period = st.radio("Per", ["D", "W", "h"], key="usage_freq", horizontal=True,
                  format_func={"D": "day", "W": "week", "h": "hour"}.get)

if usage_id:
    frame = attempt(service.usage_frame, usage_id, period)
    if frame is not None:
        st.subheader("Usage by pool")
        st.area_chart(frame, x="period", y="quantity", color="pool", stack=True)
if usage_id and prices_id:
    bill = attempt(service.current_bill, usage_id, prices_id, commitments_id)
    if bill:
        st.subheader("Coverage and utilization of the commitments held")
        cols = st.columns(4)
        cols[0].metric("Coverage", pct(bill["coverage"]))
        cols[1].metric("Utilization", pct(bill["utilization"]) if bill["commitments"] else "—")
        cols[2].metric("Effective savings rate", pct(bill["effective_savings_rate"]))
        cols[3].metric("Cost", f"${bill['total_cost']:,.2f}")
        if bill["commitments"]:
            per = pd.DataFrame(bill["commitments"])
            st.bar_chart(per, x="offering", y="utilization")
            st.dataframe(per, hide_index=True, width="stretch")
        else:
            st.caption("No commitments held: everything runs on demand (pick a commitments dataset to see theirs).")

if ledger.has_ledger():
    months = attempt(ledger.savings)
    if months and months["months"]:
        st.subheader("Coverage and utilization as billed (ledger)")
        m = pd.DataFrame(months["months"])
        m["label"] = m["month"] + " " + m["provider"].fillna("")
        long = m.melt("label", ["coverage", "utilization"], var_name="figure", value_name="share")
        st.bar_chart(long, x="label", y="share", color="figure", stack=False)
