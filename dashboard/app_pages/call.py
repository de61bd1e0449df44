"""Call: one call (`?call=ID`, or a unique prefix): its lifecycle next to its conversation."""

from __future__ import annotations

import streamlit as st

from dashboard import call_view, data, display, ui


def show(call_id: str) -> None:
    call = data.call(call_id)
    if call is None:  # pruned since the page opened
        st.title("Call")
        st.warning(f"There is no call {display.code(call_id)} in this database.")
        return
    found = data.call_detail(call_id, data.session_version(call))
    call_view.header(call, len(found["sessions"]))
    steps, talk = st.columns(2)
    with steps:
        call_view.lifecycle(found["lifecycle"])
    with talk:
        call_view.conversations(found["sessions"])


typed = st.query_params.get("call", "").strip()
if not typed:
    ui.pick_by_id("Call", "Calls", "call")
else:
    call_id, problem = call_view.resolve_call(typed)
    if call_id is None:
        st.title("Call")
        st.warning(problem)
    else:
        if call_id != typed:  # a prefix: the address bar gets the full id, to bookmark
            st.query_params["call"] = call_id
        live = (data.call(call_id) or {}).get("ended_at", 0) is None
        # While the call runs the page re-reads every few seconds; loaders key on `version`.
        st.fragment(run_every=data.LIVE_REFRESH_S if live else None)(show)(call_id)
