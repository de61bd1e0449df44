"""The deploy/ files as data: Prometheus config, Grafana dashboard queries, spec metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy.grafana import build_dashboard

REPO = Path(__file__).resolve().parents[2]


PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"


# docs/metrics.md, names and labels exactly; histograms by their base name.
SPEC_METRICS: dict[str, tuple[str, ...]] = {
    "openai_realtime_sessions_total": ("model", "api"),
    "openai_realtime_sessions_active": ("model", "api"),
    "openai_realtime_session_duration_seconds": ("model", "api"),
    "openai_realtime_events_total": ("direction", "type", "api"),
    "openai_realtime_event_bytes_total": ("direction",),
    "openai_realtime_responses_total": ("model", "status", "reason"),
    "openai_realtime_tokens_total": ("model", "direction", "modality", "cached"),
    "openai_realtime_transcription_tokens_total": ("model", "direction", "modality"),
    "openai_realtime_transcription_audio_seconds_total": ("model",),
    "openai_realtime_cost_usd_total": ("model", "kind", "api"),
    "openai_realtime_rate_limit_limit": ("name", "key"),
    "openai_realtime_rate_limit_remaining": ("name", "key"),
    "openai_realtime_rate_limit_reset_seconds": ("name", "key"),
    "openai_realtime_errors_total": ("model", "type", "code", "api"),
    "openai_realtime_upgrade_failures_total": ("status",),
    "openai_realtime_response_duration_seconds": ("model", "api"),
    "openai_realtime_time_to_first_audio_seconds": ("model", "api"),
    "openai_realtime_time_to_first_text_seconds": ("model", "api"),
    "openai_realtime_turn_latency_seconds": ("model", "api"),
    "openai_realtime_voice_to_voice_seconds": ("model", "api"),
    "openai_realtime_billable_seconds_total": ("model", "kind"),
    "openai_realtime_context_usage_ratio": ("model",),
    "openai_realtime_recorder_queue_depth": (),
    "openai_realtime_recorder_dropped_events_total": ("reason",),
    "openai_realtime_recorder_write_seconds": (),
    "openai_realtime_recorder_parse_errors_total": ("direction",),
    "openai_realtime_recorder_db_errors_total": (),
    "openai_realtime_recorder_build_info": ("version",),
}


SPEC_HISTOGRAMS = {
    "openai_realtime_session_duration_seconds",
    "openai_realtime_response_duration_seconds",
    "openai_realtime_time_to_first_audio_seconds",
    "openai_realtime_time_to_first_text_seconds",
    "openai_realtime_turn_latency_seconds",
    "openai_realtime_voice_to_voice_seconds",
    "openai_realtime_recorder_write_seconds",
    "openai_realtime_context_usage_ratio",
}


# What Grafana would put in place of the dashboard's variables.
GRAFANA_VALUES = {"$__rate_interval": "1m", "$__range": "5m", "${model}": ".*", "$model": ".*"}


def concrete(expr: str) -> str:
    for variable, value in GRAFANA_VALUES.items():
        expr = expr.replace(variable, value)
    return expr


def spec_metric(series: str) -> str | None:
    """The docs/metrics.md metric of a series name (histograms through _bucket, _sum and _count)."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = series.removesuffix(suffix)
        if base != series and base in SPEC_HISTOGRAMS:
            return base
    return series if series in SPEC_METRICS and series not in SPEC_HISTOGRAMS else None


# --------------------------------------------------------------------------- the dashboard
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(build_dashboard.DASHBOARD_PATH.read_text())
    return loaded


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel but rows, including those inside collapsed rows."""
    found = []
    for panel in board["panels"]:
        found.extend(panel.get("panels", []))
        if panel["type"] != "row":
            found.append(panel)
    return found


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(board) for t in p["targets"]]
