"""Events of the messages context.

Published on the ``messages.events`` exchange (through the outbox, after commit), one per change of a
room's messages, each carrying the room's sequence number of that change (B7a):

* ``message_created``: ``{"room_id", "seq", "message"}``
* ``message_updated``: ``{"room_id", "seq", "message"}``; also for an edit that left the body as it
  was (C7), with the message's current values and current ``seq`` (nothing was written, C6)
* ``message_deleted``: ``{"room_id", "seq", "id"}``; also for each message of a deleted user (B3)

``message`` is the RPC shape (:func:`services.messages.schemas.message`). Consumer: the gateway, which
relays them to sockets and subscriptions.

Consumed (their payloads read here only, through the functions below):

* ``rooms.room_created``: the room, ``{"id", "host_id", ...}``; the host's membership
* ``rooms.participant_joined`` / ``rooms.participant_left``: ``{"room_id", "user_id",
  "membership_version"}``; the version orders one membership's changes (an event from before versions
  has none: version 0)
* ``rooms.room_deleted``: ``{"id", "host_id"}``
* ``users.user_deleted``: ``{"id", "username"}``
"""

from __future__ import annotations

import uuid
from typing import Any

from common.validation import parse_uuid

MESSAGE_CREATED = "message_created"
MESSAGE_UPDATED = "message_updated"
MESSAGE_DELETED = "message_deleted"


def message_created(message: dict[str, Any]) -> dict[str, Any]:
    return {"room_id": message["room_id"], "seq": message["seq"], "message": message}


def message_updated(message: dict[str, Any]) -> dict[str, Any]:
    return {"room_id": message["room_id"], "seq": message["seq"], "message": message}


def message_deleted(room_id: str, seq: int, message_id: str) -> dict[str, Any]:
    return {"room_id": room_id, "seq": seq, "id": message_id}


# --- events of other contexts ----------------------------------------------------------------------


def _field(payload: Any, key: str) -> uuid.UUID | None:
    return parse_uuid(payload.get(key)) if isinstance(payload, dict) else None


def created_room_host(payload: Any) -> tuple[uuid.UUID, uuid.UUID] | None:
    """``(room_id, host_id)`` of a ``room_created`` payload: the room itself, or (tolerated) the room
    under ``"room"``; ``None`` when it names no room and host."""
    room = payload.get("room") if isinstance(payload, dict) and isinstance(payload.get("room"), dict) else payload
    room_id, host_id = _field(room, "id"), _field(room, "host_id")
    return (room_id, host_id) if room_id and host_id else None


def membership(payload: Any) -> tuple[uuid.UUID, uuid.UUID, int] | None:
    """``(room_id, user_id, membership_version)`` of a ``participant_joined`` / ``participant_left``
    payload, the version 0 when it has none; ``None`` when an id is missing or malformed, or the version
    is not a non-negative integer."""
    room_id, user_id = _field(payload, "room_id"), _field(payload, "user_id")
    if not (room_id and user_id):
        return None
    version = payload.get("membership_version")
    if version is None:
        return room_id, user_id, 0
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        return None
    return room_id, user_id, version


def deleted_room(payload: Any) -> uuid.UUID | None:
    """The room id of a ``room_deleted`` payload, or ``None``."""
    return _field(payload, "id")


def deleted_user(payload: Any) -> uuid.UUID | None:
    """The user id of a ``user_deleted`` payload, or ``None``."""
    return _field(payload, "id")
