"""Runs the dashboard's first page once over Streamlit's own websocket, as a browser's first visit
does, so that `rtrec up` announces a server whose first script run is already paid for.

A server's first run of a page costs several times what later runs do (Streamlit's lazy imports,
compiled queries, the loaders' first reads); the first browser would wait for all of it, while
Streamlit's frontend competes for the same cores.
"""

from __future__ import annotations

import time

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect
from websockets.typing import Subprotocol

STREAM_PATH = "/_stcore/stream"
# What Streamlit's frontend asks for; the entries after it would carry its tokens.
SUBPROTOCOL = Subprotocol("streamlit")


def run_first_page(base_url: str, timeout_s: float = 60) -> bool:
    """Runs the page `base_url` opens on until its script finishes (after any rerun it asks
    for); True if it finished normally (an exception the page shows counts as normal).

    Raises `TimeoutError` if it has not within `timeout_s`, `OSError` or a `websockets` error
    if the server cannot be reached or hangs up.
    """
    deadline = time.monotonic() + timeout_s
    url = "ws" + base_url.removeprefix("http").rstrip("/") + STREAM_PATH
    first_visit = BackMsg()
    first_visit.rerun_script.SetInParent()  # no query, no widget state: the default page, fresh
    with connect(url, subprotocols=[SUBPROTOCOL], max_size=None, open_timeout=timeout_s) as stream:
        stream.send(first_visit.SerializeToString())
        while True:
            left_s = max(0.0, deadline - time.monotonic())
            message = ForwardMsg.FromString(stream.recv(timeout=left_s, decode=False))
            if message.WhichOneof("type") != "script_finished":
                continue
            if message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                return bool(message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY)
