"""GraphQL types of the messages part of the schema, with the names and nullability of §2.1 and B7a.

A :class:`MessageType` is built from a messages-service record (:meth:`MessageType.from_record`); its
``user`` and ``room`` are resolved through the request's DataLoaders, which
:func:`gateway.messages.loaders.prepare_messages` has filled for the whole list beforehand.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.graphql import errors
from gateway.graphql.context import GraphQLContext
from gateway.rooms.loaders import room_loader
from gateway.rooms.types import RoomType
from gateway.users.loaders import user_loader
from gateway.users.types import UserType

MESSAGE_NOT_FOUND = "Message not found"


def message_not_found() -> errors.GatewayError:
    """``Message not found`` + ``NOT_FOUND`` (§7.1)."""
    return errors.GatewayError(MESSAGE_NOT_FOUND, errors.NOT_FOUND)


@strawberry.type(name="MessageType", description="A chat message of a room.")
class MessageType:
    """A message; ``user`` and ``room`` come from the request's DataLoaders."""

    id: uuid.UUID = strawberry.field(description="The message's id (UUID4).")

    @strawberry.field(description="The author.")
    async def user(self, info: Info[GraphQLContext, None]) -> UserType:
        """Never null: messages whose author is gone are left out before they get here (§6.2
        deleteAccount); should one slip through (deleted mid-request), it reads as ``Message not found``."""
        record = await info.context.loader(user_loader).load(self.user_id)
        if record is None:
            raise message_not_found()
        return UserType.from_record(record)

    @strawberry.field(description="The room the message was posted in.")
    async def room(self, info: Info[GraphQLContext, None]) -> RoomType:
        """Never null: messages of deleted rooms are left out before they get here; should one slip
        through (deleted mid-request), it reads as ``Message not found``."""
        record = await info.context.loader(room_loader).load(self.room_id)
        if record is None:
            raise message_not_found()
        return RoomType.from_record(record)

    body: str = strawberry.field(description="The text as sent (not trimmed), at most 500 characters.")
    edited: bool = strawberry.field(description="True once an edit changed the body (C6).")
    updated: datetime = strawberry.field(description="When the body last changed (creation time until then).")
    created: datetime = strawberry.field(description="When the message was posted.")
    seq: int = strawberry.field(description="The room's sequence number of the message's last change (B7a).")
    user_id: strawberry.Private[str]
    room_id: strawberry.Private[str]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MessageType:
        """Build from a messages-service record ``{"id", "room_id", "user_id", "body", "edited",
        "created", "updated", "seq"}`` (``user_id`` and ``room_id`` stay private)."""
        return cls(
            id=uuid.UUID(str(record["id"])),
            body=record["body"],
            edited=bool(record["edited"]),
            updated=datetime.fromisoformat(record["updated"]),
            created=datetime.fromisoformat(record["created"]),
            seq=int(record["seq"]),
            user_id=str(record["user_id"]),
            room_id=str(record["room_id"]),
        )


@strawberry.type(name="UpdateMessage", description="The result of updateMessage.")
class UpdateMessage:
    """Returned by ``updateMessage``."""

    message: MessageType | None = strawberry.field(description="The message after the change.")


@strawberry.type(name="DeleteMessage", description="The result of deleteMessage.")
class DeleteMessage:
    """Returned by ``deleteMessage``."""

    success: bool | None = strawberry.field(description="Always true on success.")
