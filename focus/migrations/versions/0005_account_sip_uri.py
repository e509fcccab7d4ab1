"""Accounts carry a SIP identity: who a signed-in browser participant joins as (issue 16).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("sip_uri", sa.Text(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35 too): never batch mode here, whose copy
    # and DROP of ``accounts`` would cascade to every bearer token when foreign keys are on
    op.drop_column("accounts", "sip_uri")
