"""Alembic environment: runs migrations on the connection handed over by `storage.db.upgrade`."""

from alembic import context
from sqlalchemy import Connection, create_engine

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    # `alembic` on the command line (e.g. `alembic revision --autogenerate`) with -x url=...
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///rtrec.db")
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
