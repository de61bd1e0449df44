"""A burst the recorder cannot keep up with waits on disk, encrypted, instead of being dropped."""

from __future__ import annotations

import logging
import os
import random
import re
import socket
from pathlib import Path

import pytest
from mitmproxy.test import tflow
from websockets.frames import Frame, Opcode

from handover import wire
from handover.resend import Kept
from handover.sender import Sender
from handover.spill import CHUNK_BYTES, Spill
from proxy import addon
from proxy.frame_boundaries import FrameBoundaries
from recorder.frames import RawStream
from tests.test_handover_acks import Recorder, listening, messages, parsed, relay_stream

SECRET = b"sk-proj-spill-secret-0123456789"


def fields(item: Kept) -> tuple[object, ...]:
    return (
        item.kind,
        item.flags,
        item.session,
        item.seq,
        item.ts,
        bytes(item.body),
        item.messages,
        item.complete,
    )


def kept(n: int, size: int) -> Kept:
    body = (SECRET + b"%d " % n) * (size // len(SECRET) + 1)
    return Kept(wire.RAW, n % 16, n % 7, n, 1.5 + n, body[:size], n % 3, n % 2 == 0)


def test_spill_gives_back_what_it_took_first_in_first_out(tmp_path: Path):
    rng = random.Random(7)
    spill = Spill(64 * 1024 * 1024, str(tmp_path))
    sizes = [0, 1, CHUNK_BYTES + 5, *(rng.choice((30, 3_000, 9_000)) for _ in range(800))]
    items = [kept(n, size) for n, size in enumerate(sizes)]
    taken: list[Kept] = []
    pending = list(items)
    while pending or spill:
        for _ in range(rng.randint(0, 40)):  # appends and pops interleaved, across chunks
            if pending:
                assert spill.append(pending.pop(0))
        for _ in range(rng.randint(0, 30)):
            if spill:
                assert spill.next_size() == len(items[len(taken)].body)
                taken.append(spill.pop())
    assert [fields(item) for item in taken] == [fields(item) for item in items]
    assert (spill.size_bytes, spill.messages, len(spill)) == (0, 0, 0)


def _spill_file(directory: Path) -> str:
    """The spill's file, unlinked: reachable only through this process's descriptors."""
    for fd in os.listdir("/proc/self/fd"):
        target = os.readlink(f"/proc/self/fd/{fd}") if fd.isdigit() else ""
        if target.startswith(str(directory)) and target.endswith("(deleted)"):
            return f"/proc/self/fd/{fd}"
    raise AssertionError(f"no unlinked spill file in {directory}")


def test_what_is_on_disk_is_unreadable_and_given_back_once_taken(tmp_path: Path):
    spill = Spill(64 * 1024 * 1024, str(tmp_path))
    for n in range(200):
        spill.append(kept(n, 4_000))
    assert os.listdir(tmp_path) == []  # unlinked from the start
    path = _spill_file(tmp_path)
    on_disk = Path(path).read_bytes()
    assert len(on_disk) >= 3 * CHUNK_BYTES
    assert SECRET not in on_disk
    assert b"sk-proj" not in on_disk
    while spill:
        spill.pop()
    assert os.path.getsize(path) == 0
    spill.close()


def test_spill_refuses_past_its_bound_but_never_a_control_item(tmp_path: Path):
    spill = Spill(100_000, str(tmp_path))
    accepted = 0
    while spill.append(kept(accepted, 3_000)):
        accepted += 1
    assert 25 <= accepted <= 33
    assert spill.append(Kept(wire.CLOSE, 0, 1, 0, 0.0, b"{}"), force=True)
    assert len(spill) == accepted + 1


def _relay(
    path: str, limit: int, spill_limit: int, tmp: Path, message_limit: int = 32 * 1024 * 1024
) -> tuple[addon.Relay, object]:
    relay = addon.Relay()
    relay.sender = Sender(path, limit, spill_limit, str(tmp), message_limit)
    assert relay.sender.connect()
    flow = tflow.twebsocketflow()
    relay.sessions[flow.id] = addon._Live(1)
    relay.sender.open(1, id="s1", raw=True)
    return relay, flow


def _catch_up(recorder: Recorder, sender: Sender) -> None:
    """The recorder commits everything it reads, until nothing is left on either side."""
    for _ in range(10_000):
        recorder.read()
        recorder.acknowledge(recorder.position)
        sender.read_acknowledgements()
        sender.flush()
        if not sender.unacknowledged_bytes and not sender.spilled_bytes:
            recorder.read()
            return
    raise AssertionError("the sender never emptied its spill")


def _burst(
    tmp_path: Path, sent: list[bytes], spill_limit: int, message_limit: int = 32 * 1024 * 1024
) -> tuple[socket.socket, Recorder, Sender]:
    """`sent` relayed at once to a recorder that acknowledges nothing yet (64 KiB in memory)."""
    path = str(tmp_path / "recorder.sock")
    server = listening(path)
    relay, flow = _relay(path, 64 * 1024, spill_limit, tmp_path, message_limit)
    recorder = Recorder(server)
    stream = b"".join(Frame(Opcode.TEXT, body).serialize(mask=True) for body in sent)
    relay_stream(relay, flow, FrameBoundaries(), stream)
    assert relay.sender is not None
    return server, recorder, relay.sender


def test_a_burst_past_the_memory_bound_waits_on_disk_and_is_all_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="handover.spill")
    sent = messages(3_000)
    _, recorder, sender = _burst(tmp_path, sent, 16 * 1024 * 1024)
    assert sender.dropped == 0
    assert sender.unacknowledged_bytes <= 64 * 1024
    assert sender.spilled_bytes > sum(map(len, sent)) // 2
    # The session ends while most of it waits on disk: its CLOSE must come after all of it.
    sender.close(1, ts=1.0, code=1000, reason="", closed_by="client")
    _catch_up(recorder, sender)
    items = [item for _, item in recorder.items]
    assert [body for _, body in parsed(items, RawStream(None))] == sent
    kinds = [item.kind for item in items]
    assert kinds[-1] == wire.CLOSE
    assert kinds.count(wire.CLOSE) == 1
    assert sender.drain(1.0)
    sender.shutdown()
    told = [record.getMessage() for record in caplog.records]
    assert told[0] == "recorder behind: hand-over past the memory bound waits on disk"
    assert re.fullmatch(r"recorder caught up: at most 0\.\d MiB waited on disk", told[1])
    assert len(told) == 2


