"""Several nodes on one database: conference homes and the KMS's shared state (issue 19).

``conference_homes``: the node that runs a live conference, with its SIP
contact and lease expiry (:mod:`focus.homes`).  ``kms_users``,
``kms_ticket_secrets``: the KMS keys when ``kms.database_url`` is set
(:mod:`focus.kms.store`), so that every node's KMS resolves the same tickets.
``mikey_replay``: a MIKEY replay cache shared by every node (the KMS's, and the
focus's for TRANSFER_INIT in INVITEs), so a replay seen by one is refused by all.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conference_homes",
        sa.Column("conference", sa.String(64), primary_key=True),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_conference_homes_node", "conference_homes", ["node"])
    op.create_table(
        "kms_users",
        sa.Column("identity", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(128), nullable=False),
    )
    op.create_table(
        "kms_ticket_secrets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("secret", sa.String(128), nullable=False),
    )
    op.create_table(
        "mikey_replay",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_mikey_replay_expires_at", "mikey_replay", ["expires_at"])


def downgrade() -> None:
    op.drop_table("mikey_replay")
    op.drop_table("kms_ticket_secrets")
    op.drop_table("kms_users")
    op.drop_table("conference_homes")
