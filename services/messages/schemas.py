"""What the messages service hands its callers: JSON-able dicts, never rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


def _utc(moment: datetime) -> str:
    """ISO 8601 in UTC with ``+00:00``, the fraction omitted when 0 (CONTRACT §2.3 ``DateTime``)."""
    return moment.astimezone(UTC).isoformat()


def message(row: Any) -> dict[str, Any]:
    """The RPC shape of a message: ``{"id", "room_id", "user_id", "body", "edited", "created",
    "updated", "seq"}``; ids are lowercase UUID strings, ``seq`` the room's sequence number of the
    message's last change (B7a)."""
    return {
        "id": str(row.id),
        "room_id": str(row.room_id),
        "user_id": str(row.user_id),
        "body": row.body,
        "edited": row.edited,
        "created": _utc(row.created),
        "updated": _utc(row.updated),
        "seq": row.seq,
    }


def message_replies(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """:func:`message` of each row the storage read in reply form: its columns named and ordered as the
    keys, ids and times already the strings :func:`message` makes. Nothing is converted per field, and
    the keys are looked up once per list, not per row."""
    if not rows:
        return []
    keys = rows[0]._fields
    return [dict(zip(keys, row)) for row in rows]


def change(row: Any, since_seq: int) -> dict[str, Any]:
    """How catch-up from ``since_seq`` reports a message whose last change came after it (B7b).

    One change per message, its latest: a tombstone is ``{"action": "delete", "id", "seq"}``; a message
    created after ``since_seq`` is ``{"action": "new", "seq", "message"}`` with its current values, an
    older one edited since is ``{"action": "update", "seq", "message"}``. A message both created and
    deleted after ``since_seq`` is still reported, as a ``delete``: harmless, since the client never saw
    it and removing an unknown id is a no-op, and it spares catch-up a second look at each tombstone.
    """
    if row.seq <= since_seq:
        raise ValueError(f"message {row.id} last changed at {row.seq}, not after {since_seq}")
    if row.deleted:
        return {"action": "delete", "id": str(row.id), "seq": row.seq}
    action = "new" if row.created_seq > since_seq else "update"
    return {"action": action, "seq": row.seq, "message": message(row)}
