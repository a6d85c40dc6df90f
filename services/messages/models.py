"""Tables of the messages context, all in the PostgreSQL schema ``messages``.

``room_id`` and ``user_id`` are rooms and users of other contexts: ids only, no foreign keys. What this
context needs to know about them it keeps as small local copies fed by their events: room membership
(so posting costs no RPC) and the rooms and users that were deleted (so a late or reordered event, or a
post racing a deletion, cannot bring back what the deletion removed).

The database repeats the body rules (not blank unless a tombstone, at most 500 characters), so a writer
that bypasses the service still cannot store a bad row.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import UUID

from common.db import service_metadata
from common.outbox import outbox_table

metadata = service_metadata("messages")

BODY_MAX_LENGTH = 500

messages = Table(
    "messages",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("room_id", UUID(as_uuid=True), nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("body", String(BODY_MAX_LENGTH), nullable=False),  # stored as sent, untrimmed
    Column("edited", Boolean, nullable=False, server_default=false()),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The room's sequence number of this message's last change (creation, edit or deletion), and of
    # its creation: together they say whether a catch-up reports it as new, updated or deleted (B7a).
    Column("seq", BigInteger, nullable=False),
    Column("created_seq", BigInteger, nullable=False),
    # A tombstone: the body is cleared and the row kept, so the deletion can be replayed (B7b).
    Column("deleted", Boolean, nullable=False, server_default=false()),
    # Its index also serves catch-up by sequence number.
    UniqueConstraint("room_id", "seq", name="uq_messages_room_id_seq"),
    # ASCII whitespace only: a backstop that never refuses what the service accepts (Python's notion of
    # whitespace is wider), whatever the database's locale thinks ``[:space:]`` means.
    CheckConstraint("deleted OR body ~ '[^ \\t\\n\\r\\f\\v]'", name="body_not_blank"),
    CheckConstraint("NOT deleted OR body = ''", name="tombstone_body_empty"),
    CheckConstraint("created_seq >= 1 AND seq >= created_seq", name="seq_order"),
    # History of a room and catch-up by message, in (created, id) order (CONTRACT §5, B2, B7).
    Index("ix_messages_room_id_created_id", "room_id", "created", "id"),
    # Messages of a user, newest first (messagesByUser), and the user-deletion cascade.
    Index("ix_messages_user_id_created_id", "user_id", "created", "id"),
)

# The last sequence number each room has handed out. Taking the next one locks the room's row, which
# serializes the writers of one room (and only of that room), so numbers follow commit order.
room_sequences = Table(
    "room_sequences",
    metadata,
    Column("room_id", UUID(as_uuid=True), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    CheckConstraint("last_seq >= 0", name="last_seq_not_negative"),
)

# The local copy of room membership, fed by the rooms service's events (and by its RPC on a miss): per
# (room, user), the latest change this service knows of, a join (``member``) or a leave (not), and its
# ``membership_version``. Joins and leaves arrive on separate queues, in any order and maybe more than
# once; a change is applied only over an older one, so the copy ends at the latest whatever the order.
# Version 0: a membership learnt without one (the room_created event, the rooms service's RPC, an event
# from before versions), which any versioned change replaces and which replaces no versioned one.
memberships = Table(
    "memberships",
    metadata,
    Column("room_id", UUID(as_uuid=True), nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("member", Boolean, nullable=False, server_default=true()),
    Column("version", BigInteger, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("room_id", "user_id", name="pk_memberships"),
    CheckConstraint("version >= 0", name="version_not_negative"),
    Index("ix_memberships_user_id", "user_id"),
)

# Rooms and users whose deletion this service has handled: nothing is posted to or by them any more,
# and a membership event that arrives after the deletion is not recorded.
deleted_rooms = Table(
    "deleted_rooms",
    metadata,
    Column("room_id", UUID(as_uuid=True), primary_key=True),
    Column("deleted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

deleted_users = Table(
    "deleted_users",
    metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("deleted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
