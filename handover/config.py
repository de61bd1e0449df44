"""What the relay starts the recorder process with, and the few constants both processes spell."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from socket import gethostname
from typing import Any

from handover.options import RECORDER_OPTIONS

#: The program the relay launches: `python -m recorder.main …`.
RECORDER_MODULE = "recorder.main"
#: What checks a database URL for the relay, which does not load SQLAlchemy.
DB_CHECK_MODULE = "recorder.check_db"
# The close reason of a session the proxy itself ended (stored, and sent with close 1001).
SHUTDOWN_REASON = "proxy shut down"


def socket_path() -> str:
    """A fresh private directory for the hand-over socket (removed by `RecorderProcess.stop`)."""
    return str(Path(tempfile.mkdtemp(prefix="rtrec-")) / "recorder.sock")


@dataclass(frozen=True)
class RecorderConfig:
    """`RECORDER_OPTIONS` (tests/test_options.py checks the fields), and what the relay adds."""

    socket: str
    db: str
    metrics_host: str
    metrics_port: int
    pricing: str
    retention_days: int
    queue_size: int
    flush_interval_ms: int
    redact_pii: str  # `on`: personal data redacted (recorder/pii_redaction.py)
    metric_properties: str  # comma-separated allow-list of property labels
    metric_property_values: str  # allowed values per property label, or a file of them
    observe_calls: str  # on | off
    proxy_id: str = ""  # host:listen port; empty: sessions are not claimed, orphans not closed
    restarts: int = 0  # how often the relay had to start this recorder again

    @classmethod
    def of(cls, setting: Callable[[str], Any], socket: str, listen_port: int) -> RecorderConfig:
        """From the proxy's settings: `setting(dest)` of each of `RECORDER_OPTIONS`."""
        values = {option.dest: setting(option.dest) for option in RECORDER_OPTIONS}
        return cls(socket=socket, proxy_id=f"{gethostname()}:{listen_port}", **values)

    def command(self) -> list[str]:
        """The command line that runs a recorder process with this configuration."""
        args = [sys.executable, "-m", RECORDER_MODULE]
        for name, value in vars(self).items():
            args += ["--" + name.replace("_", "-"), str(value)]
        return args
