"""Overview: totals, and trends per day or hour, of sessions, tokens, cost, latency, errors."""

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
        f"{display.count(totals['failed_responses'])} · sessions started in the range, UTC"
    )

    bucket = (
        st.segmented_control("Charts per", ["day", "hour"], default="day", key="overview_bucket")
        or "day"
    )  # a click on the chosen option clears it: keep the default then
    left, right = st.columns(2)
    with left:
        st.subheader(f"Sessions per {bucket}")
        charts.bars(data.daily_sessions(span, bucket), bucket, "sessions", "model")
    usage = data.daily_usage(span, bucket)
    with right:
        st.subheader(f"Tokens per {bucket} by kind")
        tokens = usage.groupby(bucket, as_index=False)[list(TOKEN_KINDS.values())].sum()
        tokens = tokens.rename(columns={v: k for k, v in TOKEN_KINDS.items()})
        charts.folded_bars(tokens, bucket, list(TOKEN_KINDS), y_title="tokens")

    left, right = st.columns(2)
    with left:
        st.subheader(f"Cost per {bucket} by model")
        charts.bars(data.daily_cost(span, bucket), bucket, "cost_usd", "model", y_title="USD")
    with right:
        st.subheader("Rate-limit headroom")
        st.caption(f"Lowest `remaining` of the {bucket}, as % of the limit")
        limits = data.daily_rate_limits(span, bucket).dropna(subset=["name", "headroom_pct"])
        if limits.empty:
            st.info("No `rate_limits.updated` with a limit in this range.")
        else:
            charts.line(
                limits.pivot_table(
                    index=bucket, columns="name", values="headroom_pct"
                ).reset_index(),
                bucket,
                sorted(set(limits["name"])),
                x_type="ordinal",
                y_title="% of limit left",
            )

    # Full width: the measure names and seven numbers do not fit half a 1366 px screen.
    st.subheader("Latency percentiles (ms)")
    st.dataframe(data.latency_percentiles(span), hide_index=True)
    st.subheader("Errors by code")
    st.dataframe(data.error_counts(span), hide_index=True)
    st.subheader("Failed connection attempts")
    st.caption("`/realtime` upgrades the upstream refused, or never answered (502): no session")
    failures = data.upgrade_failures(span)
    if failures.empty:
        st.info("No failed connection attempt in this range.")
    else:
        st.dataframe(failures, hide_index=True)

    ui.usage_by_property(span)
