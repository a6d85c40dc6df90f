"""The membership copy keeps each membership's latest change: joined or left, and its version.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Written by hand, to match services.messages.models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "messages"


def upgrade() -> None:
    # Existing rows are memberships learnt before versions: members, at version 0.
    op.add_column(
        "memberships", sa.Column("member", sa.Boolean(), server_default=sa.text("true"), nullable=False), schema=SCHEMA
    )
    op.add_column(
        "memberships", sa.Column("version", sa.BigInteger(), server_default=sa.text("0"), nullable=False), schema=SCHEMA
    )
    op.create_check_constraint(
        op.f("ck_memberships_version_not_negative"), "memberships", "version >= 0", schema=SCHEMA
    )


def downgrade() -> None:
    # What was left goes: without the flag, a row would say member.
    op.execute(f"DELETE FROM {SCHEMA}.memberships WHERE NOT member")
    op.drop_constraint(op.f("ck_memberships_version_not_negative"), "memberships", schema=SCHEMA, type_="check")
    op.drop_column("memberships", "version", schema=SCHEMA)
    op.drop_column("memberships", "member", schema=SCHEMA)
