"""Every option of the proxy, declared once: name, type and default, check, help, where it applies.

From `PROXY_OPTIONS` are made the `rtrec proxy`/`rtrec up` flags and their `RTREC_*` environment
variables (`rtrec/settings.py`), the `rtrec_*` mitmproxy options of the addon and their checks
(`proxy/addon.py`), what the recorder process is started with (`handover/config.py`) and the
README's table of options. Nothing here imports mitmproxy, the CLI or the dashboard: all of them
import this.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from handover.db_url import DEFAULT_DB_URL
from handover.properties import metric_property_names, metric_property_values

#: The choices of an on/off option, and the words read as each.
SWITCH = ("off", "on")
_ON_WORDS = frozenset({"on", "1", "true", "yes"})
_OFF_WORDS = frozenset({"off", "0", "false", "no"})
#: What `--record` may say; the recorder process keeps each session as its relay said.
RECORD_MODES = ("full", "text", "metadata")

#: A check of a value already of the option's type: returns it (perhaps normalised) or raises
#: ValueError with a one-line message that names the value, never the option.
Check = Callable[[Any], Any]


def port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError(f"{value} is not a port (0-65535)")
    return value


def positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"{value} must be at least 1")
    return value


def non_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"{value} must be 0 or more")
    return value


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def upstream_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s):// or ws(s):// URL with a host")
    # mitmproxy's reverse mode speaks http(s) upstream and upgrades from there.
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme).geturl().rstrip("/")


def metric_properties(text: str) -> str:
    return ",".join(metric_property_names(text))


def metric_values(text: str) -> str:
    metric_property_values(text)
    return text


def readable_file(text: str) -> str:
    if text and not os.path.isfile(text):
        raise ValueError(f"file {text!r} not found")
    if text and not os.access(text, os.R_OK):
        raise ValueError(f"file {text!r} is not readable")
    return text


@dataclass(frozen=True)
class Option:
    """One option. `cli`: a flag of `rtrec proxy` and `rtrec up`; `addon`: the addon's mitmproxy
    option `rtrec_<dest>`; `recorder`: passed on to the recorder process."""

    name: str
    default: str | int
    help: str
    check: Check | None = None
    choices: tuple[str, ...] | None = None
    cli: bool = True
    addon: bool = False
    recorder: bool = False
    doc: str = ""  # the README's "meaning", where it says more than `help`
    doc_default: str = ""  # the README's "default", where the value itself says little

    @property
    def type(self) -> type[Any]:
        return type(self.default)

    @property
    def flag(self) -> str:
        return "--" + self.name

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def mitmproxy_name(self) -> str:
        return "rtrec_" + self.dest

    def env_var(self, prefix: str = "RTREC_") -> str:
        return prefix + self.dest.upper()

    def validate(self, value: Any) -> Any:
        """`value`, of the option's type, checked (choices aside); ValueError says what is wrong."""
        return self.check(value) if self.check is not None else value

    @property
    def switch(self) -> bool:
        """An on/off option: `--name` alone turns it on; 1/true/yes and 0/false/no are read too."""
        return self.choices == SWITCH

    def parse(self, text: str) -> Any:
        """The value written as `text` (a flag, a variable), checked (choices aside)."""
        if self.switch:
            word = text.strip().lower()
            return "on" if word in _ON_WORDS else "off" if word in _OFF_WORDS else text
        return self.validate(whole_number(text) if self.type is int else text)


DB = Option(
    "db",
    DEFAULT_DB_URL,
    "SQLite file path or SQLAlchemy URL (postgresql+psycopg://… to share)",
    addon=True,
    recorder=True,
    doc="a SQLite file path (`rtrec-demo.db`, `/tmp/a.db`) or any SQLAlchemy URL; "
    "`postgresql+psycopg://…` for a shared store",
)

