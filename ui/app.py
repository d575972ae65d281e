"""The commitplan UI (``commitplan ui``): one page per file in ``ui/pages``, API-key sign-in in every page's sidebar.

Pages render what :mod:`ui.service` and :mod:`ui.ledger` return: the same store, job and billing
functions the HTTP API and the CLI call. Works with nothing set up: the default SQLite database in
the data directory, the shipped sample estate and sample bills.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="commitplan", page_icon=":material/savings:", layout="wide")
navigation = st.navigation({
    "Plan commitments": [
        st.Page(PAGES / "data.py", title="Data", icon=":material/upload_file:", default=True),
        st.Page(PAGES / "usage.py", title="Usage & coverage", icon=":material/show_chart:"),
        st.Page(PAGES / "plan.py", title="Plan", icon=":material/calculate:"),
        st.Page(PAGES / "scenarios.py", title="Scenarios", icon=":material/compare:"),
        st.Page(PAGES / "approvals.py", title="Approvals", icon=":material/approval:"),
    ],
    "Ledger": [
        st.Page(PAGES / "savings.py", title="Savings", icon=":material/savings:"),
        st.Page(PAGES / "allocation.py", title="Allocation", icon=":material/pie_chart:"),
        st.Page(PAGES / "anomalies.py", title="Anomalies", icon=":material/warning:"),
    ],
})
navigation.run()  # each page renders the sign-in sidebar (ui.common.current_actor)
