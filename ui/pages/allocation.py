"""Allocation: every cent of the ledger's cost assigned to an owner by YAML rules (``commitplan allocate``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import ledger
from ui.common import attempt, current_actor

CATEGORIES = ["direct", "shared", "commitment_used", "commitment_unused", "commitment_purchase"]

st.title("Allocation")
current_actor()  # the sign-in sidebar
rules = ledger.rule_files()
picked = st.selectbox("Rules", list(rules), key="alloc_rules")
text = st.text_area("Rules (YAML)", rules.get(picked, ""), height=160, key=f"alloc_text_{picked}")
month = st.text_input("Billing month (YYYY-MM; empty: all)", "", key="alloc_month")
result = attempt(ledger.allocation, text, picked or "rules.yaml", month.strip() or None)
if result:
    cols = st.columns(3)
    cols[0].metric(f"Ledger total ({result['currency'] or 'all currencies'})", f"{result['ledger_total']:,.2f}")
    cols[1].metric("Allocated", f"{result['allocated']:,.2f}")
    cols[2].metric("Unallocated share", f"{result['unallocated_share']:.1%}")
    owners = pd.DataFrame(result["owners"])
    if not owners.empty:
        st.bar_chart(owners.melt("owner", CATEGORIES, var_name="category", value_name="cost"),
                     x="owner", y="cost", color="category", stack=True)
        st.dataframe(owners, hide_index=True, width="stretch")
    if result["commitments"]:
        with st.expander(f"Commitments ({len(result['commitments'])}): buyer, cost, where idle cost went"):
            st.dataframe(pd.DataFrame(result["commitments"]), hide_index=True, width="stretch")
