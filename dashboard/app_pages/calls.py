"""Calls: every WebRTC and SIP call created or steered through rtrec, newest first."""

from __future__ import annotations

import streamlit as st

from dashboard import call_view, data

PAGE_SIZE = 50

st.title("Calls")
total = data.call_count()
if total == 0:
    st.info(
        "No calls recorded yet. WebRTC and SIP calls are recorded when their control requests "
        "(`POST /v1/realtime/calls`, `…/accept`, `…/hangup`, GPT-Live's `/v1/live/sessions`) "
        "go through the proxy; their conversation, when a sideband watches them."
    )
else:
    page = st.pagination(max(1, -(-total // PAGE_SIZE)), key="calls_page")
    st.caption(
        f"{total:,} call{'s' if total != 1 else ''} · page {page} · times in UTC · "
        "follow a call's link for its lifecycle and conversation"
    )
    call_view.show_calls(data.call_page(page, PAGE_SIZE), key="calls_table")
