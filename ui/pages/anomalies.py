"""Anomalies: days whose spend beats a trailing seasonal baseline by both thresholds (``commitplan anomalies``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import ledger
from ui.common import attempt, current_actor

st.title("Anomalies")
current_actor()  # the sign-in sidebar
cols = st.columns(2)
dollars = cols[0].number_input("Threshold, $ a day", 0.0, None, 100.0, 10.0, key="anom_dollars")
percent = cols[1].number_input("Threshold, % over baseline", 0.0, None, 20.0, 5.0, key="anom_percent")
report = attempt(ledger.anomalies, dollars, percent)
if report:
    found = report["anomalies"]
    st.caption(f"{len(found)} anomalies in {report['series']} series, {report['first_day']} to {report['last_day']} "
               f"(z ≥ {report['thresholds']['z']:g}).")
    for note in report["notes"]:
        st.caption(note)
    if found:
        frame = pd.DataFrame(found)
        frame["top"] = [", ".join(f"{c['service']}/{c['account']}/{c['region']} {c['excess']:+,.0f}"
                                  for c in a["top_contributors"]) for a in found]
        frame["series"] = frame["dimension"] + "=" + frame["value"].astype(str)
        st.scatter_chart(frame, x="date", y="excess", color="dimension", size="amount")
        st.dataframe(frame[["date", "incident", "series", "amount", "expected", "excess", "percent", "z",
                            "likely_owner", "top"]], hide_index=True, width="stretch")
    else:
        st.success("No anomalies at these thresholds.")
