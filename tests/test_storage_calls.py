"""The calls' reads (list, one call, its requests, sessions and transport events) and their
retention, on SQLite and PostgreSQL, over rows written by the real writer thread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from protocol.call_transport import TRANSPORT_EVENT_TYPES
from storage import browse, calls, prune
from storage.models import Base, Call, CallEvent, RealtimeSession, table
from storage.records import (
    CallChanged,
    CallEventRecord,
    CallSeen,
    EventRecord,
    Record,
    ResponseDone,
    SessionOpened,
)
from storage.writer import Writer

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def write(engine: Engine, records: list[Record]) -> None:
    writer = Writer(engine)
    writer.start()
    for record in records:
        writer.submit([record])
    writer.close()


def sideband(session_id: str, call_id: str, role: str, at: datetime) -> SessionOpened:
    path = f"/v1/realtime?call_id={call_id}"
    return SessionOpened(
        session_id, at, "ga", path, "full", "gpt-realtime", call_id=call_id, call_role=role
    )


def priced(session_id: str, response_id: str, cost_usd: float | None) -> ResponseDone:
    usage: dict[str, int | None] = {"total_tokens": 10}
    return ResponseDone(session_id, response_id, NOW, "completed", usage=usage, cost_usd=cost_usd)


def a_sip_call(call_id: str = "rtc_sip1", at: datetime = NOW) -> list[Record]:
    """A SIP call accepted, watched by the application and by rtrec, referred elsewhere."""
    return [
        CallSeen(call_id, "ga", at, transport="sip", status="ringing", model="gpt-realtime"),
        CallEventRecord(call_id, at, "accepted", 200, {"path": "/v1/realtime/calls/x/accept"}),
        CallChanged(call_id, status="active", answered_at=at),
        sideband(f"{call_id}-app", call_id, "sideband", at + timedelta(seconds=1)),
        sideband(f"{call_id}-obs", call_id, "observer", at + timedelta(seconds=2)),
        priced(f"{call_id}-app", "resp_1", 0.25),
        priced(f"{call_id}-obs", "resp_2", 0.5),
        priced(f"{call_id}-obs", "resp_1", None),  # the same response: counted once
        EventRecord(
            f"{call_id}-obs",
            0,
            at + timedelta(seconds=3),
            "server",
            "input_audio_buffer.dtmf_event_received",
            80,
            payload={"type": "input_audio_buffer.dtmf_event_received", "event": "5"},
        ),
        EventRecord(f"{call_id}-obs", 1, at + timedelta(seconds=4), "server", "response.done", 9),
        CallEventRecord(
            call_id, at + timedelta(seconds=9), "referred", 200, {"target_uri": "tel:+15550100"}
        ),
        CallChanged(
            call_id, status="ended", ended_at=at + timedelta(seconds=9), end_reason="referred"
        ),
    ]


def a_webrtc_call(call_id: str, at: datetime) -> list[Record]:
    """A WebRTC call nobody watched: no session, no cost."""
    return [
        CallSeen(call_id, "live", at, transport="webrtc", status="active"),
        CallEventRecord(call_id, at, "created", 201),
    ]


def test_calls_are_listed_newest_first_with_sessions_and_cost(engine: Engine):
    write(engine, [*a_sip_call(), *a_webrtc_call("live_new", NOW + timedelta(minutes=1))])
    with engine.connect() as connection:
        listed = calls.list_calls(connection)
        assert calls.count_calls(connection) == 2
        assert calls.list_calls(connection, limit=1, offset=1)[0]["id"] == "rtc_sip1"
    assert [c["id"] for c in listed] == ["live_new", "rtc_sip1"]
    assert [c["sessions"] for c in listed] == [0, 2]
    assert listed[0]["cost_usd"] is None
    assert listed[1]["cost_usd"] == pytest.approx(0.75)
    assert (listed[1]["transport"], listed[1]["status"], listed[1]["end_reason"]) == (
        "sip",
        "ended",
        "referred",
    )


def test_one_call_its_requests_sessions_and_transport_events(engine: Engine):
    write(engine, a_sip_call())
    with engine.connect() as connection:
        call = calls.get_call(connection, "rtc_sip1")
        requests = calls.call_events(connection, "rtc_sip1")
        sessions = calls.call_sessions(connection, "rtc_sip1")
        ids = [s["id"] for s in sessions]
        transport = calls.session_events_of_types(connection, ids, TRANSPORT_EVENT_TYPES)
        assert calls.get_call(connection, "rtc_none") is None
        assert calls.call_ids_starting(connection, "rtc_s") == ["rtc_sip1"]
    assert call is not None
    assert call["cost_usd"] == pytest.approx(0.75)
    assert [r["kind"] for r in requests] == ["accepted", "referred"]
    assert requests[1]["detail"] == {"target_uri": "tel:+15550100"}
    assert [(s["id"], s["call_role"]) for s in sessions] == [
        ("rtc_sip1-app", "sideband"),
        ("rtc_sip1-obs", "observer"),
    ]
    assert [(e["type"], e["payload"]["event"]) for e in transport] == [
        ("input_audio_buffer.dtmf_event_received", "5")
    ]


def rows_of(engine: Engine, model: type[Base]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table(model))).scalar_one())


def test_retention_prunes_old_calls_once_no_session_watches_them(engine: Engine):
    old = NOW - timedelta(days=40)
    write(
        engine,
        [
            *a_sip_call("rtc_old_watched", old),  # its sessions go, then the call
            *a_webrtc_call("live_old_alone", old),  # never watched: goes
            *a_webrtc_call("live_recent", NOW),  # within retention: stays
            CallSeen("rtc_old_kept", "ga", old, transport="sip"),  # a kept session watches it
            sideband("kept", "rtc_old_kept", "observer", NOW),
        ],
    )
    with engine.begin() as connection:
        assert prune.prune_sessions(connection, NOW - timedelta(days=30)) == 2
        assert prune.prune_calls(connection, NOW - timedelta(days=30)) == 2
    with engine.connect() as connection:
        left = list(connection.execute(select(table(Call).c.id).order_by("id")).scalars())
        events = list(connection.execute(select(table(CallEvent).c.call_id)).scalars())
    assert left == ["live_recent", "rtc_old_kept"]
    assert events == ["live_recent"]
    assert rows_of(engine, RealtimeSession) == 1


def test_calls_are_pruned_in_batches_oldest_first(engine: Engine):
    write(engine, [r for day in range(5) for r in a_webrtc_call(f"c{day}", NOW - timedelta(day))])
    batches: list[int] = []
    while not batches or batches[-1] == 2:
        with engine.begin() as connection:
            batches.append(prune.prune_calls(connection, NOW + timedelta(days=1), limit=2))
    assert batches == [2, 2, 1]
    assert rows_of(engine, Call) == rows_of(engine, CallEvent) == 0


def test_the_session_list_gives_a_sidebands_call_and_transport(engine: Engine):
    write(engine, [*a_sip_call(), SessionOpened("plain", NOW, "ga", "/v1/realtime", "full")])
    with engine.connect() as connection:
        found = browse.sessions_with_totals(connection, ["rtc_sip1-app", "plain"])
    assert [(s["call_id"], s["call_role"], s["transport"]) for s in found] == [
        ("rtc_sip1", "sideband", "sip"),
        (None, None, None),
    ]
