"""New conferences accept every secure key mode (issue 13: defaults that work).

Until this revision a conference created without a key-mode choice stored
``["sdes", "fingerprint"]``: no MIKEY-TICKET and no DTLS-SRTP.  The default is
now every mode (:data:`focus.conference.DEFAULT_KEY_MODES`), and this revision
makes it the ``conferences.key_modes`` server default as well, so a row
inserted without the column (another tool, a restore script) gets it too.

Existing rows are not touched: a conference keeps the key modes it stored, the
old default included; an operator widens one with ``PATCH
/api/conferences/{id}`` or the conference page.  The value is written out here
(not imported) so that this revision means the same thing forever.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ALL_KEY_MODES = '["sdes", "mikey-ticket", "dtls", "fingerprint"]'


def upgrade() -> None:
    with op.batch_alter_table("conferences") as batch:
        batch.alter_column(
            "key_modes", existing_type=sa.Text(), existing_nullable=False,
            server_default=ALL_KEY_MODES,
        )  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("conferences") as batch:
        batch.alter_column(
            "key_modes", existing_type=sa.Text(), existing_nullable=False, server_default=None
        )
