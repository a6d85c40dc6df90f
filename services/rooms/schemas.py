"""What the rooms service hands its callers: JSON-able dicts, never rows."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timezone
from typing import Any

PARTICIPANT_IDS = "participant_ids"
TOPIC = "topic"
ROOM_DETAILS = (PARTICIPANT_IDS, TOPIC)
"""What a room read may ``include`` beyond the room itself, each the name of the key it adds."""


def _utc(moment: datetime) -> str:
    """ISO 8601 in UTC with ``+00:00`` (CONTRACT §2.3 ``DateTime``)."""
    return moment.astimezone(timezone.utc).isoformat()


def room(row: Any, details: Collection[str] = ()) -> dict[str, Any]:
    """The RPC shape of a room: ``{"id", "name", "slug", "host_id", "topic_id", "description",
    "created", "updated", "participant_count"}``; ids are lowercase UUID strings, ``topic_id`` an int.

    ``details`` (of :data:`ROOM_DETAILS`, read by the storage into the row) add ``"participant_ids"``,
    the participants' user ids in joining order, and ``"topic"``, ``{"id": int, "name"}`` (no room
    count: that would cost a count per topic)."""
    record = {
        "id": str(row.id),
        "name": row.name,
        "slug": row.slug,
        "host_id": str(row.host_id),
        "topic_id": row.topic_id,
        "description": row.description,
        "created": _utc(row.created),
        "updated": _utc(row.updated),
        "participant_count": row.participant_count,
    }
    if PARTICIPANT_IDS in details:
        record[PARTICIPANT_IDS] = [str(user) for user in row.participant_ids or ()]
    if TOPIC in details:
        record[TOPIC] = {"id": row.topic_id, "name": row.topic_name}
    return record


def room_replies(rows: Sequence[Any], details: Collection[str] = ()) -> list[dict[str, Any]]:
    """:func:`room` of each row the storage read in reply form: its columns named and ordered as the
    keys, ids and times already the strings :func:`room` makes, ``participant_ids`` text, ``topic_name``
    beside ``topic_id``. Nothing is converted per field, and the keys are looked up once per list."""
    if not rows:
        return []
    keys = rows[0]._fields
    records = [dict(zip(keys, row)) for row in rows]
    if PARTICIPANT_IDS in details:
        for record in records:
            if record[PARTICIPANT_IDS] is None:  # no participants: the aggregate of no rows
                record[PARTICIPANT_IDS] = []
    if TOPIC in details:
        for record in records:
            record[TOPIC] = {"id": record["topic_id"], "name": record.pop("topic_name")}
    return records


def room_reply(row: Any, details: Collection[str] = ()) -> dict[str, Any]:
    """:func:`room_replies` of one row."""
    return room_replies([row], details)[0]


def topic(row: Any) -> dict[str, Any]:
    """The RPC shape of a topic: ``{"id": int, "name", "room_count"}``."""
    return {"id": row.id, "name": row.name, "room_count": row.room_count}
