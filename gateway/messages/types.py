"""GraphQL types of the messages part of the schema, with the names and nullability of §2.1 and B7a.

A :class:`MessageType` is built from a messages-service record (:meth:`MessageType.from_record`); its
``user`` and ``room`` are resolved through the request's DataLoaders, which
:func:`gateway.messages.loaders.prepare_messages` has filled for the whole list beforehand, so they are
answered from what is loaded (:func:`~gateway.graphql.execution.in_hand`) without a resolver call or a
DataLoader future per row; the resolvers load what is not (a subscription's message, for one).
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.graphql import errors
from gateway.graphql.context import GraphQLContext
from gateway.graphql.execution import in_hand
from gateway.graphql.loading import NOT_LOADED, made_once
from gateway.graphql.scalars import CanonicalDateTime, CanonicalUUID
from gateway.rooms.loaders import room_loader
from gateway.rooms.types import RoomType
from gateway.users.loaders import user_loader
from gateway.users.types import UserType

MESSAGE_NOT_FOUND = "Message not found"


def message_not_found() -> errors.GatewayError:
    """``Message not found`` + ``NOT_FOUND`` (§7.1)."""
    return errors.GatewayError(MESSAGE_NOT_FOUND, errors.NOT_FOUND)


# What a message's ``user`` and ``room`` are when a message list has loaded them
# (gateway.graphql.execution.in_hand); NOT_LOADED leaves them to their resolvers.


def _author_in_hand(message: MessageType, context: GraphQLContext) -> UserType | Any:
    record = context.loaded(user_loader, message.user_id)
    return NOT_LOADED if record is None or record is NOT_LOADED else made_once(context, UserType.from_record, record)


def _room_in_hand(message: MessageType, context: GraphQLContext) -> RoomType | Any:
    record = context.loaded(room_loader, message.room_id)
    return NOT_LOADED if record is None or record is NOT_LOADED else RoomType.from_record(record)


@strawberry.type(name="MessageType", description="A chat message of a room.")
class MessageType:
    """A message; ``user`` and ``room`` come from the request's DataLoaders."""

    id: CanonicalUUID = strawberry.field(description="The message's id (UUID4).")

    @strawberry.field(description="The author.", metadata=in_hand(_author_in_hand))
    async def user(self, info: Info[GraphQLContext, None]) -> UserType:
        """Never null: messages whose author is gone are left out before they get here (§6.2
        deleteAccount); should one slip through (deleted mid-request), it reads as ``Message not found``."""
        record = await info.context.loader(user_loader).load(self.user_id)
        if record is None:
            raise message_not_found()
        return UserType.from_record(record)

    @strawberry.field(description="The room the message was posted in.", metadata=in_hand(_room_in_hand))
    async def room(self, info: Info[GraphQLContext, None]) -> RoomType:
        """Never null: messages of deleted rooms are left out before they get here; should one slip
        through (deleted mid-request), it reads as ``Message not found``."""
        record = await info.context.loader(room_loader).load(self.room_id)
        if record is None:
            raise message_not_found()
        return RoomType.from_record(record)

    body: str = strawberry.field(description="The text as sent (not trimmed), at most 500 characters.")
    edited: bool = strawberry.field(description="True once an edit changed the body (C6).")
    updated: CanonicalDateTime = strawberry.field(description="When the body last changed (creation time until then).")
    created: CanonicalDateTime = strawberry.field(description="When the message was posted.")
    seq: int = strawberry.field(description="The room's sequence number of the message's last change (B7a).")
    user_id: strawberry.Private[str]
    room_id: strawberry.Private[str]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MessageType:
        """Build from a messages-service record ``{"id", "room_id", "user_id", "body", "edited",
        "created", "updated", "seq"}`` (``user_id`` and ``room_id`` stay private)."""
        return cls(
            id=record["id"],
            body=record["body"],
            edited=bool(record["edited"]),
            updated=record["updated"],
            created=record["created"],
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
