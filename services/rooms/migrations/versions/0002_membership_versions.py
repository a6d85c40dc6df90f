"""Membership versions: a sequence numbering every join and leave, and each participant's join number.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Written by hand, to match services.rooms.models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "rooms"


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("membership_versions", schema=SCHEMA)))
    # The default is volatile, so the rewrite gives each existing participant a number of its own.
    op.add_column(
        "participants",
        sa.Column(
            "version",
            sa.BigInteger(),
            server_default=sa.text(f"nextval('{SCHEMA}.membership_versions')"),
            nullable=False,
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("participants", "version", schema=SCHEMA)
    op.execute(sa.schema.DropSequence(sa.Sequence("membership_versions", schema=SCHEMA)))
