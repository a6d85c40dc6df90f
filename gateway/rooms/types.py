"""GraphQL types of the rooms part of the schema, with the names and nullability of §2.1 and §2.2.

A :class:`RoomType` is built from a rooms-service record (:meth:`RoomType.from_record`); its ``host``,
``topic`` and ``participants`` are resolved through the request's DataLoaders (:mod:`gateway.rooms.loaders`),
so a list of any length costs one batched call per entity. Room lists load all of it before their rows
are resolved, so those fields are answered from what is loaded (:func:`~gateway.graphql.execution.in_hand`),
without a resolver call or a DataLoader future per row and field; the resolvers load what is not.
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
from gateway.rooms import loaders
from gateway.users.types import UserType

ROOM_NOT_FOUND = "Room not found"


@strawberry.type(name="TopicType", description="A topic rooms are filed under.")
class TopicType:
    """Only ``id`` and ``name``: never its rooms or room count (§3)."""

    id: strawberry.ID = strawberry.field(description='The topic\'s integer key, as a string (e.g. "1").')
    name: str = strawberry.field(description="ASCII letters only, unique (case-sensitive).")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TopicType:
        """Build from a rooms-service topic record ``{"id": int, "name", "room_count"}``."""
        return cls(id=strawberry.ID(str(record["id"])), name=record["name"])


# What a room's ``host``, ``topic`` and ``participants`` are when a room list has loaded them
# (gateway.graphql.execution.in_hand); NOT_LOADED leaves them to their resolvers.


def _host_in_hand(room: RoomType, context: GraphQLContext) -> UserType | Any:
    record = context.loaded(loaders.user_loader, room.host_id)
    return NOT_LOADED if record is None or record is NOT_LOADED else made_once(context, UserType.from_record, record)


def _topic_in_hand(room: RoomType, context: GraphQLContext) -> TopicType | Any:
    record = context.loaded(loaders.topic_loader, room.topic_id)
    return NOT_LOADED if record is None or record is NOT_LOADED else made_once(context, TopicType.from_record, record)


def _participants_in_hand(room: RoomType, context: GraphQLContext) -> list[UserType] | Any:
    records = loaders.participants_in_hand(context, room.id)
    if records is NOT_LOADED:
        return NOT_LOADED
    return [made_once(context, UserType.from_record, record) for record in records]


@strawberry.type(name="RoomType", description="A chat room, hosted by a user under a topic.")
class RoomType:
    """A room; ``host``, ``topic`` and ``participants`` come from the request's DataLoaders."""

    id: CanonicalUUID = strawberry.field(description="The room's id (UUID4).")
    name: str = strawberry.field(description="Unique per host; never changes.")
    slug: str = strawberry.field(description="From the name at creation, unique per host; used in room URLs.")

    @strawberry.field(description="The user hosting the room.", metadata=in_hand(_host_in_hand))
    async def host(self, info: Info[GraphQLContext, None]) -> UserType:
        """Never null: rooms whose host is gone are left out before they get here (§6.2 deleteAccount);
        should one slip through (the account deleted mid-request), it reads as ``Room not found``."""
        record = await info.context.loader(loaders.user_loader).load(self.host_id)
        if record is None:
            raise errors.GatewayError(ROOM_NOT_FOUND, errors.NOT_FOUND)
        return UserType.from_record(record)

    @strawberry.field(description="The room's topic.", metadata=in_hand(_topic_in_hand))
    async def topic(self, info: Info[GraphQLContext, None]) -> TopicType:
        """Topics are never deleted, so every room's topic exists."""
        record = await info.context.loader(loaders.topic_loader).load(self.topic_id)
        if record is None:
            raise errors.internal_error()
        return TopicType.from_record(record)

    description: str = strawberry.field(description='Free text, "" by default.')

    @strawberry.field(description="Every participant, ordered by username.", metadata=in_hand(_participants_in_hand))
    async def participants(self, info: Info[GraphQLContext, None]) -> list[UserType]:
        """Ordered by username ASC, then id (C11, §3), at most the list cap N (B2); users whose account
        is gone (the deletion cascade still in flight) are left out."""
        records = await loaders.participants(info.context, self.id)
        return [UserType.from_record(record) for record in records]

    updated: CanonicalDateTime = strawberry.field(
        description="Last updateRoom (not bumped by joins, leaves or messages)."
    )
    created: CanonicalDateTime = strawberry.field(description="When the room was created.")
    host_id: strawberry.Private[str]
    topic_id: strawberry.Private[int]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RoomType:
        """Build from a rooms-service room record (``host_id`` and ``topic_id`` stay private)."""
        return cls(
            id=record["id"],
            name=record["name"],
            slug=record["slug"],
            description=record.get("description") or "",
            updated=record["updated"],
            created=record["created"],
            host_id=str(record["host_id"]),
            topic_id=int(record["topic_id"]),
        )

@strawberry.type(name="CreateRoom", description="The result of createRoom.")
class CreateRoom:
    """Returned by ``createRoom``."""

    room: RoomType | None = strawberry.field(description="The new room, hosted by the caller.")


@strawberry.type(name="UpdateRoom", description="The result of updateRoom.")
class UpdateRoom:
    """Returned by ``updateRoom``."""

    room: RoomType | None = strawberry.field(description="The room after the change.")


@strawberry.type(name="DeleteRoom", description="The result of deleteRoom.")
class DeleteRoom:
    """Returned by ``deleteRoom``."""

    success: bool | None = strawberry.field(description="Always true on success.")


@strawberry.type(name="JoinRoom", description="The result of joinRoom.")
class JoinRoom:
    """Returned by ``joinRoom``."""

    room: RoomType | None = strawberry.field(description="The room, the caller now among its participants.")


@strawberry.type(name="LeaveRoom", description="The result of leaveRoom.")
class LeaveRoom:
    """Returned by ``leaveRoom``."""

    room: RoomType | None = strawberry.field(description="The room, the caller no longer among its participants.")
