"""The GPT-Live row of rtrec's Grafana dashboard: billed seconds, cost, context, sessions by API
and turn latency of `api="live"` sessions (docs/metrics.md#gpt-live)."""

from __future__ import annotations

from grafana_foundation_sdk.models import units

from deploy.grafana.panels import (
    MODEL,
    PER_MINUTE,
    Panel,
    graph,
    per_minute,
    quantile_graph,
    query,
    rate,
)

LIVE = f'{MODEL}, api="live"'


def gpt_live() -> list[Panel]:
    return [
        graph(
            "Sessions started by API",
            "New recorded sessions per minute: Realtime GA, Realtime beta and GPT-Live (live).",
            PER_MINUTE,
            query(per_minute("openai_realtime_sessions_total", "api"), "{{api}}"),
            width=6,
        ),
        graph(
            "GPT-Live billable seconds by model and kind",
            "Seconds billed per second of wall time, active and paused (standby), from the"
            " sessions' cumulative session.usage.updated; 3 means three sessions billing at once.",
            units.Short,
            query(
                f"sum by (model, kind) ({rate('openai_realtime_billable_seconds_total', MODEL)})",
                "{{model}} {{kind}}",
            ),
            width=6,
        ),
        graph(
            "GPT-Live cost per hour",
            "USD per hour at the current rate: billed seconds (session_seconds) and delegated"
            " Responses and Decisions work, by model and kind.",
            units.Dollars,
            query(
                f"3600 * sum by (model, kind) ({rate('openai_realtime_cost_usd_total', LIVE)})",
                "{{model}} {{kind}}",
            ),
            width=6,
        ),
        quantile_graph(
            "GPT-Live context usage",
            "Context-window usage ratio reported in session.usage.updated (1 = full): p50, p95"
            " and p99 across sessions.",
            "openai_realtime_context_usage_ratio",
            MODEL,
            width=6,
            unit=units.PercentUnit,
        ),
        quantile_graph(
            "GPT-Live time to first audio",
            "The user's last transcript delta to the first audio of the assistant's turn.",
            "openai_realtime_time_to_first_audio_seconds",
            LIVE,
            width=12,
        ),
        quantile_graph(
            "GPT-Live voice to voice",
            "The end of the user's speech in the relayed audio to the turn's first audio.",
            "openai_realtime_voice_to_voice_seconds",
            LIVE,
            width=12,
        ),
    ]
