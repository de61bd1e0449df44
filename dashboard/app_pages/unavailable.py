"""Shown instead of every page when the database is missing, unreadable or at another schema."""

from __future__ import annotations

import streamlit as st

from dashboard import data

st.title("rtrec dashboard")
st.error(data.database_problem() or "The database is available again: reload the page.")
st.markdown(
    "The dashboard reads the database named by `--db` (`RTREC_DB`, default `sqlite:///rtrec.db`) "
    "and never writes to it. Record into it with `rtrec proxy` or `rtrec up`, or try "
    "`rtrec demo`."
)
