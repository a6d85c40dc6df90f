"""RPC entry points of the rooms service (``nameko run services.rooms.service``).

Thin glue: each entry point cleans its input (``validation``), calls storage verbs inside
``storage.transaction()``, emits its events in that same transaction (the outbox publishes them after
the commit), and returns JSON-able dicts (``schemas``). Users are ids here; a malformed id behaves like
an unknown one.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from nameko.dependency_providers import Config
from nameko.events import event_handler

# Imported as a module, not by name: `nameko run services.rooms.service` starts every class of this
# module that has entrypoints, and ServiceBase (whose health() is one) has no service name.
from common import service as common_service
from common.db import Storage
from common.errors import EXPECTED, Conflict, NotFound, PermissionDenied, ValidationFailed
from common.rpc import rpc
from common.validation import check_paging, parse_uuid, slugify, storable
from services.rooms import events, schemas, validation
from services.rooms.models import metadata
from services.rooms.storage import DuplicateRoom, RoomStorage

log = logging.getLogger(__name__)

ROOM_NOT_FOUND = "Room not found"
USER_NOT_FOUND = "User not found"

# The longest list any call returns (CONTRACT B2's N); overridden by the config key of the same name.
ROOMS_LIST_CAP = 10000

# A create whose slug a concurrent create of the same host takes first picks the next free one; this
# many rounds is far more than any real burst of same-slug creates needs.
SLUG_ATTEMPTS = 20


class RoomsService(common_service.ServiceBase):
    """Topics, rooms and participants: creation, membership, the room and topic lists (C9, C10, C14)."""

    name = "rooms"

    storage: RoomStorage = Storage(RoomStorage, metadata)
    config = Config()

    # --- room writes --------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def create_room(self, host_id: str, name: str, topic_name: str, description: str) -> dict[str, Any]:
        """Create a room hosted by ``host_id`` and return it (``createRoom``, CONTRACT §6.2).

        Checks in order: the topic name (raw ``ValidationFailed``, e.g. ``{'__all__': ['Topic name must
        consist of letters only.']}``), then name and description (form ``ValidationFailed``), then the
        host's (host, name) uniqueness (raw ``{'__all__': ['You already have a room with this
        name.']}``). The slug is the slugified name, with the first free suffix ``-2``, ``-3``, … when
        the host already has it. One transaction gets or creates the topic, inserts the room and adds
        the host as participant, so a failure leaves nothing, a new topic included (C9). A create that
        loses a race to one with the same host and name gets ``Conflict`` with the raw error (C14).
        Malformed ``host_id``: ``NotFound("User not found")``. Emits ``room_created`` and the host's
        ``participant_joined``.
        """
        host = _user_uuid(host_id)
        topic_name = validation.check_topic_name(topic_name)
        form = validation.check_new_room(name, description)
        base_slug = slugify(form.name)
        raced = False
        for _ in range(SLUG_ATTEMPTS):
            try:
                with self.storage.transaction():
                    if self.storage.host_has_room_named(host, form.name):
                        # Found only after losing a slug race: the winner took the name as well.
                        error = Conflict if raced else ValidationFailed
                        raise error(validation.room_name_taken(), raw=True)
                    prefix = base_slug[: validation.SLUG_SHARED_PREFIX_LENGTH]
                    slug = validation.free_slug(base_slug, self.storage.host_slugs_starting_with(host, prefix))
                    row = self.storage.create_room(
                        host_id=host,
                        topic_id=self.storage.get_or_create_topic(topic_name),
                        name=form.name,
                        slug=slug,
                        description=form.description,
                    )
                    version = self.storage.add_participant(row.id, host)
                    room = schemas.room(self.storage.get_room(row.id))
                    self.storage.emit(events.ROOM_CREATED, events.room_created(room))
                    joined = events.participant_joined(room["id"], room["host_id"], version)
                    self.storage.emit(events.PARTICIPANT_JOINED, joined)
            except DuplicateRoom as lost:
                if lost.field == "name":
                    log.info("room create lost a race on its name", extra={"host_id": str(host)})
                    raise Conflict(validation.room_name_taken(), raw=True) from None
                raced = True  # a concurrent create took the slug: choose again
                continue
            log.info("room created", extra={"room_id": room["id"], "host_id": room["host_id"]})
            return room
        raise RuntimeError(f"no free slug for {base_slug!r} after {SLUG_ATTEMPTS} attempts")

    @rpc(expected_exceptions=EXPECTED)
    def update_room(self, room_id: str, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a room's ``description`` and/or topic (``updateRoom``, CONTRACT §6.2) and return it.

        ``NotFound("Room not found")``, then ``PermissionDenied("Permission denied")`` unless
        ``user_id`` hosts it. ``changes`` may hold ``topic_name`` (absent or ``None`` keeps the topic,
        C8; otherwise checked like ``create_room``'s, raw errors, and got or created in this
        transaction, C9) and ``description`` (``None`` clears it; over 500 is a form error). Name and
        slug never change; ``updated`` is bumped. Emits ``room_updated``.
        """
        room_uuid = _room_uuid(room_id)
        with self.storage.transaction():
            self._hosted_room(room_uuid, user_id)
            cleaned = validation.check_room_changes(changes or {})
            values: dict[str, Any] = {}
            if "topic_name" in cleaned:
                values["topic_id"] = self.storage.get_or_create_topic(cleaned["topic_name"])
            if "description" in cleaned:
                values["description"] = cleaned["description"]
            room = schemas.room(self.storage.update_room(room_uuid, values))
            self.storage.emit(events.ROOM_UPDATED, events.room_updated(room))
        log.info("room updated", extra={"room_id": room["id"], "changed": sorted(cleaned)})
        return room

    @rpc(expected_exceptions=EXPECTED)
    def delete_room(self, room_id: str, user_id: str) -> dict[str, str]:
        """Delete a room and its memberships, keeping its topic (``deleteRoom``, CONTRACT §6.2); returns
        ``{"id"}``. ``NotFound("Room not found")``, then ``PermissionDenied`` unless ``user_id`` hosts
        it. Emits ``room_deleted`` (``{"id", "host_id"}``)."""
        room_uuid = _room_uuid(room_id)
        with self.storage.transaction():
            self._hosted_room(room_uuid, user_id)
            deleted = self.storage.delete_room(room_uuid)
            self.storage.emit(events.ROOM_DELETED, events.room_deleted(str(deleted.id), str(deleted.host_id)))
        log.info("room deleted", extra={"room_id": str(deleted.id)})
        return {"id": str(deleted.id)}

    @rpc(expected_exceptions=EXPECTED)
    def join_room(self, room_id: str, user_id: str) -> dict[str, Any]:
        """Make ``user_id`` a participant and return the room (``joinRoom``, CONTRACT §6.2).

        ``NotFound("Room not found")``. Idempotent, also under concurrency: joining again (or as the
        host) changes nothing. ``updated`` is not bumped. Malformed ``user_id``: ``NotFound("User not
        found")``. Emits ``participant_joined`` (``{"room_id", "user_id", "membership_version"}``) only
        when newly joined.
        """
        room_uuid = _room_uuid(room_id)
        with self.storage.transaction():
            self._locked_room(room_uuid)
            user = _user_uuid(user_id)
            version = self.storage.add_participant(room_uuid, user)
            if version is not None:
                joined = events.participant_joined(str(room_uuid), str(user), version)
                self.storage.emit(events.PARTICIPANT_JOINED, joined)
                log.info("participant joined", extra={"room_id": str(room_uuid), "user_id": str(user)})
            room = schemas.room(self.storage.get_room(room_uuid))
        return room

    @rpc(expected_exceptions=EXPECTED)
    def leave_room(self, room_id: str, user_id: str) -> dict[str, Any]:
        """Remove ``user_id`` from the participants and return the room (``leaveRoom``, CONTRACT B3).

        ``NotFound("Room not found")``. Idempotent; the host may leave too. ``updated`` is not bumped.
        Malformed ``user_id``: ``NotFound("User not found")``. Emits ``participant_left`` (``{"room_id",
        "user_id", "membership_version"}``) only when a membership was removed.
        """
        room_uuid = _room_uuid(room_id)
        with self.storage.transaction():
            self._locked_room(room_uuid)
            user = _user_uuid(user_id)
            version = self.storage.remove_participant(room_uuid, user)
            if version is not None:
                left = events.participant_left(str(room_uuid), str(user), version)
                self.storage.emit(events.PARTICIPANT_LEFT, left)
                log.info("participant left", extra={"room_id": str(room_uuid), "user_id": str(user)})
            room = schemas.room(self.storage.get_room(room_uuid))
        return room

    # --- room reads ---------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def get_room(self, room_id: str) -> dict[str, Any]:
        """The room with this id, else ``NotFound("Room not found")``."""
        room_uuid = _room_uuid(room_id)
        row = self.storage.get_rooms([room_uuid]).get(str(room_uuid))
        if row is None:
            raise NotFound(ROOM_NOT_FOUND)
        return schemas.room_reply(row)

    @rpc(expected_exceptions=EXPECTED)
    def get_room_by_host_slug(
        self, host_id: str, slug: str, include: list[str] | None = None
    ) -> dict[str, Any]:
        """The room of host ``host_id`` whose slug is exactly ``slug`` (``room(hostSlug, roomSlug)``),
        else ``NotFound("Room not found")``. ``include`` as for :meth:`list_rooms`."""
        details = validation.room_details(include)
        host = parse_uuid(host_id)
        row = None
        if host is not None and isinstance(slug, str) and storable(slug):
            row = self.storage.get_room_by_host_slug(host, slug, details)
        if row is None:
            raise NotFound(ROOM_NOT_FOUND)
        return schemas.room_reply(row, details)

    @rpc(expected_exceptions=EXPECTED)
    def get_many(self, ids: list[str], include: list[str] | None = None) -> list[dict[str, Any] | None]:
        """The rooms with these ids, aligned with ``ids``: ``None`` for an unknown or malformed id. One
        query, for the gateway's DataLoader. ``include`` as for :meth:`list_rooms`."""
        details = validation.room_details(include)
        wanted = [parse_uuid(room_id) for room_id in ids]
        rows = self.storage.get_rooms([room_uuid for room_uuid in wanted if room_uuid is not None], details)
        replies = dict(zip(rows, schemas.room_replies(list(rows.values()), details)))
        return [replies.get(str(room_uuid)) if room_uuid is not None else None for room_uuid in wanted]

    @rpc(expected_exceptions=EXPECTED)
    def list_rooms(
        self,
        host_id: str | None = None,
        search: str | None = None,
        topics: list[str] | str | None = None,
        first: int | None = None,
        offset: int = 0,
        include: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Rooms (``rooms(hostSlug, search, topic)``, CONTRACT §5), the filters ANDed, each ignored
        when ``None``, ``""`` or ``[]``: hosted by ``host_id``; ``search`` contained, case-insensitively,
        in the name or the description; topic named exactly one of ``topics`` (a single string is a
        one-name list). Ordered by participant count DESC, created DESC, id ASC. ``offset`` rooms are
        skipped, then at most ``first`` returned (``None``: the ``ROOMS_LIST_CAP``, also the most
        ``first`` can ask for). Negative ``first``/``offset``: form ``ValidationFailed``.

        ``include`` names what each room also carries, read in the same query (so a caller needs no
        ``participants_of`` or ``get_topics`` after it): ``"participant_ids"``, the participants' user
        ids in joining order; ``"topic"``, ``{"id", "name"}``. An unknown name: ``ValueError``."""
        limit, offset = check_paging(first, offset, self._list_cap())
        details = validation.room_details(include)
        host = None
        if host_id is not None and host_id != "":
            host = parse_uuid(host_id)
            if host is None:
                return []  # an unknown host hosts nothing
        search = validation.search_text(search)
        topic_names = validation.topic_filter(topics)
        if (search is not None and not storable(search)) or topic_names == []:
            return []  # nothing stored can match
        rows = self.storage.list_rooms(
            host_id=host, search=search, topic_names=topic_names, limit=limit, offset=offset, details=details
        )
        return schemas.room_replies(rows, details)

    @rpc(expected_exceptions=EXPECTED)
    def rooms_participated_by(
        self, user_id: str, first: int | None = None, offset: int = 0, include: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Rooms ``user_id`` participates in (``roomsParticipatedByUser``), by true participant count
        DESC, created DESC, id ASC (C10); paged, and with ``include``, like :meth:`list_rooms`."""
        limit, offset = check_paging(first, offset, self._list_cap())
        details = validation.room_details(include)
        user = parse_uuid(user_id)
        if user is None:
            return []
        rows = self.storage.rooms_participated_by(user, limit, offset, details)
        return schemas.room_replies(rows, details)

    @rpc(expected_exceptions=EXPECTED)
    def rooms_not_participated_by(
        self, user_id: str, first: int | None = None, offset: int = 0, include: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Rooms ``user_id`` does not participate in (``roomsNotParticipatedByUser``), in the order,
        paging and ``include`` of :meth:`list_rooms`. An unknown (or malformed) user participates in
        none: all rooms."""
        limit, offset = check_paging(first, offset, self._list_cap())
        details = validation.room_details(include)
        user = parse_uuid(user_id)
        if user is None:
            rows = self.storage.list_rooms(
                host_id=None, search=None, topic_names=None, limit=limit, offset=offset, details=details
            )
        else:
            rows = self.storage.rooms_not_participated_by(user, limit, offset, details)
        return schemas.room_replies(rows, details)

    # --- participants -------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def participants_of(self, room_ids: list[str]) -> dict[str, list[str]]:
        """``{room_id: [user_id, ...]}`` for a batch of rooms, keyed by the ids as given; ``[]`` for an
        unknown or malformed id. One query; users come in joining order (the gateway orders them by
        username and applies its cap)."""
        wanted = {room_id: parse_uuid(room_id) for room_id in room_ids}
        members = self.storage.participants_of([room_uuid for room_uuid in wanted.values() if room_uuid])
        return {room_id: members.get(str(room_uuid), []) if room_uuid else [] for room_id, room_uuid in wanted.items()}

    @rpc(expected_exceptions=EXPECTED)
    def is_participant(self, room_id: str, user_id: str) -> bool:
        """Whether ``user_id`` participates in ``room_id`` (``False`` for unknown or malformed ids)."""
        room_uuid, user = parse_uuid(room_id), parse_uuid(user_id)
        if room_uuid is None or user is None:
            return False
        return self.storage.is_participant(room_uuid, user)

    @rpc(expected_exceptions=EXPECTED)
    def room_access(self, host_id: str, slug: str, user_id: str) -> dict[str, Any]:
        """The room of host ``host_id`` whose slug is exactly ``slug``, and whether ``user_id``
        participates in it, in one query: ``{"room", "participant"}`` (a chat handshake's checks 3 and
        4, CONTRACT §10.2). ``NotFound("Room not found")`` as :meth:`get_room_by_host_slug`; an unknown
        or malformed ``user_id`` participates in nothing."""
        host = parse_uuid(host_id)
        row = None
        if host is not None and isinstance(slug, str) and storable(slug):
            row = self.storage.room_access(host, slug, parse_uuid(user_id))
        if row is None:
            raise NotFound(ROOM_NOT_FOUND)
        room = schemas.room_reply(row)
        participant = room.pop("participant")
        return {"room": room, "participant": bool(participant)}

    @rpc(expected_exceptions=EXPECTED)
    def members(self, room_id: str) -> list[str]:
        """The user ids of a room's participants, in joining order; ``[]`` for an unknown room."""
        room_uuid = parse_uuid(room_id)
        if room_uuid is None:
            return []
        return self.storage.participants_of([room_uuid]).get(str(room_uuid), [])

    # --- topics -------------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def list_topics(
        self, search: str | None = None, min_rooms: int | None = None, first: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """All topics, those without rooms included (``topics(search, minRooms)``, CONTRACT §5), as
        ``{"id": int, "name", "room_count"}``. ``search``: name contains it, case-insensitively;
        ``min_rooms``: at least that many rooms (``0``/``None`` ignored). Ordered by room count DESC,
        lower-cased name, name. Paged like :meth:`list_rooms`."""
        limit, offset = check_paging(first, offset, self._list_cap())
        search = validation.search_text(search)
        if search is not None and not storable(search):
            return []
        if min_rooms is not None and (isinstance(min_rooms, bool) or not isinstance(min_rooms, int)):
            raise TypeError(f"min_rooms must be an integer, not {type(min_rooms).__name__}")
        return [schemas.topic(row) for row in self.storage.list_topics(search, min_rooms, limit, offset)]

    @rpc(expected_exceptions=EXPECTED)
    def get_topics(self, ids: list[int | str]) -> list[dict[str, Any] | None]:
        """The topics with these ids (ints or their strings), aligned with ``ids``: ``None`` for an
        unknown or malformed id. One query, for the gateway's DataLoader."""
        wanted = [validation.parse_topic_id(topic_id) for topic_id in ids]
        rows = self.storage.get_topics([topic_id for topic_id in wanted if topic_id is not None])
        return [schemas.topic(rows[topic_id]) if topic_id in rows else None for topic_id in wanted]

    # --- events of other contexts -------------------------------------------------------------------

    # The handler's queue is durable, so a user deleted while this service was down is handled when it
    # comes back; a failure (the database away) requeues the event rather than losing the cascade.
    @event_handler("users", "user_deleted", requeue_on_error=True)
    def on_user_deleted(self, payload: dict[str, Any]) -> None:
        """A deleted user's rooms and memberships go (CONTRACT §8.1 deletion, B3): each hosted room is
        deleted (``room_deleted``), each other membership removed (``participant_left``). Idempotent: a
        redelivered event finds nothing left to do."""
        user = parse_uuid(payload.get("id")) if isinstance(payload, dict) else None
        if user is None:
            log.warning("user_deleted event without a valid user id ignored", extra={"payload": repr(payload)[:200]})
            return
        with self.storage.transaction():
            hosted = self.storage.delete_rooms_hosted_by(user)
            for room in hosted:
                self.storage.emit(events.ROOM_DELETED, events.room_deleted(str(room.id), str(room.host_id)))
            left = self.storage.remove_memberships_of(user)
            for room_id, version in left:
                self.storage.emit(events.PARTICIPANT_LEFT, events.participant_left(str(room_id), str(user), version))
        if hosted or left:
            log.info(
                "deleted user's rooms and memberships removed",
                extra={"user_id": str(user), "rooms_deleted": len(hosted), "memberships_removed": len(left)},
            )

    # --- helpers ------------------------------------------------------------------------------------

    def _locked_room(self, room_id: uuid.UUID) -> Any:
        row = self.storage.get_room(room_id, lock=True)
        if row is None:
            raise NotFound(ROOM_NOT_FOUND)
        return row

    def _hosted_room(self, room_id: uuid.UUID, user_id: Any) -> Any:
        """The room, locked, if ``user_id`` hosts it; else ``NotFound`` / ``PermissionDenied``."""
        row = self._locked_room(room_id)
        if parse_uuid(user_id) != row.host_id:
            raise PermissionDenied()
        return row

    def _list_cap(self) -> int:
        return int(self.config.get("ROOMS_LIST_CAP") or ROOMS_LIST_CAP)


def _room_uuid(room_id: Any) -> uuid.UUID:
    room_uuid = parse_uuid(room_id)
    if room_uuid is None:
        raise NotFound(ROOM_NOT_FOUND)
    return room_uuid


def _user_uuid(user_id: Any) -> uuid.UUID:
    user = parse_uuid(user_id)
    if user is None:
        raise NotFound(USER_NOT_FOUND)
    return user
