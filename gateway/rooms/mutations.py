"""Mutation fields of the rooms domain: ``createRoom``, ``updateRoom``, ``deleteRoom``, ``joinRoom`` and
``leaveRoom`` (§6.2, B3).

Each checks the login first (§4.1), then lets the rooms service decide; its domain errors arrive mapped
by :mod:`gateway.graphql.errors` (raw errors as a dict repr + ``BAD_USER_INPUT``, form errors as
``Invalid data`` + ``extensions.errors``, lost races as ``CONFLICT``, ``Room not found``,
``Permission denied``).
"""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.graphql import errors
from gateway.graphql.context import GraphQLContext
from gateway.rooms import loaders
from gateway.rooms.types import ROOM_NOT_FOUND, CreateRoom, DeleteRoom, JoinRoom, LeaveRoom, RoomType, UpdateRoom

Context = Info[GraphQLContext, None]


async def _room(context: GraphQLContext, record: dict[str, Any]) -> RoomType:
    """The room of a mutation's answer; ``Room not found`` if its host is already gone (an account
    deletion whose cascade is in flight), never a room with a dangling host."""
    ready = await loaders.prepare_rooms(context, [record])
    if not ready:
        raise errors.GatewayError(ROOM_NOT_FOUND, errors.NOT_FOUND)
    return RoomType.from_record(ready[0])


@strawberry.type
class RoomsMutation:
    """Root mutation fields about rooms."""

    @strawberry.mutation(description="Create a room hosted by the caller; login required.")
    async def create_room(self, info: Context, description: str, name: str, topic_name: str) -> CreateRoom | None:
        """The topic name is checked first (raw errors), then name and description (``Invalid data``),
        then the caller's (host, name) uniqueness (raw ``You already have a room with this name.``;
        ``CONFLICT`` when lost to a concurrent create, C14). The topic is created when missing, in the
        room's transaction (A10, C9); the slug gets the first free ``-2``, ``-3``, … suffix."""
        context = info.context
        user = await context.require_user()
        record = await context.call("rooms", "create_room", str(user["id"]), name, topic_name, description)
        return CreateRoom(room=await _room(context, record))

    @strawberry.mutation(description="Change a room's description and/or topic; login required, host only.")
    async def update_room(
        self,
        info: Context,
        room_id: uuid.UUID,
        description: str | None = strawberry.UNSET,
        topic_name: str | None = strawberry.UNSET,
    ) -> UpdateRoom | None:
        """``Room not found``, then ``Permission denied`` unless the caller hosts it. ``topicName``
        omitted or ``null`` keeps the topic (C8), otherwise it is checked and got or created as in
        ``createRoom``; ``description`` given (``null`` clears it to ``""``) replaces the current one.
        ``updated`` is bumped; name and slug never change."""
        context = info.context
        user = await context.require_user()
        changes: dict[str, Any] = {}
        if description is not strawberry.UNSET:
            changes["description"] = description
        if topic_name is not strawberry.UNSET and topic_name is not None:
            changes["topic_name"] = topic_name
        record = await context.call("rooms", "update_room", str(room_id), str(user["id"]), changes)
        return UpdateRoom(room=await _room(context, record))

    @strawberry.mutation(description="Delete a room with its messages and memberships; login required, host only.")
    async def delete_room(self, info: Context, room_id: uuid.UUID) -> DeleteRoom | None:
        """``Room not found``, then ``Permission denied`` unless the caller hosts it (participation is
        not required). The topic stays."""
        context = info.context
        user = await context.require_user()
        await context.call("rooms", "delete_room", str(room_id), str(user["id"]))
        return DeleteRoom(success=True)

    @strawberry.mutation(description="Join a room as a participant; login required.")
    async def join_room(self, info: Context, room_id: uuid.UUID) -> JoinRoom | None:
        """``Room not found``; idempotent (the host or a participant joining again changes nothing).
        ``updated`` is not bumped."""
        context = info.context
        user = await context.require_user()
        record = await context.call("rooms", "join_room", str(room_id), str(user["id"]))
        return JoinRoom(room=await _room(context, record))

    @strawberry.mutation(description="Leave a room; login required.")
    async def leave_room(self, info: Context, room_id: uuid.UUID) -> LeaveRoom | None:
        """``Room not found``; idempotent; the host may leave too, and the caller's messages stay.
        ``updated`` is not bumped."""
        context = info.context
        user = await context.require_user()
        record = await context.call("rooms", "leave_room", str(room_id), str(user["id"]))
        return LeaveRoom(room=await _room(context, record))
