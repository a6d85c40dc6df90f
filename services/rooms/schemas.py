"""What the rooms service hands its callers: JSON-able dicts, never rows."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def _utc(moment: datetime) -> str:
    """ISO 8601 in UTC with ``+00:00`` (CONTRACT §2.3 ``DateTime``)."""
    return moment.astimezone(timezone.utc).isoformat()


def room(row: Any) -> dict[str, Any]:
    """The RPC shape of a room: ``{"id", "name", "slug", "host_id", "topic_id", "description",
    "created", "updated", "participant_count"}``; ids are lowercase UUID strings, ``topic_id`` an int."""
    return {
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


def topic(row: Any) -> dict[str, Any]:
    """The RPC shape of a topic: ``{"id": int, "name", "room_count"}``."""
    return {"id": row.id, "name": row.name, "room_count": row.room_count}
