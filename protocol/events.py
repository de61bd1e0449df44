"""Realtime event-type names, the sets the product reads them in, and beta<->GA aliases.

No other product module spells an event type: a rename of the API is one change here.
"""

from __future__ import annotations

# What `readers.parse_frame` calls a frame that has no event type.
BINARY = "binary"
INVALID = "invalid"

# Client events.
SESSION_UPDATE = "session.update"
AUDIO_APPEND = "input_audio_buffer.append"
ITEM_CREATE = "conversation.item.create"
RESPONSE_CANCEL = "response.cancel"

# Server events.
ERROR = "error"
SESSION_CREATED = "session.created"
SESSION_UPDATED = "session.updated"
AUDIO_COMMITTED = "input_audio_buffer.committed"
AUDIO_CLEARED = "input_audio_buffer.cleared"
SPEECH_STOPPED = "input_audio_buffer.speech_stopped"
TRANSCRIPTION_COMPLETED = "conversation.item.input_audio_transcription.completed"
RESPONSE_CREATED = "response.created"
RESPONSE_DONE = "response.done"
OUTPUT_ITEM_ADDED = "response.output_item.added"
OUTPUT_ITEM_DONE = "response.output_item.done"
OUTPUT_ITEM_EVENTS = (OUTPUT_ITEM_ADDED, OUTPUT_ITEM_DONE)
RATE_LIMITS_UPDATED = "rate_limits.updated"

# The beta name of each GA event that the interfaces spell differently
# (docs/realtime-api.md#event-names).
BETA_TO_GA = {
    "conversation.item.created": "conversation.item.added",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
}


def with_beta(ga_type: str) -> tuple[str, ...]:
    """A GA event type followed by its beta name(s), for matching traffic of either interface."""
    return (ga_type, *(beta for beta, ga in BETA_TO_GA.items() if ga == ga_type))


def ga_type(event_type: str) -> str:
    """The GA name of an event type (itself when beta and GA spell it alike)."""
    return BETA_TO_GA.get(event_type, event_type)


# Where the server announces a conversation item.
ITEM_ADDED = with_beta("conversation.item.added")
AUDIO_DELTAS = frozenset(with_beta("response.output_audio.delta"))
TEXT_DELTAS = frozenset(
    with_beta("response.output_text.delta") + with_beta("response.output_audio_transcript.delta")
)
# Where an answer's final text lives: event type -> the field holding it.
OUTPUT_TEXT_DONE = {
    **dict.fromkeys(with_beta("response.output_audio_transcript.done"), "transcript"),
    **dict.fromkeys(with_beta("response.output_text.done"), "text"),
}
SESSION_STATE_EVENTS = frozenset(
    {
        SESSION_CREATED,
        SESSION_UPDATED,
        "transcription_session.created",
        "transcription_session.updated",
    }
)
SESSION_UPDATES = frozenset({SESSION_UPDATE, "transcription_session.update"})
# Events whose `error` says what went wrong (failed responses carry it in status_details).
ERROR_EVENTS = frozenset({ERROR, "conversation.item.input_audio_transcription.failed"})

# What the conversation view is rebuilt from (`analysis.conversation` handles exactly these):
# no deltas, no audio appends.
CONVERSATION_EVENT_TYPES = frozenset(
    {
        *ITEM_ADDED,
        AUDIO_COMMITTED,
        AUDIO_CLEARED,
        TRANSCRIPTION_COMPLETED,
        RESPONSE_CREATED,
        *OUTPUT_ITEM_EVENTS,
        ERROR,
        *OUTPUT_TEXT_DONE,
    }
)
# The server events a comparison of two sessions reads: each answer's final output, every error.
DIFF_EVENT_TYPES = (RESPONSE_DONE, ERROR)
# The server events a replayed client may have waited for before its next event.
REPLAY_BARRIERS = (
    SESSION_CREATED,
    SESSION_UPDATED,
    AUDIO_COMMITTED,
    TRANSCRIPTION_COMPLETED,
    RESPONSE_CREATED,
    RESPONSE_DONE,
)


# GPT-Live's audio upload (client) and its reflection to sidebands (server).
LIVE_AUDIO_APPEND_SUFFIX = ".input_audio.append"


def is_streamed_chunk(event_type: str) -> bool:
    """True for the many small events of a stream (deltas, audio appends of GA, beta and
    GPT-Live's `session.input_audio.append`) that a view folds into one row."""
    return event_type.endswith((".delta", AUDIO_APPEND, LIVE_AUDIO_APPEND_SUFFIX))


# Every event name of both interfaces (docs/realtime-api.md#event-names); anything else is
# `other` in metric labels.
KNOWN_EVENT_TYPES = frozenset(
    {
        # client
        "session.update",
        "transcription_session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
        "response.cancel",
        "session.close",
        # server
        "error",
        "session.created",
        "session.updated",
        "session.closed",
        "transcription_session.created",
        "transcription_session.updated",
        "conversation.created",
        "conversation.item.created",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "conversation.item.deleted",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.dtmf_event_received",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "response.created",
        "response.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.text.delta",
        "response.text.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.audio.delta",
        "response.audio.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "rate_limits.updated",
        "session.input_transcript.delta",
        "session.output_transcript.delta",
        "session.output_audio.delta",
    }
)


def metric_event_type(event_type: str) -> str:
    """A bounded label value: known event types, `binary`, `invalid`, else `other`."""
    if event_type in KNOWN_EVENT_TYPES or event_type in (BINARY, INVALID):
        return event_type
    return "other"
