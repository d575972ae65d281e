"""Savings: what commitments saved as billed (ledger), per month and per commitment (``commitplan savings``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import ledger
from ui.common import attempt, current_actor

st.title("Savings")
current_actor()  # the sign-in sidebar
result = attempt(ledger.savings)
if result:
    months = pd.DataFrame(result["months"])
    st.caption("On-demand equivalent = ListCost of usage; costs amortized; utilization = Used ÷ (Used + Unused).")
    if not months.empty:
        months["label"] = months["month"] + " " + months["provider"].fillna("")
        st.bar_chart(months, x="label", y=["effective_cost", "savings"], stack=True)
        st.dataframe(months.drop(columns="label"), hide_index=True, width="stretch")
    per = pd.DataFrame(result["commitments"])
    st.subheader(f"By commitment ({len(per)})")
    if not per.empty:
        show = st.number_input("Show the commitments that saved least (count)", 5, 500, 20, key="savings_rows")
        worst = per.sort_values("savings").head(int(show))
        st.dataframe(worst, hide_index=True, width="stretch")
