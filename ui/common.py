"""Widgets every page shares: who is signed in, dataset and plan pickers, number formats, refusals.

Presentation only: what an actor may do is decided by :mod:`store` through :mod:`ui.service`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from store import Actor
from ui import service
from ui.service import UIError

T = TypeVar("T")
TOKEN = "api_token"


def sign_in_sidebar() -> None:
    """API-key sign-in in the sidebar, on every page; the key is re-checked on every run."""
    with st.sidebar:
        token = st.session_state.get(TOKEN)
        if token:
            try:
                who = service.sign_in(token)
            except UIError as e:
                st.session_state.pop(TOKEN, None)
                st.error(str(e))
                return
            st.success(f"Signed in as **{who.name}** ({who.role.value})")
            if st.button("Sign out", key="sign_out"):
                st.session_state.pop(TOKEN, None)
                st.rerun()
            return
        st.caption(f"Not signed in: acting as {service.anonymous().name} (procurement rights). "
                   "Deciding plans needs an API key (`commitplan keys create`).")
        with st.form("sign_in_form", clear_on_submit=True):
            entered = st.text_input("API key", type="password", key="sign_in_token")
            if st.form_submit_button("Sign in"):
                try:
                    service.sign_in(entered)
                except UIError as e:
                    st.error(str(e))
                else:
                    st.session_state[TOKEN] = entered.strip()
                    st.rerun()


def current_actor() -> Actor:
    """Render the sign-in sidebar, then return who acts (each page calls it: AppTest reruns only the page)."""
    sign_in_sidebar()
    try:
        return service.actor_for(st.session_state.get(TOKEN))
    except UIError:
        st.session_state.pop(TOKEN, None)
        return service.anonymous()


def attempt(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call a service; a refusal or bad input is shown as an error message, not an exception."""
    try:
        return fn(*args, **kwargs)
    except UIError as e:
        st.error(str(e))
        return None


def dataset_picker(label: str, kind: str, key: str, optional: bool = False) -> str | None:
    """A stored dataset of ``kind`` (newest first); its id."""
    rows = service.datasets(kind)
    options = ([None] if optional else []) + [r["id"] for r in rows]
    names = {r["id"]: f"{r['name']} · {r['created_at']:%Y-%m-%d %H:%M} · {r['id'][:8]}" for r in rows}
    if not options:
        st.info(f"No {kind} dataset yet: upload one (or use the sample) on the Data page.")
        return None
    return st.selectbox(label, options, key=key, format_func=lambda i: "— none —" if i is None else names[i])


def plan_label(p: dict[str, Any]) -> str:
    return f"{p['name']} · {p['status']}/{p['approval']} · by {p['created_by']} · {p['id'][:8]}"


def money(x: float | None) -> str:
    return "—" if x is None else f"${x:,.2f}"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"
