"""Optional password in front of every page: set `RTREC_DASHBOARD_PASSWORD` to require it.

Recordings hold transcripts and audio; a dashboard reachable beyond loopback should ask first.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections import deque

import streamlit as st

PASSWORD_ENV = "RTREC_DASHBOARD_PASSWORD"  # noqa: S105 (a variable's name, not a password)
SIGNED_IN = "rtrec_signed_in"
CLIENT_KEY = "rtrec_client"
# A guesser gets this many wrong passwords per window, per browser session and per address.
MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0


class FailedAttempts:
    """Wrong passwords by client (browser session, address), in a sliding window."""

    def __init__(self, limit: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # every browser session runs in its own thread

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def wait_s(self, clients: list[str], now: float) -> float:
        """Seconds before any of `clients` may try again; 0 when they may now."""
        with self._lock:
            waits = [
                failures[0] + self.window_s - now
                for failures in (self._recent(client, now) for client in clients)
                if len(failures) >= self.limit
            ]
        return max(waits, default=0.0)

    def failed(self, clients: list[str], now: float) -> None:
        with self._lock:
            for client in clients:
                self._recent(client, now).append(now)


@st.cache_resource
def failed_attempts() -> FailedAttempts:
    """One record of wrong passwords for every browser session of this server."""
    return FailedAttempts()


def _clients() -> list[str]:
    """Who is trying: this browser session, and its address when Streamlit knows it."""
    session = st.session_state.setdefault(CLIENT_KEY, os.urandom(8).hex())
    address = st.context.ip_address
    return [f"session:{session}"] + ([f"address:{address}"] if address else [])


def signed_in() -> bool:
    """True when no password is set or this browser session gave it; else shows the form."""
    expected = os.environ.get(PASSWORD_ENV, "")
    if not expected or st.session_state.get(SIGNED_IN):
        return True
    st.title("rtrec dashboard")
    with st.form("sign_in"):
        typed = st.text_input("Password", type="password", key="rtrec_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        _check(typed, expected)
    return False


def _check(typed: str, expected: str) -> None:
    attempts, clients, now = failed_attempts(), _clients(), time.monotonic()
    wait_s = attempts.wait_s(clients, now)
    if wait_s > 0:  # refused before comparing: a right guess now tells nothing either
        st.error(f"Too many wrong passwords: try again in {wait_s:.0f} s.")
        return
    # Constant-time comparison: the time taken says nothing about how much of it matched.
    if hmac.compare_digest(typed.encode(), expected.encode()):
        st.session_state[SIGNED_IN] = True
        del st.session_state["rtrec_password"]
        st.rerun()
    attempts.failed(clients, now)
    st.error("Wrong password.")
