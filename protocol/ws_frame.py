"""Where a WebSocket frame's payload starts and how long it is, from its header alone (RFC 6455
§5.2): the raw relay reads it to find frame and message boundaries (`proxy/frame_boundaries.py`),
the recorder to cut the frames it hands to websockets' codec (`recorder/frames.py`)."""

from __future__ import annotations


def frame_header(data: bytes, at: int) -> tuple[int, int, bool] | int:
    """(where the payload starts, its length, whether it is masked; the 4-byte mask ends where
    the payload starts) of the frame whose header begins at `at`; or, when `data` ends before the
    header does, how many bytes from `at` it needs."""
    size = len(data) - at
    if size < 2:
        return 2
    second = data[at + 1]
    length, start = second & 0x7F, at + 2
    if length >= 126:
        extra = 2 if length == 126 else 8
        if size < 2 + extra:
            return 2 + extra
        length = int.from_bytes(data[start : start + extra], "big")
        start += extra
    masked = bool(second & 0x80)
    if masked:
        if len(data) < start + 4:
            return start + 4 - at
        start += 4
    return start, length, masked
