"""Which APIs rtrec records: by upgrade path, their event names as metric labels, and a bounded
shape for the WebSocket paths it does not record."""

from __future__ import annotations

import re

from protocol import events, live, readers

# A path segment kept as it is in a shape: a lowercase word or an API version; anything else
# (ids, keys, numbers) becomes `{id}`, so neither a secret nor a new series comes from a path.
_WORD = re.compile(r"^(?:[a-z][a-z_.-]{0,30}|v\d{1,2})$")
SHAPE_SEGMENTS = 5
API_REALTIME_GA, API_REALTIME_BETA, API_LIVE = "ga", "beta", "live"


def recorded_api(path: str, beta: bool) -> str | None:
    """The `api` a WebSocket to `path` is recorded as (`ga`, `beta`, `live`), None if it is not."""
    if live.is_live_path(path):
        return API_LIVE
    if readers.is_realtime_path(path):
        return API_REALTIME_BETA if beta else API_REALTIME_GA
    return None


def path_shape(path: str) -> str:
    """`path` without its query, ids replaced by `{id}`, at most `SHAPE_SEGMENTS` segments."""
    route = path.partition("#")[0].partition("?")[0]
    parts = [part for part in route.split("/") if part]
    shape = [part if _WORD.match(part) else "{id}" for part in parts[:SHAPE_SEGMENTS]]
    if len(parts) > SHAPE_SEGMENTS:
        shape.append("…")
    return "/" + "/".join(shape)


def metric_event_type(event_type: str) -> str:
    """A bounded `type` label for an event of any recorded API: known names, else `other`."""
    if event_type in live.EVENT_TYPES:
        return event_type
    return events.metric_event_type(event_type)
