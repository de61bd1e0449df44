"""Rebuilds a recorded session's conversation (turns, tool calls, audio spans) from its events.

Pure functions over the rows `storage.browse` returns: no Streamlit, no database.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import protocol

STATUS_LABELS = {
    ("cancelled", "turn_detected"): "barge-in (turn_detected)",
    ("cancelled", "client_cancelled"): "cancelled by the client",
}

Turn = dict[str, Any]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def content_text(item: dict[str, Any]) -> str | None:
    """The text or transcript of an item's content parts, joined; None when there is none."""
    parts = item.get("content")
    texts = [
        part.get("text") or part.get("transcript")
        for part in (parts if isinstance(parts, list) else [])
        if isinstance(part, dict)
    ]
    joined = " ".join(t for t in texts if isinstance(t, str) and t)
    return joined or None


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def tool_call(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": item.get("name"),
        "call_id": item.get("call_id"),
        "arguments": _arguments(item.get("arguments", "")),
    }


def status_label(status: str | None, reason: str | None) -> str:
    """What a response's status means for a reader: barge-in, cancelled, failed, in progress."""
    if status is None:
        return "in progress"
    return STATUS_LABELS.get((status, reason or ""), f"{status} ({reason})" if reason else status)


def _new_turn(role: str, event: dict[str, Any], **fields: Any) -> Turn:
    return {
        "role": role,
        "kind": "message",
        "seq": event["seq"],
        "ts": event["ts"],
        "item_id": event.get("item_id"),
        "response_id": event.get("response_id"),
        "text": None,
        "tool_calls": [],
        "audio": None,
    } | fields


def _item_turn(event: dict[str, Any]) -> Turn | None:
    item = _dict(_dict(event.get("payload")).get("item"))
    kind = item.get("type") or "message"
    if kind == "function_call":
        return _new_turn("tool", event, kind="function_call", tool_calls=[tool_call(item)])
    if kind == "function_call_output":
        output = {"call_id": item.get("call_id"), "output": _arguments(item.get("output", ""))}
        return _new_turn("tool", event, kind="function_call_output", tool_output=output)
    role = item.get("role") or "user"
    return _new_turn(role, event, text=content_text(item))


