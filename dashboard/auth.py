"""Optional password in front of every page: set `RTREC_DASHBOARD_PASSWORD` to require it.

Recordings hold transcripts and audio; a dashboard reachable beyond loopback should ask first.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

PASSWORD_ENV = "RTREC_DASHBOARD_PASSWORD"  # noqa: S105 (a variable's name, not a password)
SIGNED_IN = "rtrec_signed_in"


def signed_in() -> bool:
    """True when no password is set or this browser session gave it; else shows the form."""
    expected = os.environ.get(PASSWORD_ENV, "")
    if not expected or st.session_state.get(SIGNED_IN):
        return True
    st.title("rtrec dashboard")
    with st.form("sign_in"):
        typed = st.text_input("Password", type="password", key="rtrec_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        # Constant-time comparison: the time taken says nothing about how much of it matched.
        if hmac.compare_digest(typed.encode(), expected.encode()):
            st.session_state[SIGNED_IN] = True
            del st.session_state["rtrec_password"]
            st.rerun()
        st.error("Wrong password.")
    return False
