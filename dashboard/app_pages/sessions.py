"""Sessions: every recorded session, filtered and paginated, newest first; live ones refresh."""

from __future__ import annotations

import streamlit as st

from dashboard import data, ui
from storage.browse import SessionFilter

PAGE_SIZE = 50
LIVE_REFRESH_S = 5

st.title("Sessions")
if not ui.empty_state():
    session_filter = ui.session_filters()
    total = len(data.matching_sessions(session_filter))
    live = data.session_count(SessionFilter(statuses=("open",)))
    if total == 0:
        st.warning("No session matches these filters.")
    else:
        page = st.pagination(max(1, -(-total // PAGE_SIZE)), key="sessions_page")

        @st.fragment(run_every=LIVE_REFRESH_S if live else None)
        def session_list() -> None:
            rows = data.session_page(session_filter, page, PAGE_SIZE)
            found = len(data.matching_sessions(session_filter))  # grows while sessions start
            matches = f"{found:,} session matches" if found == 1 else f"{found:,} sessions match"
            st.caption(
                f"{matches} · {live:,} live now · page {page} · times in UTC · "
                "select a row (or follow its link) for the conversation, usage and events"
            )
            chosen = ui.show_sessions(rows, key="sessions_table")
            if chosen is not None:
                ui.link_to_session(chosen)

        session_list()