class _Builder:
    """Walks the conversation events once, in `seq` order."""

    def __init__(self, events: Sequence[dict[str, Any]]) -> None:
        self.events = events
        self.turns: list[Turn] = []
        self.by_item: dict[str, Turn] = {}
        self.by_response: dict[str, Turn] = {}
        # Items a response produced are shown inside that response's turn, not as their own.
        self.response_items = {
            e["item_id"]
            for e in events
            if e["type"] in protocol.OUTPUT_ITEM_EVENTS and e.get("item_id")
        }
        self.audio_commits: list[tuple[int, str | None]] = []

    def build(self) -> list[Turn]:
        for event in self.events:
            self._on(event)
        return self.turns

    def _add(self, turn: Turn) -> None:
        self.turns.append(turn)
        if turn["item_id"] and turn["role"] != "assistant":
            self.by_item[turn["item_id"]] = turn
        if turn["response_id"] and turn["role"] == "assistant":
            self.by_response[turn["response_id"]] = turn

    def _on(self, event: dict[str, Any]) -> None:
        handler = HANDLERS.get(event["type"])
        if handler is not None:
            handler(self, event)

    def _on_item(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if item_id not in self.by_item and item_id not in self.response_items:
            turn = _item_turn(event)
            if turn is not None:
                self._add(turn)

    def _on_commit(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        self.audio_commits.append((event["seq"], item_id))
        if item_id not in self.by_item:
            self._add(_new_turn("user", event, kind="audio", response_id=None))

    def _on_clear(self, event: dict[str, Any]) -> None:
        self.audio_commits.append((event["seq"], None))

    def _on_response(self, event: dict[str, Any]) -> None:
        self._add(_new_turn("assistant", event, item_id=None))

    def _on_output_item_added(self, event: dict[str, Any]) -> None:
        """Nothing to add: `response_items` already holds the item, so no turn of its own."""

    def _on_transcript(self, event: dict[str, Any]) -> None:
        turn = self.by_item.get(event.get("item_id") or "")
        transcript = _dict(event.get("payload")).get("transcript")
        if turn is not None and isinstance(transcript, str):
            turn["text"] = transcript

    def _on_error(self, event: dict[str, Any]) -> None:
        error = _dict(_dict(event.get("payload")).get("error"))
        self._add(_new_turn("error", event, kind="error", error=error))

    def _on_output(self, event: dict[str, Any]) -> None:
        turn = self.by_response.get(event.get("response_id") or "")
        payload = _dict(event.get("payload"))
        if turn is None or not payload:
            return
        if event["type"] in protocol.OUTPUT_TEXT_DONE:
            text = payload.get(protocol.OUTPUT_TEXT_DONE[event["type"]])
            texts = turn.setdefault("output_texts", {})
            if isinstance(text, str) and text:
                texts[event.get("item_id")] = text
            return
        item = _dict(payload.get("item"))
        if item.get("type") == "function_call":
            turn["tool_calls"].append(tool_call(item))
        elif item.get("type") == "message" and (text := content_text(item)):
            turn.setdefault("output_texts", {})[item.get("id")] = text


# What the builder does with each event type: exactly `protocol.CONVERSATION_EVENT_TYPES`, the
# events storage loads for it (tests/test_protocol_literals.py holds the two together).
HANDLERS: dict[str, Callable[[_Builder, dict[str, Any]], None]] = {
    **dict.fromkeys(protocol.ITEM_ADDED, _Builder._on_item),
    protocol.AUDIO_COMMITTED: _Builder._on_commit,
    protocol.AUDIO_CLEARED: _Builder._on_clear,
    protocol.RESPONSE_CREATED: _Builder._on_response,
    protocol.OUTPUT_ITEM_ADDED: _Builder._on_output_item_added,
    protocol.OUTPUT_ITEM_DONE: _Builder._on_output,
    **dict.fromkeys(protocol.OUTPUT_TEXT_DONE, _Builder._on_output),
    protocol.TRANSCRIPTION_COMPLETED: _Builder._on_transcript,
    protocol.ERROR: _Builder._on_error,
}


def _attach_responses(turns: list[Turn], responses: Iterable[dict[str, Any]]) -> None:
    by_id = {r["response_id"]: r for r in responses}
    for turn in turns:
        if turn["role"] != "assistant":
            continue
        texts = turn.pop("output_texts", {})
        turn["text"] = " ".join(texts.values()) or None
        response = by_id.get(turn["response_id"], {})
        turn["usage"] = response
        turn["status"] = status_label(response.get("status"), response.get("status_reason"))


def _attach_transcripts(turns: list[Turn], transcriptions: Iterable[dict[str, Any]]) -> None:
    by_item = {t["item_id"]: t for t in transcriptions if t.get("item_id")}
    for turn in turns:
        found = by_item.get(turn["item_id"]) if turn["role"] == "user" else None
        if found is not None:
            turn["transcription"] = found
            turn["text"] = found.get("transcript") or turn["text"]


def _user_audio_spans(
    commits: Sequence[tuple[int, str | None]], audio: Sequence[dict[str, Any]]
) -> dict[str, tuple[int, int]]:
    """The client chunks each committed item holds: those after the previous commit or clear."""
    spans: dict[str, tuple[int, int]] = {}
    client = [chunk["seq"] for chunk in audio if chunk["direction"] == "client"]
    start = 0
    for seq, item_id in commits:
        end = bisect.bisect_right(client, seq, lo=start)
        if item_id and end > start:
            spans[item_id] = (client[start], client[end - 1])
        start = end
    return spans


def _attach_audio(
    turns: list[Turn],
    commits: Sequence[tuple[int, str | None]],
    audio: Sequence[dict[str, Any]],
) -> None:
    spans = _user_audio_spans(commits, audio)
    assistant: dict[str, list[int]] = {}
    for chunk in audio:
        if chunk["direction"] == "server" and chunk["response_id"]:
            assistant.setdefault(chunk["response_id"], []).append(chunk["seq"])
    for turn in turns:
        if turn["role"] == "user" and turn["item_id"] in spans:
            first, last = spans[turn["item_id"]]
            turn["audio"] = {"direction": "client", "first_seq": first, "last_seq": last}
        elif turn["role"] == "assistant" and turn["response_id"] in assistant:
            seqs = assistant[turn["response_id"]]
            turn["audio"] = {
                "direction": "server",
                "first_seq": seqs[0],
                "last_seq": seqs[-1],
                "response_id": turn["response_id"],
            }


def build_turns(
    events: Sequence[dict[str, Any]],
    responses: Iterable[dict[str, Any]],
    transcriptions: Iterable[dict[str, Any]],
    audio: Sequence[dict[str, Any]],
) -> list[Turn]:
    """The session's turns in time order, each with its text, tool calls, usage and audio span."""
    builder = _Builder(events)
    turns = builder.build()
    _attach_responses(turns, responses)
    _attach_transcripts(turns, transcriptions)
    _attach_audio(turns, builder.audio_commits, audio)
    number_turns(turns)
    return turns


def number_turns(turns: Sequence[Turn]) -> None:
    """Turn N is the N-th response with the input that led to it, as the header counts turns.

    The user and tool messages before a response share its number; errors get none, and input
    no response has answered yet gets none either (`number` is None).
    """
    answers = sum(1 for turn in turns if turn["role"] == "assistant")
    before = answers  # walking backwards: how many responses come before this turn
    for turn in reversed(turns):
        if turn["role"] == "assistant":
            turn["number"] = before
            before -= 1
        elif turn["role"] == "error" or before == answers:
            turn["number"] = None
        else:
            turn["number"] = before + 1


def error_event_ids(turns: Iterable[Turn]) -> list[str]:
    """The client `event_id`s the session's errors name as their cause."""
    ids = (turn.get("error", {}).get("event_id") for turn in turns if turn["role"] == "error")
    return sorted({i for i in ids if isinstance(i, str) and i})


def attach_causes(turns: Iterable[Turn], client_events: Sequence[dict[str, Any]]) -> None:
    """Sets each error turn's `cause`: the latest client event before it with the named id."""
    for turn in turns:
        if turn["role"] != "error":
            continue
        named = turn.get("error", {}).get("event_id")
        earlier = [
            event
            for event in client_events
            if event["event_id"] == named and event["seq"] < turn["seq"]
        ]
        turn["cause"] = earlier[-1] if earlier else None
