"""A conference can be locked: no new joins while it is (issue 17, the control room).

Adds ``conferences.locked`` (boolean, not null, server default false): every
existing conference stays open.  While a conference is locked the focus
answers a new INVITE with 403 and a Warning saying so; who is in stays in.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conferences") as batch:
        batch.add_column(
            sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("conferences") as batch:
        batch.drop_column("locked")
