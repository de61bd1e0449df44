"""Database URLs as the user may write them: a SQLAlchemy URL, or a bare path to a SQLite file.

Pure string work (no SQLAlchemy), so the command line can read `--db` without loading a driver.
"""

from __future__ import annotations

import re

DEFAULT_DB_URL = "sqlite:///rtrec.db"
# `dialect+driver:` as RFC 3986 spells a scheme: anything that has one is a URL, the rest a path.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def database_url(text: str) -> str:
    """`text` as a SQLAlchemy URL: `rtrec-demo.db`, `./x.db` and `/tmp/a.db` name SQLite files."""
    if not text or _SCHEME.match(text):
        return text
    return f"sqlite:///{text}"
