"""Every query of the messages context. The service calls the writes inside ``storage.transaction()``.

Locking, so that sequence numbers follow commit order and no deletion can be outrun:

* Every change of a room's messages first locks the room's ``room_sequences`` row (taking the next
  number does so by itself), then reads and writes the message. One room's writers are serialized;
  other rooms' are not.
* A post by a member (:meth:`MessageStorage.post_as_member`, the usual case) first takes a key-share
  lock on the author's membership row, in the same statement that takes the number. Both deletions
  delete that row (a room's memberships, a user's), so they wait for a post in flight to commit
  first, and a post that comes after finds no row and stores nothing. The row lock is what lets the
  post be one statement: in READ COMMITTED a statement reads from the snapshot it started with, so a
  mark committed while it waited for a lock would stay invisible to it, whereas a row deleted
  meanwhile is seen as gone by the lock itself.
* A post that the membership copy does not vouch for (the rooms service said yes) takes the older
  route, one statement per step: a shared advisory lock on its author, which the user-deletion cascade
  takes exclusively while it marks the user deleted (once the mark is committed, no such post of that
  user is in flight and none can follow); then the room's sequence row, which a room deletion locks
  (creating it if need be) before it marks the room deleted; then, in a statement of its own, a look
  at both marks: the post either commits before the deletion (whose delete then sees its message) or
  sees the mark and stores nothing.
* Every transaction takes its locks in one order (an author's advisory lock, membership rows, the
  room's sequence row, message rows), so none waits for another in a circle.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Row,
    Text,
    bindparam,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import ReturningInsert

from common.db import StorageBase, iso_utc
from services.messages import events
from services.messages.models import (
    deleted_rooms,
    deleted_users,
    memberships,
    messages,
    outbox,
    room_sequences,
)

# Key space of the author locks (the two-key advisory lock space never meets the one-key one the outbox
# relay uses).
_AUTHOR_LOCK = text("hashtext('messages.author')")


def _next_seq(room_id: uuid.UUID, count: int = 1) -> ReturningInsert[int]:
    """Take the room's next ``count`` sequence numbers (creating its row on its first change), returning
    the last of them; the statement locks the room's row until the transaction ends."""
    return (
        pg_insert(room_sequences)
        .values(room_id=room_id, last_seq=count)
        .on_conflict_do_update(
            index_elements=[room_sequences.c.room_id],
            set_={"last_seq": room_sequences.c.last_seq + count},
        )
        .returning(room_sequences.c.last_seq)
    )


def _post_as_member_statement() -> Select[Any]:
    """The statement of :meth:`MessageStorage.post_as_member`, built once: its cache key is memoized,
    so each post pays only for binding its parameters.

    Three steps, each fed by the one before, so they run (and lock) in this order:

    1. the author's membership row, if the copy says member and neither the room nor the author is
       marked deleted, locked ``FOR KEY SHARE`` (the deletions delete it; a join or leave, which only
       updates it, is not held up);
    2. from that row, the room's next number (the room's row is created on its first message, and
       locked);
    3. from that number, the message, returned;

    When step 1 finds nothing, the later steps get no row: nothing is written.
    """
    room_id = bindparam("room_id", type_=UUID(as_uuid=True))
    user_id = bindparam("user_id", type_=UUID(as_uuid=True))
    membership = (
        select(memberships.c.room_id, literal(1, BigInteger))
        .where(
            memberships.c.room_id == room_id,
            memberships.c.user_id == user_id,
            memberships.c.member,
            ~exists().where(deleted_rooms.c.room_id == room_id),
            ~exists().where(deleted_users.c.user_id == user_id),
        )
        .with_for_update(read=True, key_share=True, of=memberships)
    )
    taken = (
        pg_insert(room_sequences)
        .from_select(["room_id", "last_seq"], membership)
        .on_conflict_do_update(
            index_elements=[room_sequences.c.room_id], set_={"last_seq": room_sequences.c.last_seq + 1}
        )
        # clock_timestamp(), read once the room's row is held (statement_timestamp() is the statement's
        # start, before any wait for that row), so a room's messages are created in sequence order,
        # clock permitting; once for both columns.
        .returning(room_sequences.c.last_seq, func.clock_timestamp().label("now"))
        .cte("taken")
    )
    columns = ["id", "room_id", "user_id", "body", "created", "updated", "seq", "created_seq"]
    values = select(
        bindparam("message_id", type_=UUID(as_uuid=True)),
        room_id,
        user_id,
        bindparam("body", type_=messages.c.body.type),
        taken.c.now,
        taken.c.now,
        taken.c.last_seq,
        taken.c.last_seq,
    )
    created = messages.insert().from_select(columns, values).returning(*messages.c).cte("created")
    # 4. from the message, its message_created event in the outbox, the payload built by PostgreSQL
    #    (events.message_created of the reply: test_events_published.py compares the two), which
    #    spares the post a statement and the JSON encoding of the payload.
    emitted = outbox.insert().from_select(
        ["event_type", "payload", "call_id_stack"],
        select(
            _sql_text(events.MESSAGE_CREATED),
            _json_object(room_id=created.c.room_id, seq=created.c.seq, message=_message_json(created)),
            func.to_jsonb(bindparam("call_id_stack", type_=ARRAY(Text))),
        ).select_from(created),
    )
    return select(created).add_cte(emitted.cte("emitted"))


