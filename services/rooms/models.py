"""Tables of the rooms context, all in the PostgreSQL schema ``rooms``.

The database repeats the input rules (letters-only topic names, room name characters, slug shape,
lengths, per-host uniqueness), so a writer that bypasses the service still cannot store a bad row.
``rooms.host_id`` and ``participants.user_id`` are users of the users context: ids only, no foreign key.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Sequence,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from common.db import service_metadata
from common.outbox import outbox_table

metadata = service_metadata("rooms")

TOPIC_NAME_MAX_LENGTH = 200
ROOM_NAME_MAX_LENGTH = 200
ROOM_SLUG_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 500

# Constraint names the storage maps unique violations by (C14).
TOPIC_NAME_UNIQUE = "uq_topics_name"
ROOM_NAME_UNIQUE = "uq_rooms_host_id_name"
ROOM_SLUG_UNIQUE = "uq_rooms_host_id_slug"

topics = Table(
    "topics",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", String(TOPIC_NAME_MAX_LENGTH), nullable=False),
    UniqueConstraint("name", name=TOPIC_NAME_UNIQUE),
    CheckConstraint("name ~ '^[A-Za-z]+$'", name="name_letters_only"),
)

rooms = Table(
    "rooms",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("host_id", UUID(as_uuid=True), nullable=False),
    Column("topic_id", BigInteger, ForeignKey(topics.c.id), nullable=False),
    Column("name", String(ROOM_NAME_MAX_LENGTH), nullable=False),
    Column("slug", String(ROOM_SLUG_MAX_LENGTH), nullable=False),
    Column("description", String(DESCRIPTION_MAX_LENGTH), nullable=False, server_default=""),
    # Kept by the storage in the transaction that adds or removes a participant, so the lists can
    # order by it from an index instead of counting every room's participants per query.
    Column("participant_count", Integer, nullable=False, server_default=text("0")),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # (host_id, name) doubles as the index on (host, name) the data model asks for.
    UniqueConstraint("host_id", "name", name=ROOM_NAME_UNIQUE),
    UniqueConstraint("host_id", "slug", name=ROOM_SLUG_UNIQUE),
    # What validation stores: letters, digits and single inner spaces, nothing blank.
    CheckConstraint("name ~ '^[a-zA-Z0-9 ]+$'", name="name_characters"),
    CheckConstraint("name ~ '[a-zA-Z0-9]'", name="name_not_blank"),
    CheckConstraint("name !~ '^ | $|  '", name="name_spaces_collapsed"),
    # What slugify() and the collision suffix make of such a name.
    CheckConstraint("slug <> ''", name="slug_not_empty"),
    CheckConstraint("slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'", name="slug_format"),
    CheckConstraint("participant_count >= 0", name="participant_count_not_negative"),
    Index("ix_rooms_topic_id", "topic_id"),
    Index("ix_rooms_updated", "updated"),
    Index("ix_rooms_created", "created"),
)

# The order of every room list: participant count DESC, created DESC, id ASC (CONTRACT §5, C10, C11).
Index(
    "ix_rooms_list_order",
    rooms.c.participant_count.desc(),
    rooms.c.created.desc(),
    rooms.c.id,
)

# The version of a membership change: every join and every leave takes the next number, under the lock
# of its room's row, so the changes of one (room, user) membership are numbered in the order they
# committed. The participant_joined / participant_left events carry it as ``membership_version``.
membership_versions = Sequence("membership_versions", metadata=metadata)

participants = Table(
    "participants",
    metadata,
    Column("room_id", UUID(as_uuid=True), ForeignKey(rooms.c.id, ondelete="CASCADE"), nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("joined", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The membership_version of the join that made this row.
    Column("version", BigInteger, nullable=False, server_default=membership_versions.next_value()),
    PrimaryKeyConstraint("room_id", "user_id", name="pk_participants"),
    Index("ix_participants_user_id", "user_id"),
)

outbox = outbox_table(metadata)
