"""Overview: totals and daily trends of sessions, tokens, cost, latency, errors and rate limits."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data, display, ui

TOKEN_KINDS = {
    "input text": "input_text_tokens",
    "input audio": "input_audio_tokens",
    "input image": "input_image_tokens",
    "output text": "output_text_tokens",
    "output audio": "output_audio_tokens",
}

st.title("Overview")
if not ui.empty_state():
    span = ui.span_picker("overview_span", "Last 30 days")
    totals = data.overview_totals(span)
    columns = st.columns(6)
    columns[0].metric("Sessions", display.count(totals["sessions"]))
    columns[1].metric("Live now", display.count(totals["open_sessions"]))
    columns[2].metric("Responses", display.count(totals["responses"]))
    columns[3].metric("Input tokens", display.count(totals["input_tokens"]))
    columns[4].metric("Output tokens", display.count(totals["output_tokens"]))
    columns[5].metric("Cost", display.usd(totals["cost_usd"]))
    st.caption(
        f"Cached input tokens {display.count(totals['cached_tokens'])} · transcriptions "
        f"{display.count(totals['transcriptions'])} · error events "
        f"{display.count(totals['error_events'])} · failed responses "
        f"{display.count(totals['failed_responses'])} · sessions started in the range, UTC days"
    )

    left, right = st.columns(2)
    with left:
        st.subheader("Sessions per day")
        charts.bars(data.daily_sessions(span), "day", "sessions", "model")
    usage = data.daily_usage(span)
    with right:
        st.subheader("Tokens per day by kind")
        tokens = usage.groupby("day", as_index=False)[list(TOKEN_KINDS.values())].sum()
        tokens = tokens.rename(columns={v: k for k, v in TOKEN_KINDS.items()})
        charts.folded_bars(tokens, "day", list(TOKEN_KINDS), y_title="tokens")

    left, right = st.columns(2)
    with left:
        st.subheader("Cost per day by model")
        charts.bars(data.daily_cost(span), "day", "cost_usd", "model", y_title="USD")
    with right:
        st.subheader("Rate-limit headroom")
        st.caption("Lowest `remaining` of the day, as % of the limit")
        limits = data.daily_rate_limits(span).dropna(subset=["name", "headroom_pct"])
        headroom = limits.pivot_table(index="day", columns="name", values="headroom_pct")
        if limits.empty:
            st.info("No `rate_limits.updated` with a limit in this range.")
        else:
            charts.line(
                limits.pivot_table(
                    index="day", columns="name", values="headroom_pct"
                ).reset_index(),
                "day",
                sorted(set(limits["name"])),
                x_type="ordinal",
                y_title="% of limit left",
            )

    left, right = st.columns(2)
    with left:
        st.subheader("Latency percentiles (ms)")
        st.dataframe(data.latency_percentiles(span), hide_index=True)
    with right:
        st.subheader("Errors by code")
        st.dataframe(data.error_counts(span), hide_index=True)

    ui.usage_by_property(span)