PROXY_OPTIONS = (
    Option("listen-host", "127.0.0.1", "where clients connect"),
    Option("listen-port", 8080, "port clients connect to", port),
    Option(
        "upstream",
        "https://api.openai.com",
        "reverse-proxy target (Azure: https://<res>.openai.azure.com)",
        upstream_url,
        doc="reverse-proxy target (Azure: `https://<res>.openai.azure.com`; "
        "a local server: `http://127.0.0.1:<port>`)",
    ),
    Option(
        "mode",
        "reverse",
        "reverse, or regular for HTTPS_PROXY-style clients",
        choices=("reverse", "regular"),
        doc="`reverse`, or `regular` for HTTPS_PROXY-style clients that trust the mitmproxy CA "
        "(`~/.mitmproxy/mitmproxy-ca-cert.pem`)",
    ),
    DB,
    Option(
        "metrics-host",
        "127.0.0.1",
        "where /metrics and /healthz listen",
        addon=True,
        recorder=True,
        doc="where `/metrics` and `/healthz` listen",
    ),
    Option(
        "metrics-port",
        9464,
        "Prometheus endpoint port; 0 turns it off",
        port,
        addon=True,
        recorder=True,
        doc="metrics port; `0` turns the endpoint off",
    ),
    Option(
        "record",
        "full",
        "full: events, text, audio; text: no audio bytes; metadata: no content at all",
        choices=RECORD_MODES,
        addon=True,  # the relay stamps each session with it
        doc="`full`: events, text and audio; `text`: no audio bytes; `metadata`: no content at "
        "all (types, sizes, ids, usage, rate limits, latency)",
    ),
    Option(
        "pricing",
        "",
        "TOML file that overrides or adds model prices",
        readable_file,
        addon=True,
        recorder=True,
        doc="TOML file that overrides or adds model prices (USD per 1M tokens)",
        doc_default="built-in table",
    ),
    Option(
        "retention-days",
        0,
        "delete sessions (calls, failed connection attempts) older than this, hourly; 0 keeps all",
        non_negative,
        addon=True,
        recorder=True,
        doc=(
            "delete sessions and failed connection attempts older than this, hourly, and calls "
            "as old that no remaining session watches; `0` keeps everything"
        ),
    ),
    Option(
        "queue-size",
        100_000,
        "records buffered before the recorder drops",
        positive,
        addon=True,
        recorder=True,
        doc=(
            "messages the recorder buffers before it drops (and counts) them; it also stops "
            "taking messages once 64 MiB of them (as relayed) wait, whichever comes first"
        ),
    ),
    Option(
        "flush-interval-ms",
        250,
        "longest a record waits before its batch is committed",
        positive,
        addon=True,
        recorder=True,
        doc="the longest a record waits before its batch is committed: what SIGKILL can lose",
    ),
    Option(
        "spill-mb",
        1024,
        "MiB of relayed traffic each relay keeps on disk while the recorder is behind; 0: none",
        non_negative,
        addon=True,
        doc="while the recorder is behind (a burst, a restart), each relay process keeps up to "
        "8 MiB it handed over in memory until the recorder has committed it, then up to this "
        "many MiB more in an unlinked, encrypted temporary file (in `TMPDIR`), sent on as the "
        "recorder catches up; past both, messages are dropped and counted "
        "(`handover_full`). `0`: nothing on disk",
    ),
    Option(
        "redact-pii",
        "off",
        "on: card numbers, phone numbers, e-mail addresses, IBANs and national ids become "
        "[CARD], [PHONE], [EMAIL], [IBAN], [ID] before anything is stored",
        choices=SWITCH,
        addon=True,
        recorder=True,
        doc="`on` (or the flag alone): card numbers (Luhn-checked), phone numbers, e-mail "
        "addresses, IBANs and national ids (US SSN, Spanish DNI, Italian codice fiscale, German"
        " IdNr) in transcripts, text, function-call arguments, tool output, properties and "
        "close reasons become `[CARD]`, `[PHONE]`, `[EMAIL]`, `[IBAN]`, `[ID]` in the recorder,"
        " before anything is stored, logged, exported or made a metric label (see [Personal "
        "data](#personal-data))",
    ),
    Option(
        "metric-properties",
        "",
        "session properties (comma-separated) that label the cost and token counters",
        metric_properties,
        addon=True,
        recorder=True,
        doc="session properties (comma-separated, e.g. `customer,env`) that become labels of "
        "`openai_realtime_cost_usd_total`, `openai_realtime_tokens_total` and "
        "`openai_realtime_transcription_tokens_total`; their values are bounded as "
        "`--metric-property-values` says, and a session without the property has it empty",
    ),
    Option(
        "metric-property-values",
        "",
        "the values each metric property may take (customer=acme,globex;env=prod, or a file of "
        "such lines); anything else is other",
        metric_values,
        addon=True,
        recorder=True,
        doc="the values a property label may take, `customer=acme,globex;env=prod` or a file "
        "with one `name=value,value` line per property; any other value is labelled `other`, "
        "and a property named here is a label even if `--metric-properties` leaves it out. "
        "Without a list a property keeps the first 50 values seen (64 characters at most), "
        "seeded from the database at start; a value `other` sent by a client is labelled `=other`",
    ),
    Option(
        "observe-calls",
        "off",
        "on: attach a sideband to every call created or accepted through rtrec and record it",
        choices=SWITCH,
        addon=True,
        recorder=True,
        doc="`on` (or the flag alone): for every WebRTC or SIP call created or accepted through "
        "rtrec, the recorder attaches its own sideband upstream (key from "
        "`RTREC_OBSERVER_API_KEY`) and records the call's events as a session linked to the "
        "call; it reattaches a dropped sideband and stops when the call ends",
    ),
    Option(
        "raw-relay",
        "on",
        "on: after the upgrade, relay WebSocket bytes as they arrive and parse frames in the "
        "recorder; off: mitmproxy's WebSocket layer parses every message (slower)",
        choices=SWITCH,
        addon=True,
        doc="`on`: once the upstream answers 101, rtrec's own layer forwards each direction's "
        "bytes as they arrive, unchanged, and the recorder process parses the frames (masking, "
        "fragments, permessage-deflate); `off`: mitmproxy's WebSocket layer parses and "
        "re-encodes every message and runs a hook for each, at several times the relay's CPU. "
        "Stock `mitmdump -s proxy/addon.py` always takes mitmproxy's layer",
    ),
    Option(
        "workers",
        1,
        "relay processes sharing the listen port (SO_REUSEPORT), all feeding one recorder",
        positive,
        doc="relay processes sharing the listen port (`SO_REUSEPORT`; Linux and the BSDs), all "
        "feeding one recorder process",
    ),
    Option(
        "recorder-socket",
        "",
        "hand frames to the recorder process listening here; empty starts one of our own",
        cli=False,  # `rtrec proxy` starts the recorder process and passes its socket itself
        addon=True,
    ),
)

ADDON_OPTIONS = tuple(option for option in PROXY_OPTIONS if option.addon)
CLI_OPTIONS = tuple(option for option in PROXY_OPTIONS if option.cli)
RECORDER_OPTIONS = tuple(option for option in PROXY_OPTIONS if option.recorder)
LISTEN_PORT = next(option for option in PROXY_OPTIONS if option.name == "listen-port")
