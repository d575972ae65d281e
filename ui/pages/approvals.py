"""Approvals: finance, signed in with an API key, sees submitted plans with their figures and risk,
approves or rejects them with a comment, and reads the audit trail. The rules are the store's."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import service, views
from ui.common import attempt, current_actor, plan_label

st.title("Approvals")
actor = current_actor()
if actor.can("decide"):
    st.caption(f"Deciding as **{actor.name}** ({actor.role.value}). Nobody decides a plan they created or submitted.")
else:
    st.info(f"You act as {actor.name} ({actor.role.value}): you can read plans and their audit trail. "
            "To approve or reject, sign in with a finance key in the sidebar.")

state = st.radio("Show plans", ["submitted", "approved", "rejected", "all"], key="approvals_filter", horizontal=True)
rows = service.plans(approval=None if state == "all" else state)
labels = {r["id"]: plan_label(r) for r in rows}
picked = st.selectbox("Plan", list(labels), key="approvals_plan", format_func=labels.get) if rows else None
if picked is None:
    st.info(f"No {'' if state == 'all' else state + ' '}plans.")
else:
    shown = service.plan(picked)
    if shown["approval"] == "submitted":
        comment = st.text_area("Comment (a rejection must say why)", key="approvals_comment")
        approve_col, reject_col, _ = st.columns([1, 1, 4])
        if approve_col.button("Approve", key="approvals_approve", type="primary"):
            shown = attempt(service.decide, actor, picked, True, comment) or shown
        if reject_col.button("Reject", key="approvals_reject"):
            shown = attempt(service.decide, actor, picked, False, comment) or shown
    if shown["approval"] in ("approved", "rejected"):
        st.success(f"The plan is {shown['approval']} by {shown['decided_by']}; the decision is final.")
    views.plan(shown)
    st.subheader("Audit trail")
    st.dataframe(pd.DataFrame(service.audit(picked)), hide_index=True, width="stretch")

if st.button("Verify the audit chain", key="approvals_verify"):
    check = service.verify_chain()
    problems = check["approved_plan_problems"]
    if check["ok"] and not problems:
        st.success(f"The hash chain is intact ({check['checked']} entries) and approved plans are unchanged.")
    else:
        st.warning(f"Audit check: {check['message']}; {'; '.join(problems)}")
