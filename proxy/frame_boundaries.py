"""Where the frames of one direction of a WebSocket stream begin and end, from their headers only.

The raw relay (`proxy/raw_relay.py`) forwards bytes as they arrive and needs three things from
them: where a frame ends (to put a close frame of its own between frames at shutdown), where a
message starts (to hand the recorder a stream it can parse again after bytes were dropped), and
the close frame that ends a connection (its code and reason). A header is 2-14 bytes (RFC 6455
§5.2); payloads are skipped unread, except a close frame's (at most 125 bytes, once).
"""

from __future__ import annotations

from wsproto.frame_protocol import XorMaskerSimple

from protocol.ws_frame import frame_header

CLOSE_OPCODE = 0x8
NO_STATUS_RECEIVED = 1005  # RFC 6455 §7.1.5: a close frame without a code


class FrameBoundaries:
    """Reads frame headers off one direction's stream, chunk by chunk, as it is relayed."""

    __slots__ = (
        "_close_mask",
        "_close_payload",
        "_final",
        "_fragmented",
        "_header",
        "_remaining",
        "close",
        "ended",
        "ended_before_start",
        "message_start",
    )

    def __init__(self) -> None:
        self._remaining = 0  # payload bytes of the current frame still to come
        self._header = b""  # the start of a header cut by the end of the last chunk
        self._fragmented = False  # inside a data message whose last frame has not begun
        self._final = False  # the frame under way is the last of a data message
        self._close_payload: bytearray | None = None  # collecting a close frame's payload
        self._close_mask = b""
        #: (code, reason) of the first close frame seen, once it is whole.
        self.close: tuple[int, str] | None = None
        # Of the last chunk fed: data messages whose last frame ended in it; the offset of its
        # first frame that starts a message (or is a control frame outside a fragmented
        # message), or None; how many messages ended before that offset.
        self.ended = 0
        self.message_start: int | None = None
        self.ended_before_start = 0

    @property
    def between_frames(self) -> bool:
        """No frame of this direction is partly relayed."""
        return self._remaining == 0 and not self._header

    @property
    def between_messages(self) -> bool:
        """No message of this direction is partly relayed: a recorder could start here."""
        return self._remaining == 0 and not self._header and not self._fragmented

    def feed(self, chunk: bytes, stop_between_frames: bool = False) -> int:
        """Read the headers in `chunk`; returns how many of its bytes were read: all of them, or
        with `stop_between_frames` only up to the end of the frame under way."""
        self.ended, self.message_start, self.ended_before_start = 0, None, 0
        prefix = len(self._header)
        data = self._header + chunk if prefix else chunk
        self._header = b""
        pos, size = self._skip_payload(data, 0), len(data)
        while pos < size:
            if stop_between_frames and pos > prefix and self._remaining == 0:
                return pos - prefix
            header_end = self._read_header(data, pos, prefix)
            if header_end < 0:
                self._header = data[pos:]
                break
            pos = self._skip_payload(data, header_end)
        return size - prefix

    def _read_header(self, data: bytes, pos: int, prefix: int) -> int:
        """The offset just past the header at `pos`, or -1 if the chunk cuts it."""
        header = frame_header(data, pos)
        if isinstance(header, int):
            return -1
        mask_end, length, masked = header
        opcode, fin = data[pos] & 0x0F, data[pos] & 0x80
        starts = opcode in (0x1, 0x2) or (opcode >= 0x8 and not self._fragmented)
        if starts and pos >= prefix and self.message_start is None:
            self.message_start = pos - prefix
            self.ended_before_start = self.ended
        if opcode < 0x8:  # data frame: text, binary, continuation
            self._fragmented = not fin
            self._final = bool(fin)
        elif opcode == CLOSE_OPCODE and self.close is None:
            self._close_payload = bytearray()
            self._close_mask = data[mask_end - 4 : mask_end] if masked else b""
        self._remaining = length
        if length == 0:
            self._frame_done()
        return mask_end

    def _skip_payload(self, data: bytes, pos: int) -> int:
        take = min(self._remaining, len(data) - pos)
        if take <= 0:
            return pos
        if self._close_payload is not None:
            self._close_payload += data[pos : pos + take]
        self._remaining -= take
        if self._remaining == 0:
            self._frame_done()
        return pos + take

    def _frame_done(self) -> None:
        if self._final:
            self._final = False
            self.ended += 1
        if self._close_payload is not None:
            self._close_done()

    def _close_done(self) -> None:
        payload = bytes(self._close_payload or b"")
        if self._close_mask:
            payload = bytes(XorMaskerSimple(self._close_mask).process(bytearray(payload)))
        self._close_payload, self._close_mask = None, b""
        if len(payload) < 2:
            self.close = (NO_STATUS_RECEIVED, "")
        else:
            reason = payload[2:].decode("utf-8", "replace")
            self.close = (int.from_bytes(payload[:2], "big"), reason)
