"""Alembic environment: runs on the connection :func:`focus.store.migrate` hands in.

There is no ``alembic.ini``: the store builds the configuration in code and puts
an open connection in ``config.attributes["connection"]``, so migrations run on
the same engine (and the same in-memory SQLite database) as the store.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import focus.tables  # noqa: F401  (defines the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through focus.store.migrate(), which passes a connection")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER via table copies
)
with context.begin_transaction():
    context.run_migrations()
