"""Sessions a proxy left open when it died: closed by the same proxy at its next start."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, update

from storage import models

ORPHAN_REASON = "not closed: the proxy that recorded it stopped without closing it"


def close_orphans(engine: Engine, proxy_id: str) -> int:
    """End every session `proxy_id` left open; other proxies' sessions are left alone."""
    sessions = models.table(models.RealtimeSession)
    with engine.begin() as connection:
        result = connection.execute(
            update(sessions)
            .where(sessions.c.proxy_id == proxy_id)
            .where(sessions.c.ended_at.is_(None))
            .values(ended_at=datetime.now(UTC), close_reason=ORPHAN_REASON)
        )
    return int(result.rowcount)
