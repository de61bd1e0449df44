"""Relayed messages are counted in a tally that the counters show exactly whenever they are read."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from recorder.metrics import Metrics

EVENTS = "openai_realtime_events_total"
BYTES = "openai_realtime_event_bytes_total"


def test_every_read_of_the_registry_sees_every_message_once():
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for _ in range(3):
        metrics.relayed.add("server", "response.output_audio.delta", 100, "ga")
    metrics.relayed.add("client", "session.made_up", 7, "live")
    delta = {"direction": "server", "type": "response.output_audio.delta", "api": "ga"}
    assert registry.get_sample_value(EVENTS, delta) == 3
    assert registry.get_sample_value(EVENTS, delta) == 3  # read again: not counted twice
    made_up = {"direction": "client", "type": "other", "api": "live"}  # bounded label
    assert registry.get_sample_value(EVENTS, made_up) == 1
    assert registry.get_sample_value(BYTES, {"direction": "server"}) == 300
    metrics.relayed.add("server", "response.output_audio.delta", 50, "ga")
    scraped = generate_latest(registry).decode()  # what /metrics serves
    assert f'{EVENTS}{{api="ga",direction="server",type="response.output_audio.delta"}} 4.0' in (
        scraped
    )
    assert f'{BYTES}{{direction="server"}} 350.0' in scraped
