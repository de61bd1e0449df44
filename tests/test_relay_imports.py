"""The module `mitmdump -s` loads keeps the recorder's dependencies out of every relay process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What only the recorder process needs: the relay only hands frames over.
RECORDER_ONLY = ("sqlalchemy", "prometheus_client", "storage.writer", "recorder")


def test_the_addon_module_loads_neither_the_store_nor_the_metrics_nor_the_recorder():
    script = "import json, sys, proxy.addon; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    assert "proxy.addon" in loaded
    unwanted = [
        name
        for name in loaded
        if any(name == root or name.startswith(root + ".") for root in RECORDER_ONLY)
    ]
    assert unwanted == []
