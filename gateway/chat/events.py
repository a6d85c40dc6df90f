"""What the relay carries: one change of a room's messages (B7a), from a ``messages.events`` event or
from a catch-up read (``messages.changes_since`` / ``messages.messages_after``).

The messages service publishes ``message_created`` / ``message_updated`` ``{"room_id", "seq", "message"}``
and ``message_deleted`` ``{"room_id", "seq", "id"}``; ``message`` is its RPC record
``{"id", "room_id", "user_id", "body", "edited", "created", "updated", "seq"}``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

NEW = "new"
UPDATE = "update"
DELETE = "delete"

ACTIONS = {"message_created": NEW, "message_updated": UPDATE, "message_deleted": DELETE}
"""Event type (the routing key on ``messages.events``) → frame action."""

MessageRecord = dict[str, Any]


def canonical_id(value: Any) -> str | None:
    """A UUID in its canonical lowercase form, ``None`` when ``value`` is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _seq(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass(eq=False, slots=True)
class ChatEvent:
    """One change of a room's messages. Shared by every local subscriber of the room, so what is derived
    from it (the author lookup, the encoded socket frame) is computed once per gateway, not per socket."""

    action: str
    room_id: str
    message_id: str
    seq: int
    message: MessageRecord | None = None
    """The stored message (``new``, ``update``); ``None`` for ``delete``."""
    author: asyncio.Future[MessageRecord | None] | None = field(default=None, repr=False)
    """Set by the relay for ``new`` events: the author's user record, ``None`` when the account is gone."""
    frame: str | None = field(default=None, repr=False)
    """The encoded socket frame, once built (``""``: nothing to send)."""

    @property
    def author_id(self) -> str | None:
        """The author's id (``new`` and ``update`` events)."""
        return None if self.message is None else canonical_id(self.message.get("user_id"))

    @classmethod
    def from_message_event(cls, event_type: str, payload: Any) -> ChatEvent | None:
        """The change a ``messages.events`` event describes; ``None`` for another event type or a payload
        that does not have the documented shape."""
        action = ACTIONS.get(event_type)
        if action is None or not isinstance(payload, dict):
            return None
        room_id, seq = canonical_id(payload.get("room_id")), _seq(payload.get("seq"))
        if room_id is None or seq is None:
            return None
        if action == DELETE:
            message_id = canonical_id(payload.get("id"))
            return None if message_id is None else cls(DELETE, room_id, message_id, seq)
        message = payload.get("message")
        message_id = canonical_id(message.get("id")) if isinstance(message, dict) else None
        if message_id is None:
            return None
        return cls(action, room_id, message_id, seq, message)

    @classmethod
    def from_change(cls, room_id: str, change: dict[str, Any]) -> ChatEvent:
        """A change of ``messages.changes_since`` (``{"action", "seq", "message"}`` or ``{"action":
        "delete", "id", "seq"}``)."""
        if change["action"] == DELETE:
            return cls(DELETE, room_id, str(change["id"]), int(change["seq"]))
        message = change["message"]
        return cls(str(change["action"]), room_id, str(message["id"]), int(change["seq"]), message)

    @classmethod
    def replayed(cls, message: MessageRecord) -> ChatEvent:
        """A message of ``messages.messages_after``, replayed as ``new`` with its current values (B7)."""
        return cls(NEW, str(message["room_id"]), str(message["id"]), int(message["seq"]), message)
