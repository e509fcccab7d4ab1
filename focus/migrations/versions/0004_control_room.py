"""The control room (issue 17): conferences can be locked, accounts disabled.

Adds ``conferences.locked`` (boolean, not null, server default false): every
existing conference stays open.  While a conference is locked the focus
answers a new INVITE with 403 and a Warning saying so; who is in stays in.

Adds ``accounts.disabled`` (boolean, not null, server default false): every
existing account stays usable.  A disabled account cannot sign in, its
sessions end and its API tokens are refused (they are kept, and work again
when the account is enabled).

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
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35 too): never batch mode here, whose copy
    # and DROP of the table would cascade to its children (bearer tokens, participants)
    op.drop_column("accounts", "disabled")
    op.drop_column("conferences", "locked")
