"""The recorded Realtime API frames under tests/fixtures, as parsed lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Copies of shared/reference/fixtures.
FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures"


def fixture_lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES_DIR / name).read_text().splitlines() if line]
