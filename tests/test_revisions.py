"""The schema revisions read without Alembic agree with what Alembic itself says."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage import revisions
from storage.db import alembic_config, make_engine, upgrade


def test_head_and_known_revisions_are_alembics():
    script = ScriptDirectory.from_config(alembic_config())
    assert revisions.head() == script.get_current_head()
    assert revisions.known_revisions() == {r.revision for r in script.walk_revisions()}


def test_database_revision_is_what_alembic_reads(db_url: str):
    engine = make_engine(db_url)
    stamps = []
    for target in (None, "0001", "head"):
        if target is not None:
            upgrade(engine, target)
        with engine.connect() as connection:
            stamps.append(
                (
                    revisions.database_revision(connection),
                    MigrationContext.configure(connection).get_current_revision(),
                )
            )
    engine.dispose()
    assert stamps == [(None, None), ("0001", "0001"), (revisions.head(), revisions.head())]
