"""Every query of the messages context. The service calls the writes inside ``storage.transaction()``.

Locking, so that sequence numbers follow commit order and no deletion can be outrun:

* Every change of a room's messages first locks the room's ``room_sequences`` row (taking the next
  number does so by itself), then reads and writes the message. One room's writers are serialized;
  other rooms' are not.
* A post also holds a shared advisory lock on its author, which the user-deletion cascade takes
  exclusively while it marks the user deleted: once the mark is committed, no post of that user is in
  flight and none can follow.
* A room deletion locks the room's sequence row (creating it if need be) before it marks the room
  deleted, and a post checks both marks only after it holds that row: a post either commits before
  the deletion (whose delete then sees its message) or sees the mark and stores nothing.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Boolean,
    Row,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from common.db import StorageBase
from services.messages.models import (
    deleted_rooms,
    deleted_users,
    memberships,
    messages,
    room_sequences,
)

# Key space of the author locks (the two-key advisory lock space never meets the one-key one the outbox
# relay uses).
_AUTHOR_LOCK = text("hashtext('messages.author')")


class Participation(enum.Enum):
    MEMBER = "member"  # the local copy says so
    CLOSED = "closed"  # the room or the user is deleted: nobody posts there, whatever anyone says
    UNKNOWN = "unknown"  # not in the local copy: ask the rooms service


class MessageStorage(StorageBase):
    # --- message reads ------------------------------------------------------------------------------

    def get(self, message_id: uuid.UUID) -> Row | None:
        """The message with this id, tombstone or not."""
        return self.session.execute(select(messages).where(messages.c.id == message_id)).one_or_none()

    def get_many(self, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Row]:
        """Live messages by id (tombstones left out)."""
        if not message_ids:
            return {}
        query = select(messages).where(messages.c.id.in_(set(message_ids)), ~messages.c.deleted)
        return {row.id: row for row in self.session.execute(query).all()}

    def history(self, room_id: uuid.UUID, limit: int, before: Row | None = None) -> list[Row]:
        """The newest ``limit`` live messages of a room (strictly before ``before`` when given), in
        ascending (created, id) order; read backwards on the (room_id, created, id) index."""
        if limit <= 0:
            return []
        query = select(messages).where(messages.c.room_id == room_id, ~messages.c.deleted)
        if before is not None:
            query = query.where(tuple_(messages.c.created, messages.c.id) < tuple_(before.created, before.id))
        query = query.order_by(messages.c.created.desc(), messages.c.id.desc()).limit(limit)
        return list(reversed(self.session.execute(query).all()))

    def after(self, room_id: uuid.UUID, anchor_created, anchor_id: uuid.UUID, limit: int) -> list[Row]:
        """At most ``limit`` live messages of a room after the position (created, id), oldest first."""
        query = (
            select(messages)
            .where(messages.c.room_id == room_id, ~messages.c.deleted)
            .where(tuple_(messages.c.created, messages.c.id) > tuple_(anchor_created, anchor_id))
            .order_by(messages.c.created, messages.c.id)
            .limit(limit)
        )
        return list(self.session.execute(query).all())

    def by_user(self, user_id: uuid.UUID, limit: int, offset: int) -> list[Row]:
        """A user's live messages in every room, newest first (created DESC, id DESC)."""
        if limit <= 0:
            return []
        query = (
            select(messages)
            .where(messages.c.user_id == user_id, ~messages.c.deleted)
            .order_by(messages.c.created.desc(), messages.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(self.session.execute(query).all())

    def changed_since(self, room_id: uuid.UUID, since_seq: int, limit: int) -> list[Row]:
        """At most ``limit`` messages of a room, tombstones included, whose last change has a sequence
        number above ``since_seq``, in that number's order (on the (room_id, seq) unique index)."""
        query = (
            select(messages)
            .where(messages.c.room_id == room_id, messages.c.seq > since_seq)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        return list(self.session.execute(query).all())

    def last_seq(self, room_id: uuid.UUID) -> int:
        query = select(room_sequences.c.last_seq).where(room_sequences.c.room_id == room_id)
        return self.session.execute(query).scalar_one_or_none() or 0

    def use_snapshot(self) -> None:
        """Read the rest of this transaction from one snapshot (REPEATABLE READ), so a read made of
        several pages sees no change land between them. Call first in the transaction."""
        self.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})

    # --- membership copy ----------------------------------------------------------------------------

    def participation(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Participation:
        """What the copy says; a membership whose latest known change is a leave is ``UNKNOWN`` (the user
        may have joined again since)."""
        member, room_gone, user_gone = self.session.execute(
            select(
                exists().where(
                    memberships.c.room_id == room_id, memberships.c.user_id == user_id, memberships.c.member
                ),
                exists().where(deleted_rooms.c.room_id == room_id),
                exists().where(deleted_users.c.user_id == user_id),
            )
        ).one()
        if room_gone or user_gone:
            return Participation.CLOSED
        return Participation.MEMBER if member else Participation.UNKNOWN

    def closed(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Whether the room or the user has been deleted."""
        room_gone, user_gone = self.session.execute(
            select(
                exists().where(deleted_rooms.c.room_id == room_id),
                exists().where(deleted_users.c.user_id == user_id),
            )
        ).one()
        return room_gone or user_gone

    def record_membership(self, room_id: uuid.UUID, user_id: uuid.UUID, *, member: bool, version: int = 0) -> bool:
        """Record a change of a membership (a join when ``member``, else a leave) with its version,
        unless the copy already holds a later change of it (a higher version) or the room or the user is
        deleted; returns whether the row was written.

        A versioned change with the version the copy holds is that same change delivered again: written
        again, to no effect. Version 0 is a change known without one (a room's host, the rooms service's
        yes, an event from before versions): it replaces only another such one, the later arrival
        winning, and any versioned change replaces it. One statement, so concurrent handlers of the same
        membership cannot interleave between the check and the write.
        """
        values = select(
            bindparam("room_id", room_id),
            bindparam("user_id", user_id),
            bindparam("member", member, type_=Boolean),
            bindparam("version", version, type_=BigInteger),
        ).where(
            ~exists().where(deleted_rooms.c.room_id == room_id),
            ~exists().where(deleted_users.c.user_id == user_id),
        )
        query = pg_insert(memberships).from_select(["room_id", "user_id", "member", "version"], values)
        query = query.on_conflict_do_update(
            index_elements=["room_id", "user_id"],
            set_={"member": query.excluded.member, "version": query.excluded.version},
            where=memberships.c.version <= query.excluded.version,
        )
        return self.session.execute(query).rowcount > 0

    # --- message writes -----------------------------------------------------------------------------

    def lock_author(self, user_id: uuid.UUID) -> None:
        """Shared lock on an author for this transaction: posts of one user run side by side, but not
        alongside :meth:`forget_user`."""
        self.session.execute(
            select(func.pg_advisory_xact_lock_shared(_AUTHOR_LOCK, func.hashtext(str(user_id))))
        )

    def take_seq(self, room_id: uuid.UUID, count: int = 1) -> int:
        """Take the room's next ``count`` sequence numbers and return the last of them. Locks the room's
        row until the transaction ends; a rollback gives the numbers back, so there are no gaps."""
        query = (
            pg_insert(room_sequences)
            .values(room_id=room_id, last_seq=count)
            .on_conflict_do_update(
                index_elements=[room_sequences.c.room_id],
                set_={"last_seq": room_sequences.c.last_seq + count},
            )
            .returning(room_sequences.c.last_seq)
        )
        return self.session.execute(query).scalar_one()

    def lock_room_of(self, message_id: uuid.UUID) -> None:
        """Lock the sequence row of the room the message belongs to (nothing when there is no such
        message), so what is read next is its current state and stays so until commit."""
        room_of_message = select(messages.c.room_id).where(messages.c.id == message_id).scalar_subquery()
        self.session.execute(
            select(room_sequences.c.last_seq).where(room_sequences.c.room_id == room_of_message).with_for_update()
        )

    def create(self, room_id: uuid.UUID, user_id: uuid.UUID, body: str, seq: int) -> Row:
        # statement_timestamp(): once for both columns, and taken after the room's lock was granted, so
        # a room's messages are created in sequence order, clock permitting.
        now = func.statement_timestamp()
        query = (
            messages.insert()
            .values(
                id=uuid.uuid4(),
                room_id=room_id,
                user_id=user_id,
                body=body,
                created=now,
                updated=now,
                seq=seq,
                created_seq=seq,
            )
            .returning(*messages.c)
        )
        return self.session.execute(query).one()

    def edit(self, message_id: uuid.UUID, body: str, seq: int) -> Row:
        query = (
            update(messages)
            .where(messages.c.id == message_id)
            .values(body=body, edited=True, updated=func.statement_timestamp(), seq=seq)
            .returning(*messages.c)
        )
        return self.session.execute(query).one()

    def tombstone(self, message_id: uuid.UUID, seq: int) -> Row:
        query = (
            update(messages)
            .where(messages.c.id == message_id)
            .values(body="", deleted=True, updated=func.statement_timestamp(), seq=seq)
            .returning(*messages.c)
        )
        return self.session.execute(query).one()

    # --- cascades -----------------------------------------------------------------------------------

    def delete_room(self, room_id: uuid.UUID) -> int:
        """Mark the room deleted and remove its messages (tombstones included), memberships and
        sequence row; returns how many messages went. Idempotent."""
        # Lock the sequence row first, creating it if need be, so posts in flight finish before this
        # and later ones find the mark (see the module docstring).
        self.session.execute(
            pg_insert(room_sequences)
            .values(room_id=room_id, last_seq=0)
            .on_conflict_do_update(
                index_elements=[room_sequences.c.room_id], set_={"last_seq": room_sequences.c.last_seq}
            )
        )
        self.session.execute(pg_insert(deleted_rooms).values(room_id=room_id).on_conflict_do_nothing())
        removed = self.session.execute(delete(messages).where(messages.c.room_id == room_id)).rowcount
        self.session.execute(delete(memberships).where(memberships.c.room_id == room_id))
        self.session.execute(delete(room_sequences).where(room_sequences.c.room_id == room_id))
        return removed

    def forget_user(self, user_id: uuid.UUID) -> int:
        """Mark the user deleted and remove their memberships; returns how many went. Waits for the
        user's posts in flight, and no later post passes (see the module docstring). Idempotent."""
        self.session.execute(select(func.pg_advisory_xact_lock(_AUTHOR_LOCK, func.hashtext(str(user_id)))))
        self.session.execute(pg_insert(deleted_users).values(user_id=user_id).on_conflict_do_nothing())
        return self.session.execute(delete(memberships).where(memberships.c.user_id == user_id)).rowcount

    def rooms_with_messages_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The rooms where the user has live messages."""
        query = select(messages.c.room_id).where(messages.c.user_id == user_id, ~messages.c.deleted).distinct()
        return list(self.session.execute(query).scalars())

    def tombstone_messages_of(self, user_id: uuid.UUID, room_id: uuid.UUID, limit: int) -> list[tuple[uuid.UUID, int]]:
        """Turn up to ``limit`` of the user's live messages in one room into tombstones, oldest first,
        each with the room's next sequence number; returns ``(id, seq)`` of each."""
        self.session.execute(
            select(room_sequences.c.last_seq).where(room_sequences.c.room_id == room_id).with_for_update()
        )
        ids = list(
            self.session.execute(
                select(messages.c.id)
                .where(messages.c.room_id == room_id, messages.c.user_id == user_id, ~messages.c.deleted)
                .order_by(messages.c.created, messages.c.id)
                .limit(limit)
            ).scalars()
        )
        if not ids:
            return []
        last = self.take_seq(room_id, len(ids))
        numbered = [(message_id, last - len(ids) + 1 + index) for index, message_id in enumerate(ids)]
        self.session.execute(
            update(messages)
            .where(messages.c.id == bindparam("message_id"))
            .values(body="", deleted=True, updated=func.statement_timestamp(), seq=bindparam("new_seq")),
            [{"message_id": message_id, "new_seq": seq} for message_id, seq in numbered],
        )
        return numbered
