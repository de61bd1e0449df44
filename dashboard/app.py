"""The rtrec dashboard's entry script: page config and routing (`streamlit run dashboard/app.py`).

The database URL comes from `RTREC_DB`; every page reads through `dashboard.data`, read-only.
With `RTREC_DASHBOARD_PASSWORD` set, every page waits for that password (`dashboard.auth`).
The pages live in `app_pages/`, not `pages/`: Streamlit treats a `pages/` folder next to the
entry script as a legacy multipage app and would run `pages/<name>.py` directly for a deep link,
skipping this script (its page config and database check).
"""

from __future__ import annotations

import streamlit as st

from dashboard import auth, data

st.set_page_config(page_title="rtrec", layout="wide")

if not auth.signed_in():
    st.stop()  # no page, not even the database check, before the password
if data.database_problem() is not None:
    session = None
    pages = [
        st.Page("app_pages/unavailable.py", title="Database unavailable", icon=":material/error:")
    ]
else:
    sessions = st.Page("app_pages/sessions.py", title="Sessions", icon=":material/list:")
    session = st.Page(
        "app_pages/session.py", title="Session", icon=":material/forum:", url_path="session"
    )
    pages = [
        sessions,
        session,
        st.Page(
            "app_pages/overview.py",
            title="Overview",
            icon=":material/monitoring:",
            url_path="overview",
        ),
        st.Page("app_pages/calls.py", title="Calls", icon=":material/call:", url_path="calls"),
        st.Page(
            "app_pages/call.py", title="Call", icon=":material/phone_in_talk:", url_path="call"
        ),
        st.Page(
            "app_pages/compare.py",
            title="Compare",
            icon=":material/compare_arrows:",
            url_path="compare",
        ),
    ]
chosen = st.navigation(pages)
if session is not None and chosen.url_path == "" and "session" in st.query_params:
    # `/?session=ID` (the older link form) opens the session at its own path, `/session?…`: a
    # default page claiming `session` would leave that path to Streamlit's "Page not found".
    st.switch_page(session, query_params=st.query_params.to_dict())
chosen.run()