def _sql_text(value: str) -> Any:
    """A constant string written into the statement rather than bound on every execution."""
    assert "'" not in value
    return literal_column(f"'{value}'", Text)


def _json_object(**fields: Any) -> Any:
    return func.jsonb_build_object(*(part for key, value in fields.items() for part in (_sql_text(key), value)))


def _message_json(row: Any) -> Any:
    """:func:`schemas.message` in SQL, of a row of the messages table."""
    return _json_object(
        id=row.c.id,
        room_id=row.c.room_id,
        user_id=row.c.user_id,
        body=row.c.body,
        edited=row.c.edited,
        created=iso_utc(row.c.created),
        updated=iso_utc(row.c.updated),
        seq=row.c.seq,
    )



# A message as the history replies carry it (``schemas.message``'s keys and order), ids and times text.
_MESSAGE_REPLY = (
    messages.c.id.cast(Text).label("id"),
    messages.c.room_id.cast(Text).label("room_id"),
    messages.c.user_id.cast(Text).label("user_id"),
    messages.c.body,
    messages.c.edited,
    iso_utc(messages.c.created).label("created"),
    iso_utc(messages.c.updated).label("updated"),
    messages.c.seq,
)


def _history_statement(before: bool) -> Any:
    """The statement of :meth:`MessageStorage.history`, built once per shape with bound values, so its
    cache key is memoized rather than rebuilt on every read."""
    room_id = bindparam("room_id", type_=UUID(as_uuid=True))
    query = select(*_MESSAGE_REPLY).where(messages.c.room_id == room_id, ~messages.c.deleted)
    if before:
        # The anchor's position is looked up in the same statement (an empty comparison when it is no
        # live message of the room), not by a query of its own.
        anchor = messages.alias("anchor")
        anchor_id = bindparam("before_id", type_=UUID(as_uuid=True))
        position = (
            select(anchor.c.created, anchor.c.id)
            .where(anchor.c.id == anchor_id, anchor.c.room_id == room_id, ~anchor.c.deleted)
            .scalar_subquery()
        )
        query = query.where(tuple_(messages.c.created, messages.c.id) < position)
    return query.order_by(messages.c.created.desc(), messages.c.id.desc()).limit(bindparam("limit"))


