"""The foundation schema: accounts, conferences, authorized participants.

Exactly what ``SQLModel.metadata.create_all`` produced before migrations existed,
so a database made by an older ``mrf`` is stamped with this revision and then
upgraded (see :func:`focus.store.migrate`).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_accounts_name", "accounts", ["name"], unique=True)
    op.create_table(
        "conferences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("allow_anonymous", sa.Boolean(), nullable=False),
        sa.Column("require_media_security", sa.Boolean(), nullable=False),
        sa.Column("key_modes", sa.Text(), nullable=False),
        sa.Column("notify_protection", sa.String(16), nullable=False),
        sa.Column("chair_uri", sa.Text()),
    )
    op.create_index("ix_conferences_name", "conferences", ["name"], unique=True)
    op.create_table(
        "authorized_participants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "conference_id",
            sa.Integer(),
            sa.ForeignKey("conferences.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("use_mikey", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("conference_id", "uri", name="uq_participant_uri"),
    )
    op.create_index(
        "ix_authorized_participants_conference_id", "authorized_participants", ["conference_id"]
    )


def downgrade() -> None:
    op.drop_table("authorized_participants")
    op.drop_table("conferences")
    op.drop_table("accounts")
