"""Events the rooms service publishes on the ``rooms.events`` exchange (through the outbox, after commit).

* ``room_created``: the room (:func:`services.rooms.schemas.room`); the host's own membership follows
  as a ``participant_joined`` of the same transaction.
* ``room_updated``: the room after the change.
* ``room_deleted``: ``{"id", "host_id"}``; its memberships went with it (no ``participant_left`` each).
* ``participant_joined`` / ``participant_left``: ``{"room_id", "user_id", "membership_version"}``,
  only when a membership was really added or removed. ``membership_version`` (an integer) numbers the
  changes of each membership in the order they committed (a later join or leave of the same room and
  user has a higher one; a redelivered or replayed event keeps its own). The two events travel on
  separate queues, so a consumer may get them in any order, more than once: one that keeps, per
  (room, user), the change of the highest version it has seen ends at the true state.

Consumers: ``messages`` (room deletion, membership) and the gateway (socket re-checks, D12).
"""

from __future__ import annotations

from typing import Any

ROOM_CREATED = "room_created"
ROOM_UPDATED = "room_updated"
ROOM_DELETED = "room_deleted"
PARTICIPANT_JOINED = "participant_joined"
PARTICIPANT_LEFT = "participant_left"


def room_created(room: dict[str, Any]) -> dict[str, Any]:
    return dict(room)


def room_updated(room: dict[str, Any]) -> dict[str, Any]:
    return dict(room)


def room_deleted(room_id: str, host_id: str) -> dict[str, str]:
    return {"id": room_id, "host_id": host_id}


def participant_joined(room_id: str, user_id: str, membership_version: int) -> dict[str, Any]:
    return {"room_id": room_id, "user_id": user_id, "membership_version": membership_version}


def participant_left(room_id: str, user_id: str, membership_version: int) -> dict[str, Any]:
    return {"room_id": room_id, "user_id": user_id, "membership_version": membership_version}
