"""RPC entry points and event handlers of the messages service (``nameko run services.messages.service``).

Thin glue: each entry point cleans its input (``validation``), calls storage verbs inside
``storage.transaction()``, emits its event in that same transaction (the outbox publishes it after the
commit), and returns JSON-able dicts (``schemas``). Rooms and users are ids here; a malformed id behaves
like an unknown one.

Every change of a room's messages takes the room's next sequence number (B7a), stored with the row;
a deletion leaves a tombstone, so :meth:`MessagesService.changes_since` can replay it (B7b).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import eventlet
from nameko.dependency_providers import Config
from nameko.events import event_handler
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy

# Imported as a module, not by name: `nameko run services.messages.service` starts every class of this
# module that has entrypoints, and ServiceBase (whose health() is one) has no service name.
from common import service as common_service
from common.db import Storage
from common.errors import EXPECTED, NotFound, PermissionDenied
from common.rpc import rpc
from common.validation import check_paging, parse_uuid
from services.messages import events, schemas, validation
from services.messages.models import metadata
from services.messages.storage import MessageStorage, Participation

log = logging.getLogger(__name__)

MESSAGE_NOT_FOUND = "Message not found"

# The longest list a read returns when the caller names no cap (CONTRACT B2's N).
DEFAULT_CAP = 10000

# Catch-up reads are not capped (B7, B7b), but read from the database in pages of this many rows.
CATCH_UP_PAGE = 1000

# A deleted user's messages are turned into tombstones this many per transaction.
CASCADE_BATCH = 500

# Seconds to wait for the rooms service's answer on a membership miss; overridden by the config key.
ROOMS_RPC_TIMEOUT = 5.0


class MembershipUnknown(Exception):
    """The rooms service did not answer a membership question: the post fails as an unexpected error
    rather than as a permission it may wrongly deny."""


class MessagesService(common_service.ServiceBase):
    """Messages of every room: post, edit, delete, history, catch-up, and the cascades of deleted rooms
    and users."""

    name = "messages"

    storage: MessageStorage = Storage(MessageStorage, metadata)
    rooms = RpcProxy("rooms")
    config = Config()

    # --- writes -------------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def post_message(self, room_id: str, user_id: str, body: str | None) -> dict[str, Any]:
        """Store a message of ``user_id`` in ``room_id`` (a socket ``text`` frame, CONTRACT §10.3) and
        return it.

        ``body`` is stored as sent (untrimmed). ``None``, ``""`` or whitespace only: raw
        ``ValidationFailed({"body": ["This field cannot be blank."]})``; over 500 characters: raw
        ``{"body": ["Ensure this value has at most 500 characters (it has N)."]}``. Then the author must
        participate in the room, by the local membership copy or, on a miss, by asking the rooms service
        (a yes is recorded locally); otherwise ``PermissionDenied("Permission denied")``, also for a
        deleted room or user. Emits ``message_created`` (``{"room_id", "seq", "message"}``).
        """
        room, user = parse_uuid(room_id), parse_uuid(user_id)
        body = validation.check_body(body)
        if room is None or user is None:
            raise PermissionDenied()
        # The usual case, a member by the local copy: one statement checks, numbers, stores and queues
        # message_created.
        with self.storage.transaction():
            row = self.storage.post_as_member(room, user, body)
        message = schemas.message(row) if row is not None else None
        if message is None:  # nothing was written: the full checks decide
            message = self._post_after_checks(room, user, body)
        # DEBUG: a line per chat message costs the service a twentieth of its CPU at chat rates; the
        # message's own event already records it.
        log.debug(
            "message posted", extra={"message_id": message["id"], "room_id": message["room_id"], "seq": message["seq"]}
        )
        return message

    @rpc(expected_exceptions=EXPECTED)
    def edit_message(
        self, message_id: str, user_id: str, body: str | None, room_id: str | None = None
    ) -> dict[str, Any]:
        """Change the body of ``user_id``'s message (``updateMessage``, a socket ``update`` frame) and
        return the message.

        Checks in order: ``NotFound("Message not found")`` for an unknown message, a deleted one, or,
        when ``room_id`` is given (the socket's room), a message of another room (C2); then
        ``PermissionDenied("Permission denied")`` unless ``user_id`` wrote it (participation is not
        required, A12); then the body rules of :meth:`post_message`. A changed body is stored with
        ``edited`` true, ``updated`` bumped and the room's next ``seq``; an identical body writes
        nothing (C6). Either way ``message_updated`` (``{"room_id", "seq", "message"}``) is emitted with
        the message's current values (C7).
        """
        with self.storage.transaction():
            row = self._own_message(message_id, user_id, room_id)
            body = validation.check_body(body)
            if body != row.body:
                row = self.storage.edit(row, body)
                log.info("message edited", extra={"message_id": str(row.id), "seq": row.seq})
            message = schemas.message(row)
            self.storage.emit(events.MESSAGE_UPDATED, events.message_updated(message))
        return message

    @rpc(expected_exceptions=EXPECTED)
    def delete_message(self, message_id: str, user_id: str, room_id: str | None = None) -> dict[str, Any]:
        """Delete ``user_id``'s message (``deleteMessage``, a socket ``delete`` frame); returns
        ``{"id", "room_id", "seq"}``.

        The checks of :meth:`edit_message` (``NotFound``, then ``PermissionDenied``). The message becomes
        a tombstone (body cleared, left out of every read but :meth:`changes_since`) with the room's next
        ``seq``. Emits ``message_deleted`` (``{"room_id", "seq", "id"}``).
        """
        with self.storage.transaction():
            row = self._own_message(message_id, user_id, room_id)
            row = self.storage.tombstone(row)
            deleted = {"id": str(row.id), "room_id": str(row.room_id), "seq": row.seq}
            payload = events.message_deleted(deleted["room_id"], row.seq, deleted["id"])
            self.storage.emit(events.MESSAGE_DELETED, payload)
        log.info("message deleted", extra={"message_id": deleted["id"], "seq": row.seq})
        return deleted

    # --- reads --------------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def history(
        self, room_id: str, last: int | None = None, before: str | None = None, cap: int = DEFAULT_CAP
    ) -> list[dict[str, Any]]:
        """A room's messages (``messages(hostSlug, roomSlug, last, before)``, CONTRACT §5, B2), ascending
        by (created, id). ``before`` keeps only the messages strictly before that one; ``last`` keeps
        the final ``last`` of those (clamped to ``cap``); without ``last``, the newest ``cap``.

        A negative ``last``: ``ValidationFailed({"last": ["Ensure this value is greater than or equal
        to 0."]})``. A ``before`` naming no live message of this room: ``NotFound("Message not
        found")``. An unknown room has no messages (the gateway resolves the room first).
        """
        limit = validation.check_last(last, validation.check_cap(cap))
        room = parse_uuid(room_id)
        before_id = parse_uuid(before) if before is not None else None
        if before is not None and (room is None or before_id is None):
            raise NotFound(MESSAGE_NOT_FOUND)
        if room is None:
            return []
        rows = self.storage.history(room, limit, before_id)
        if not rows and before_id is not None:  # no earlier message, or no such anchor: tell which
            self._require_live_message_of_room(before_id, room)
        return schemas.message_replies(rows)

    @rpc(expected_exceptions=EXPECTED)
    def messages_by_user(
        self, user_id: str, first: int | None = None, offset: int = 0, cap: int = DEFAULT_CAP
    ) -> list[dict[str, Any]]:
        """A user's messages in every room (``messagesByUser``, CONTRACT §5, B2), by created DESC then
        id DESC: ``offset`` skipped, then at most ``first`` (clamped to ``cap``; ``None``: ``cap``).
        Negative ``first``/``offset``: form ``ValidationFailed``. An unknown user has none."""
        limit, offset = check_paging(first, offset, validation.check_cap(cap))
        user = parse_uuid(user_id)
        if user is None:
            return []
        return [schemas.message(row) for row in self.storage.by_user(user, limit, offset)]

    @rpc(expected_exceptions=EXPECTED)
    def changes_since(self, room_id: str, since_seq: int) -> list[dict[str, Any]]:
        """Every change of a room's messages after ``since_seq`` (socket ``?since=``, B7b), in ``seq``
        order, collapsed to the latest change of each message: ``{"action": "new", "seq", "message"}``
        for a message created after it (current values), ``{"action": "update", "seq", "message"}``
        for an older one edited since, ``{"action": "delete", "id", "seq"}`` for a deleted one (also
        when it was created after ``since_seq``; see :func:`services.messages.schemas.change`).

        Not capped (B7b): read in pages from one snapshot, so the answer is the room's state at one
        instant and a change committed meanwhile comes only live, with a higher ``seq``. (There is
        deliberately no caller paging: which changes are "new" depends on what the client was sent,
        which pages read at different instants cannot tell.) A negative ``since_seq``:
        ``ValidationFailed({"since_seq": [...]})``. An unknown room has no changes.
        """
        since_seq = validation.check_since(since_seq)
        room = parse_uuid(room_id)
        if room is None:
            return []
        changes: list[dict[str, Any]] = []
        with self.storage.transaction():
            self.storage.use_snapshot()
            position = since_seq
            while True:
                rows = self.storage.changed_since(room, position, CATCH_UP_PAGE)
                changes.extend(schemas.change(row, since_seq) for row in rows)
                if len(rows) < CATCH_UP_PAGE:
                    return changes
                position = rows[-1].seq

    @rpc(expected_exceptions=EXPECTED)
    def messages_after(self, room_id: str, message_id: str) -> list[dict[str, Any]]:
        """Every live message of a room after the named one by (created, id), oldest first, with current
        values (socket ``?after=``, B7). The named message may since have been deleted: its place still
        counts. ``NotFound("Message not found")`` when it names no message of this room.

        Not capped (B7): read in pages from one snapshot, like :meth:`changes_since`.
        """
        room, anchor_id = parse_uuid(room_id), parse_uuid(message_id)
        result: list[dict[str, Any]] = []
        with self.storage.transaction():
            self.storage.use_snapshot()
            anchor = self.storage.get(anchor_id) if anchor_id is not None else None
            if anchor is None or room is None or anchor.room_id != room:
                raise NotFound(MESSAGE_NOT_FOUND)
            created, position = anchor.created, anchor.id
            while True:
                rows = self.storage.after(room, created, position, CATCH_UP_PAGE)
                result.extend(schemas.message(row) for row in rows)
                if len(rows) < CATCH_UP_PAGE:
                    return result
                created, position = rows[-1].created, rows[-1].id

    @rpc(expected_exceptions=EXPECTED)
    def get_many(self, ids: list[str]) -> list[dict[str, Any] | None]:
        """The messages with these ids, aligned with ``ids``: ``None`` for an unknown, malformed or
        deleted one. One query, for the gateway's DataLoader."""
        wanted = [parse_uuid(message_id) for message_id in ids]
        rows = self.storage.get_many([message_uuid for message_uuid in wanted if message_uuid is not None])
        return [schemas.message(rows[message_uuid]) if message_uuid in rows else None for message_uuid in wanted]

    @rpc(expected_exceptions=EXPECTED)
    def last_seq(self, room_id: str) -> int:
        """The room's sequence number of its latest change; 0 when it has none (or is unknown)."""
        room = parse_uuid(room_id)
        return self.storage.last_seq(room) if room is not None else 0

    # --- events of other contexts -------------------------------------------------------------------

    # Each handler's queue is durable, so what happened while this service was down is handled when it
    # comes back; a failure (the database away) requeues the event rather than losing it. Every handler
    # is idempotent: a redelivered event finds nothing left to do.

    @event_handler("rooms", "room_created", requeue_on_error=True)
    def on_room_created(self, payload: dict[str, Any]) -> None:
        """The host of a new room is its first participant (unversioned: the host's own
        ``participant_joined`` carries the version, and any later change replaces this)."""
        room_host = events.created_room_host(payload)
        if room_host is None:
            return _ignored("room_created", "a room and host", payload)
        with self.storage.transaction():
            self.storage.record_membership(*room_host, member=True)

    @event_handler("rooms", "participant_joined", requeue_on_error=True)
    def on_participant_joined(self, payload: dict[str, Any]) -> None:
        """Record the membership, unless the copy holds a later change of it (its leave, delivered first)
        or its room or user is deleted."""
        self._record_membership("participant_joined", payload, member=True)

    @event_handler("rooms", "participant_left", requeue_on_error=True)
    def on_participant_left(self, payload: dict[str, Any]) -> None:
        """Record that the user left, so a join older than the leave that arrives after it is ignored
        (not for a deleted room or user). The user's messages stay (CONTRACT §6.2 leaveRoom)."""
        self._record_membership("participant_left", payload, member=False)

    @event_handler("rooms", "room_deleted", requeue_on_error=True)
    def on_room_deleted(self, payload: dict[str, Any]) -> None:
        """A deleted room's messages (tombstones included), memberships and sequence go (CONTRACT
        §6.2 deleteRoom). No events: the room's sockets close on the rooms service's own event."""
        room = events.deleted_room(payload)
        if room is None:
            return _ignored("room_deleted", "a room id", payload)
        with self.storage.transaction():
            removed = self.storage.delete_room(room)
        log.info("deleted room's messages removed", extra={"room_id": str(room), "messages_removed": removed})

    @event_handler("users", "user_deleted", requeue_on_error=True)
    def on_user_deleted(self, payload: dict[str, Any]) -> None:
        """A deleted user's memberships go, and each of their messages becomes a tombstone with its
        room's next ``seq``, emitting ``message_deleted``, so the sockets of rooms that remain see a
        ``delete`` (CONTRACT §6.2 deleteAccount, B3). Rooms they hosted go by ``room_deleted``."""
        user = events.deleted_user(payload)
        if user is None:
            return _ignored("user_deleted", "a user id", payload)
        with self.storage.transaction():
            memberships_removed = self.storage.forget_user(user)
        tombstoned = 0
        for room in self.storage.rooms_with_messages_of(user):
            while True:
                with self.storage.transaction():
                    done = self.storage.tombstone_messages_of(user, room, CASCADE_BATCH)
                    for message_id, seq in done:
                        payload = events.message_deleted(str(room), seq, str(message_id))
                        self.storage.emit(events.MESSAGE_DELETED, payload)
                tombstoned += len(done)
                if len(done) < CASCADE_BATCH:
                    break
        log.info(
            "deleted user's messages and memberships removed",
            extra={"user_id": str(user), "messages_deleted": tombstoned, "memberships_removed": memberships_removed},
        )

    # --- helpers ------------------------------------------------------------------------------------

    def _record_membership(self, event_type: str, payload: Any, *, member: bool) -> None:
        change = events.membership(payload)
        if change is None:
            return _ignored(event_type, "valid ids and version", payload)
        room, user, version = change
        with self.storage.transaction():
            self.storage.record_membership(room, user, member=member, version=version)

    def _created(self, row: Any) -> dict[str, Any]:
        """The stored message, its ``message_created`` queued in the same transaction."""
        message = schemas.message(row)
        self.storage.emit(events.MESSAGE_CREATED, events.message_created(message))
        return message

    def _post_after_checks(self, room: uuid.UUID, user: uuid.UUID, body: str) -> dict[str, Any]:
        """Post when the membership copy does not vouch for the author: the room or the user is
        deleted (denied), or the copy does not say member (the rooms service decides). A statement per
        step here, since the rooms service is asked between them and the author's membership row may not
        exist to be locked (see the storage module's docstring)."""
        self._require_participant(room, user)
        with self.storage.transaction():
            self.storage.lock_author(user)
            seq = self.storage.take_seq(room)
            if self.storage.closed(room, user):  # deleted since the check above
                raise PermissionDenied()
            return self._created(self.storage.create(room, user, body, seq))

    def _own_message(self, message_id: Any, user_id: Any, room_id: Any) -> Any:
        """Lock the message's room and the message, then return it if it is live (and of ``room_id``
        when given) and ``user_id`` wrote it; else ``NotFound`` / ``PermissionDenied``."""
        message_uuid = parse_uuid(message_id)
        if message_uuid is None:
            raise NotFound(MESSAGE_NOT_FOUND)
        row = self.storage.lock_current(message_uuid)
        if row is None or row.deleted:
            raise NotFound(MESSAGE_NOT_FOUND)
        if room_id is not None and parse_uuid(room_id) != row.room_id:
            raise NotFound(MESSAGE_NOT_FOUND)
        if parse_uuid(user_id) != row.user_id:
            raise PermissionDenied()
        return row

    def _require_live_message_of_room(self, message_id: uuid.UUID, room: uuid.UUID) -> None:
        row = self.storage.get(message_id)
        if row is None or row.deleted or row.room_id != room:
            raise NotFound(MESSAGE_NOT_FOUND)

    def _require_participant(self, room: uuid.UUID, user: uuid.UUID) -> None:
        """Pass if ``user`` participates in ``room``: by the local copy, else by the rooms service,
        whose yes is recorded (the copy may have missed the join, e.g. made before this service first
        ran) unless the copy holds a versioned leave: the join that followed it is on its way, and
        until it lands each post asks again. ``PermissionDenied`` otherwise."""
        with self.storage.transaction():
            participation = self.storage.participation(room, user)
        if participation is Participation.MEMBER:
            return
        if participation is Participation.CLOSED or not self._rooms_says_participant(room, user):
            raise PermissionDenied()
        with self.storage.transaction():
            learnt = self.storage.record_membership(room, user, member=True)
        if learnt:
            log.info("membership learnt from the rooms service", extra={"room_id": str(room), "user_id": str(user)})

    def _rooms_says_participant(self, room: uuid.UUID, user: uuid.UUID) -> bool:
        timeout = float(self.config.get("ROOMS_RPC_TIMEOUT") or ROOMS_RPC_TIMEOUT)
        try:
            with eventlet.Timeout(timeout):
                return self.rooms.is_participant(str(room), str(user)) is True
        except (eventlet.Timeout, UnknownService) as exc:
            raise MembershipUnknown(f"the rooms service did not answer is_participant ({type(exc).__name__})") from None


def _ignored(event_type: str, lacking: str, payload: Any) -> None:
    log.warning("%s event without %s ignored", event_type, lacking, extra={"payload": repr(payload)[:200]})
