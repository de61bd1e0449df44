"""rtrec's Grafana dashboard over the metrics of docs/metrics.md, built with grafana-foundation-sdk.

`python -m deploy.grafana.build_dashboard` rewrites `dashboards/rtrec.json`; a test fails when the
committed file differs from `build()`, so change this module and regenerate, never the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import units
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from deploy.grafana.live_panels import gpt_live
from deploy.grafana.panels import (
    DATASOURCE,
    MODEL,
    PER_MINUTE,
    PER_SECOND,
    TOKENS_PER_SECOND,
    Panel,
    graph,
    label_table,
    per_minute,
    quantile,
    quantile_graph,
    query,
    rate,
    single,
)

DASHBOARD_PATH = Path(__file__).resolve().parent / "dashboards" / "rtrec.json"
UID = "rtrec"


def alerts() -> list[Panel]:
    return [
        label_table(
            "Alerts pending or firing",
            "rtrec's Prometheus alerts (deploy/prometheus/alerts.yml); pending ones wait out"
            " their `for` duration. The README's Alerts section says what each means.",
            'ALERTS{alertname=~"Rtrec.*"}',
            hidden=["Time", "Value", "__name__"],
            no_value="No alert pending or firing",
        )
    ]


def sessions() -> list[Panel]:
    return [
        single(
            "Active sessions",
            "Realtime WebSockets open right now, across every proxy.",
            units.Short,
            query(f"sum(openai_realtime_sessions_active{{{MODEL}}})", "active"),
            width=4,
        ),
        graph(
            "Sessions started",
            "New Realtime sessions per minute, by the model named in the URL.",
            PER_MINUTE,
            query(per_minute("openai_realtime_sessions_total", "model", MODEL), "{{model}}"),
            width=6,
        ),
        graph(
            "Active sessions by model",
            "Open sessions per model (from session.created/updated once known).",
            units.Short,
            query(f"sum by (model) (openai_realtime_sessions_active{{{MODEL}}})", "{{model}}"),
            width=6,
        ),
        quantile_graph(
            "Session duration",
            "How long sessions lasted, upgrade to close, over sessions that ended.",
            "openai_realtime_session_duration_seconds",
            MODEL,
        ),
    ]


def tokens_and_cost() -> list[Panel]:
    by_kind = "sum by (direction, modality, cached)"
    cached_input = f'{MODEL}, direction="input", cached="true"'
    all_input = f'{MODEL}, direction="input"'
    return [
        graph(
            "Tokens by direction, modality and cache",
            "Response tokens per second; cached input is part of input, never added to it.",
            TOKENS_PER_SECOND,
            query(
                f"{by_kind} ({rate('openai_realtime_tokens_total', MODEL)})",
                "{{direction}} {{modality}} cached={{cached}}",
            ),
            width=10,
        ),
        single(
            "Cached share of input tokens",
            "Input tokens served from the prompt cache, over all input tokens.",
            units.PercentUnit,
            query(
                f"sum({rate('openai_realtime_tokens_total', cached_input)})"
                f" / sum({rate('openai_realtime_tokens_total', all_input)})",
                "cached",
            ),
            width=4,
        ),
        graph(
            "Spend per hour by model and kind",
            "USD per hour at the current rate, responses and transcriptions, every model.",
            units.Dollars,
            query(
                f"3600 * sum by (model, kind) ({rate('openai_realtime_cost_usd_total')})",
                "{{model}} {{kind}}",
            ),
            width=6,
        ),
        single(
            "Spend in the time range",
            "USD spent in the dashboard's time range, by model (transcription models included).",
            units.Dollars,
            query(
                "sum by (model) (increase(openai_realtime_cost_usd_total[$__range]))",
                "{{model}}",
                instant=True,
            ),
            width=4,
        ),
    ]


def responses_and_errors() -> list[Panel]:
    cancelled = rate("openai_realtime_responses_total", f'{MODEL}, status="cancelled"')
    return [
        graph(
            "Responses by status and reason",
            "Finished responses per minute; cancelled/turn_detected is a user barging in.",
            PER_MINUTE,
            query(
                per_minute("openai_realtime_responses_total", "status, reason", MODEL),
                "{{status}} {{reason}}",
            ),
            width=8,
        ),
        single(
            "Interrupted responses",
            "Share of responses that ended cancelled (client cancel or barge-in).",
            units.PercentUnit,
            query(
                f"sum({cancelled}) / sum({rate('openai_realtime_responses_total', MODEL)})",
                "cancelled",
            ),
            width=4,
        ),
        graph(
            "Errors by type and code",
            "Server error events per minute.",
            PER_MINUTE,
            query(
                per_minute("openai_realtime_errors_total", "type, code", MODEL),
                "{{type}} {{code}}",
            ),
            width=6,
        ),
        graph(
            "Upgrade failures",
            "/realtime upgrades the upstream refused, per minute, by HTTP status.",
            PER_MINUTE,
            query(
                per_minute("openai_realtime_upgrade_failures_total", "status"), "HTTP {{status}}"
            ),
            width=6,
        ),
    ]


def latency() -> list[Panel]:
    return [
        quantile_graph(
            "Response duration",
            "response.created to response.done.",
            "openai_realtime_response_duration_seconds",
            MODEL,
        ),
        quantile_graph(
            "Time to first audio",
            "response.created to the first audio delta.",
            "openai_realtime_time_to_first_audio_seconds",
            MODEL,
        ),
        quantile_graph(
            "Time to first text",
            "response.created to the first text or transcript delta.",
            "openai_realtime_time_to_first_text_seconds",
            MODEL,
        ),
        quantile_graph(
            "Turn latency",
            "Server speech_stopped to the first audio delta of the response it triggered.",
            "openai_realtime_turn_latency_seconds",
            MODEL,
            width=12,
        ),
        quantile_graph(
            "Voice to voice",
            "The proxy forwarding the end of the user's speech to the answer's first audio.",
            "openai_realtime_voice_to_voice_seconds",
            MODEL,
            width=12,
        ),
    ]


def rate_limits() -> list[Panel]:
    by = "max by (name, key)"
    return [
        graph(
            "Rate limit remaining vs limit",
            "From rate_limits.updated, per limit name and API key fingerprint.",
            units.Short,
            query(f"{by} (openai_realtime_rate_limit_remaining)", "{{name}} {{key}} remaining"),
            query(f"{by} (openai_realtime_rate_limit_limit)", "{{name}} {{key}} limit", "B"),
            width=10,
        ),
        graph(
            "Rate limit headroom",
            "Remaining over limit; near zero means requests are about to be throttled.",
            units.PercentUnit,
            query(
                "min by (name, key) (openai_realtime_rate_limit_remaining"
                " / openai_realtime_rate_limit_limit)",
                "{{name}} {{key}}",
            ),
            width=7,
        ),
        graph(
            "Rate limit reset",
            "Seconds until each limit resets fully.",
            units.Seconds,
            query(f"{by} (openai_realtime_rate_limit_reset_seconds)", "{{name}} {{key}}"),
            width=7,
        ),
    ]


def transcription() -> list[Panel]:
    return [
        graph(
            "Transcription tokens",
            "Input-audio transcription tokens per second, by transcription model.",
            TOKENS_PER_SECOND,
            query(
                "sum by (model, direction, modality) "
                f"({rate('openai_realtime_transcription_tokens_total')})",
                "{{model}} {{direction}} {{modality}}",
            ),
        ),
        graph(
            "Transcribed audio",
            "Seconds of audio transcribed per minute by duration-billed models (whisper-1).",
            units.Seconds,
            query(
                per_minute("openai_realtime_transcription_audio_seconds_total", "model"),
                "{{model}}",
            ),
        ),
    ]


def traffic() -> list[Panel]:
    return [
        graph(
            "Events by direction and type",
            "WebSocket messages relayed per second; unknown types are counted as other.",
            PER_SECOND,
            query(
                f"sum by (direction, type) ({rate('openai_realtime_events_total')})",
                "{{direction}} {{type}}",
            ),
            width=16,
        ),
        graph(
            "Bytes relayed",
            "Message payload bytes per second, by direction.",
            units.BytesPerSecondSI,
            query(
                f"sum by (direction) ({rate('openai_realtime_event_bytes_total')})",
                "{{direction}}",
            ),
            width=8,
        ),
    ]


def recorder() -> list[Panel]:
    return [
        graph(
            "Recorder queue depth",
            "Records waiting for the writer thread, per proxy.",
            units.Short,
            query("max by (instance) (openai_realtime_recorder_queue_depth)", "{{instance}}"),
            width=5,
        ),
        graph(
            "Dropped records",
            "Records the recorder could not store, per second, by reason.",
            PER_SECOND,
            query(
                f"sum by (reason) ({rate('openai_realtime_recorder_dropped_events_total')})",
                "{{reason}}",
            ),
            width=5,
        ),
        graph(
            "Batch write time p95",
            "95th percentile of the time the writer took to commit one batch.",
            units.Seconds,
            query(quantile(0.95, "openai_realtime_recorder_write_seconds"), "p95"),
            width=5,
        ),
        graph(
            "Parse and database errors",
            "Messages the recorder could not interpret, and failed database operations.",
            PER_SECOND,
            query(
                f"sum by (direction) ({rate('openai_realtime_recorder_parse_errors_total')})",
                "parse {{direction}}",
            ),
            query(f"sum({rate('openai_realtime_recorder_db_errors_total')})", "database", "B"),
            width=5,
        ),
        single(
            "rtrec versions",
            "Proxies serving metrics, by rtrec version.",
            units.Short,
            query(
                "count by (version) (openai_realtime_recorder_build_info)",
                "{{version}}",
                instant=True,
            ),
            width=4,
        ),
    ]


ROWS = (
    ("Alerts", alerts),
    ("Sessions", sessions),
    ("Tokens and cost", tokens_and_cost),
    ("Responses and errors", responses_and_errors),
    ("Latency", latency),
    ("GPT-Live", gpt_live),
    ("Rate limits", rate_limits),
    ("Transcription", transcription),
    ("Traffic", traffic),
    ("Recorder health", recorder),
)


def variables() -> list[dashboard_builder.DatasourceVariable | dashboard_builder.QueryVariable]:
    return [
        dashboard_builder.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        dashboard_builder.QueryVariable("model")
        .label("Model")
        .datasource(DATASOURCE)
        .query("label_values(openai_realtime_sessions_total, model)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all")),
    ]


def build() -> dict[str, Any]:
    """The dashboard as the plain JSON object Grafana provisions."""
    board = (
        dashboard_builder.Dashboard("rtrec: OpenAI Realtime")
        .uid(UID)
        .description("Sessions, tokens, cost, latency and rate limits recorded by rtrec.")
        .tags(["rtrec", "openai", "realtime"])
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
    )
    for variable in variables():
        board.with_variable(variable)
    panel_id = 0
    for title, section in ROWS:
        panel_id += 1
        board.with_row(dashboard_builder.Row(title).id(panel_id))
        for panel in section():
            panel_id += 1
            board.with_panel(panel.id(panel_id))
    encoded: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return encoded


def render() -> str:
    """The committed file's exact text."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    DASHBOARD_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {DASHBOARD_PATH}")


if __name__ == "__main__":
    main()