_HISTORY = _history_statement(before=False)
_HISTORY_BEFORE = _history_statement(before=True)
_POST_AS_MEMBER = _post_as_member_statement()


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

    def history(self, room_id: uuid.UUID, limit: int, before_id: uuid.UUID | None = None) -> list[Row]:
        """The newest ``limit`` live messages of a room (strictly before the live message ``before_id``
        of this room, when given: none when it is no such message), in ascending (created, id) order;
        read backwards on the (room_id, created, id) index. Rows in reply form (``schemas.message_replies``):
        the columns of ``_MESSAGE_REPLY``."""
        if limit <= 0:
            return []
        query = _HISTORY if before_id is None else _HISTORY_BEFORE
        rows = self.session.execute(query, {"room_id": room_id, "before_id": before_id, "limit": limit}).all()
        rows.reverse()
        return rows

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

    def post_as_member(self, room_id: uuid.UUID, user_id: uuid.UUID, body: str) -> Row | None:
        """Store a message of a participant, by the membership copy, with the room's next sequence
        number, in one statement (see :func:`_post_as_member_statement` and the module docstring), and
        return it. ``None``, having written nothing, when the copy does not say member (no row, or a
        leave) or the room or the user is deleted, including by a deletion that committed while this
        waited for its locks: the caller then decides with :meth:`participation`."""
        parameters = {
            "message_id": uuid.uuid4(),
            "room_id": room_id,
            "user_id": user_id,
            "body": body,
            "call_id_stack": self._call_id_stack,
        }
        row = self.session.execute(_POST_AS_MEMBER, parameters).one_or_none()
        if row is not None:
            self._emitted = True  # the statement queued message_created: wake the relay on commit
        return row

    def lock_author(self, user_id: uuid.UUID) -> None:
        """Shared lock on an author for this transaction: posts of one user run side by side, but not
        alongside :meth:`forget_user`."""
        self.session.execute(
            select(func.pg_advisory_xact_lock_shared(_AUTHOR_LOCK, func.hashtext(str(user_id))))
        )

    def take_seq(self, room_id: uuid.UUID, count: int = 1) -> int:
        """Take the room's next ``count`` sequence numbers and return the last of them. Locks the room's
        row until the transaction ends; a rollback gives the numbers back, so there are no gaps."""
        return self.session.execute(_next_seq(room_id, count)).scalar_one()

    def lock_current(self, message_id: uuid.UUID) -> Row | None:
        """The message with this id (tombstone or not) as it is now, with its room's sequence row and
        then its own row locked until the transaction ends; ``None`` when there is no such message.

        One statement: the room's row is locked by a sub-select run for the message's row before that
        row is locked itself, and locking the message row makes PostgreSQL read its latest committed
        version, whatever another writer of the room changed while this waited."""
        room_row = (
            select(room_sequences.c.room_id)
            .where(room_sequences.c.room_id == messages.c.room_id)
            .with_for_update()
        )
        query = (
            select(messages)
            .where(messages.c.id == message_id, exists(room_row))
            .with_for_update(key_share=True, of=messages)
        )
        return self.session.execute(query).one_or_none()

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

    def edit(self, message: Row, body: str) -> Row:
        """Give a message locked by :meth:`lock_current` a new body with its room's next sequence
        number, taken in the same statement."""
        taken_seq = select(_next_seq(message.room_id).cte("taken")).scalar_subquery()
        query = (
            update(messages)
            .where(messages.c.id == message.id)
            .values(body=body, edited=True, updated=func.statement_timestamp(), seq=taken_seq)
            .returning(*messages.c)
        )
        return self.session.execute(query).one()

    def tombstone(self, message: Row) -> Row:
        """Turn a message locked by :meth:`lock_current` into a tombstone with its room's next sequence
        number, taken in the same statement."""
        taken_seq = select(_next_seq(message.room_id).cte("taken")).scalar_subquery()
        query = (
            update(messages)
            .where(messages.c.id == message.id)
            .values(body="", deleted=True, updated=func.statement_timestamp(), seq=taken_seq)
            .returning(*messages.c)
        )
        return self.session.execute(query).one()

    # --- cascades -----------------------------------------------------------------------------------

    def delete_room(self, room_id: uuid.UUID) -> int:
        """Mark the room deleted and remove its messages (tombstones included), memberships and
        sequence row; returns how many messages went. Idempotent."""
        # Memberships first: this waits for the posts of members in flight, and later ones find no
        # membership; then the sequence row, created if need be, for the posts that passed otherwise
        # (see the module docstring). In that order, like a post, so neither waits for the other in a
        # circle.
        self.session.execute(delete(memberships).where(memberships.c.room_id == room_id))
        self.session.execute(
            pg_insert(room_sequences)
            .values(room_id=room_id, last_seq=0)
            .on_conflict_do_update(
                index_elements=[room_sequences.c.room_id], set_={"last_seq": room_sequences.c.last_seq}
            )
        )
        self.session.execute(pg_insert(deleted_rooms).values(room_id=room_id).on_conflict_do_nothing())
        removed = self.session.execute(delete(messages).where(messages.c.room_id == room_id)).rowcount
        self.session.execute(delete(room_sequences).where(room_sequences.c.room_id == room_id))
        return removed

    def forget_user(self, user_id: uuid.UUID) -> int:
        """Mark the user deleted and remove their memberships; returns how many went. Waits for the
        user's posts in flight (the advisory lock for those that passed without the copy, the
        membership rows for the others), and no later post passes (see the module docstring).
        Idempotent."""
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
