"""Data: upload a bill, usage or price book (checked by the CLI's readers), or use the sample; the reconciliation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ui import ledger, service
from ui.common import attempt, current_actor

KINDS = {"usage": "Usage CSV (timestamp,pool,quantity)", "prices": "Price book CSV",
         "commitments": "Existing commitments CSV", "billing": "Billing export (FOCUS, AWS CUR, GCP, Azure)"}

st.title("Data")
actor = current_actor()


def show_reconciliation(items: list[dict]) -> None:
    for item in items:
        if item.get("id"):
            st.markdown(f"**{item['name']}** ({item['kind']}) stored as dataset `{item['id'][:8]}` "
                        f"by {item['created_by']}, SHA-256 {item['sha256']}…")
        else:
            st.markdown(f"**{item['name']}** loaded into the ledger")
        rec = item["reconciliation"]
        if item["kind"] == "billing":
            show_ingest(rec)
        else:
            st.dataframe(pd.DataFrame([rec]), hide_index=True)


def remember(items: list[dict] | None) -> None:
    """Keep the latest reconciliations (newest first) for this browser session."""
    if items:
        st.session_state["data_last"] = [*items[::-1], *st.session_state.get("data_last", [])][:6]


def show_ingest(rec: dict) -> None:
    """Rows and sums loaded per billing period beside the file's own sums (they must tie), and rejections."""
    for f in rec["files"]:
        st.caption(f"{Path(f['file']).name}: {f['format']}, {f['status']}; {f['rows_loaded']:,} of {f['rows_read']:,} rows loaded; "
                   "the file's own sums: " + ", ".join(f"{k} {float(v):,.2f}" for k, v in f["source"].items()))
        st.dataframe(pd.DataFrame(f["periods"]), hide_index=True)
    if rec["rejected"]:
        st.warning(f"{len(rec['rejected'])} rows rejected (listed with their reason):")
        st.dataframe(pd.DataFrame(rec["rejected"]), hide_index=True)


upload_col, sample_col = st.columns([3, 2])
with upload_col:
    st.subheader("Upload")
    kind = st.radio("Kind", list(KINDS), format_func=KINDS.get, key="data_kind", horizontal=True)
    file = st.file_uploader("File (.csv, .csv.gz; a bill may be .parquet)", key="data_file",
                            type=["csv", "gz", "parquet"])
    if st.button("Check and store", key="data_upload", type="primary", disabled=file is None):
        stored = attempt(service.upload, actor, kind, file.name, file.getvalue())
        remember([stored] if stored else None)
with sample_col:
    st.subheader("Or use the sample")
    if st.button("Shipped demo estate (24 pools, a year)", key="data_sample_demo"):
        remember(attempt(service.use_sample, actor))
    pools = st.number_input("Pools", 1, 50, 4, key="data_sample_pools")
    days = st.number_input("Days", 7, 365, 60, key="data_sample_days")
    if st.button("Generate a small sample estate", key="data_sample_small"):
        remember(attempt(service.use_sample, actor, int(pools), int(days)))
    if st.button("Load the sample bills into the ledger", key="data_sample_bills",
                 disabled=not ledger.sample_bills()):
        rec = attempt(ledger.ingest_sample)
        remember([{"name": "Sample bills (FOCUS 1.2: AWS, Azure, GCP)", "kind": "billing", "id": None,
                   "reconciliation": rec}] if rec else None)

if st.session_state.get("data_last"):
    st.subheader("Reconciliation (latest first)")
    show_reconciliation(st.session_state["data_last"])

st.subheader("Stored datasets")
rows = service.datasets()
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
else:
    st.info("Nothing stored yet.")
st.caption(f"Ledger for bills: {ledger.ledger_path()}" + ("" if ledger.has_ledger() else " (not created yet)"))