def test_past_the_spill_bound_messages_are_dropped_and_counted(tmp_path: Path):
    sent = messages(3_000)
    _, recorder, sender = _burst(tmp_path, sent, 256 * 1024)
    sender.close(1, ts=1.0, code=1000, reason="", closed_by="client")
    _catch_up(recorder, sender)
    recorded = [body for _, body in parsed([i for _, i in recorder.items], RawStream(None))]
    assert 0 < sender.dropped < len(sent)
    assert len(recorded) + sender.dropped == len(sent)
    assert set(recorded) <= set(sent)
    sender.shutdown()


def test_a_recorder_that_dies_while_a_burst_waits_on_disk_costs_nothing(tmp_path: Path):
    sent = messages(3_000)
    server, first, sender = _burst(tmp_path, sent, 16 * 1024 * 1024)
    assert sender.spilled_bytes
    # It commits half of what it got (more comes off the disk), then dies before the rest.
    first.read()
    middle = first.items[len(first.items) // 2][0]
    first.acknowledge(middle)
    sender.read_acknowledgements()
    sender.flush()
    first.read()
    committed = parsed([item for end, item in first.items if end <= middle], RawStream(None))
    first.die()
    sender.read_acknowledgements()  # notices the end of the connection
    assert not sender.connected
    assert sender.spilled_bytes
    assert sender.connect()
    second = Recorder(server)
    sender.close(1, ts=2.0, code=1000, reason="bye", closed_by="client")
    _catch_up(second, sender)
    again = parsed([item for _, item in second.items], RawStream(None))
    assert sender.dropped == 0
    assert {seq for seq, _ in committed} | {seq for seq, _ in again} == set(range(len(sent)))
    assert all(sent[seq] == body for seq, body in committed + again)
    sender.shutdown()


def test_a_message_larger_than_the_relay_keeps_is_dropped_and_the_stream_goes_on(tmp_path: Path):
    # Kept until its end is committed, a message of a gigabyte would sit whole in the relay's
    # memory (and the recorder's frame parser): past the limit it is dropped and counted.
    giant = b'{"type":"input_audio_buffer.append","audio":"' + b"A" * 500_000 + b'"}'
    sent = [*messages(100), giant, *messages(100, start=100)]
    _, recorder, sender = _burst(tmp_path, sent, 16 * 1024 * 1024, message_limit=200_000)
    sender.close(1, ts=1.0, code=1000, reason="", closed_by="client")
    _catch_up(recorder, sender)
    recorded = parsed([item for _, item in recorder.items], RawStream(None))
    assert [body for _, body in recorded] == [body for body in sent if body is not giant]
    assert [seq for seq, _ in recorded] == [*range(100), *range(101, 201)]
    assert sender.dropped == 1
    sender.shutdown()
