"""Query fields of the messages domain: ``messages`` and ``messagesByUser`` (§5, B2).

Host and user slugs are usernames, resolved with ``users.get_by_username``. Every message list goes
through :func:`gateway.messages.loaders.prepare_messages`, which batches authors and rooms and leaves out
messages whose author or room is gone. The rooms are read with the participant ids and topic the
operation selects of them (:func:`gateway.messages.loaders.room_needs`), so those cost no call of their
own.
"""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.graphql import errors
from gateway.graphql.context import GraphQLContext
from gateway.graphql.pagination import check_non_negative, clamp, page
from gateway.messages import loaders
from gateway.messages.types import MessageType
from gateway.rooms.loaders import prime_room
from gateway.rooms.types import ROOM_NOT_FOUND

Context = Info[GraphQLContext, None]


def _value(argument: Any) -> Any:
    """An optional argument's value, ``None`` when it was not given."""
    return None if argument is strawberry.UNSET else argument


def _room_needs(info: Context) -> loaders.RoomNeeds:
    """What the operation selects of its messages' rooms."""
    return loaders.room_needs(loaders.subfields(info.selected_fields))


async def _messages(
    context: GraphQLContext, records: list[dict[str, Any]], needs: loaders.RoomNeeds
) -> list[MessageType | None]:
    ready = await loaders.prepare_messages(context, records, needs)
    return [MessageType.from_record(record) for record in ready]


async def _room(context: GraphQLContext, host_slug: str, room_slug: str, needs: loaders.RoomNeeds) -> dict[str, Any]:
    """The room of this host username and slug (both exact), else ``Room not found`` (``NOT_FOUND``),
    also when the host is unknown; with the participant ids and topic ``needs`` asks for."""
    try:
        host = await context.user_by_username(host_slug)
    except errors.GatewayError as exc:
        if exc.code == errors.NOT_FOUND:
            raise errors.GatewayError(ROOM_NOT_FOUND, errors.NOT_FOUND) from None
        raise
    context.prime_user(host)
    record: dict[str, Any] = await context.call(
        "rooms", "get_room_by_host_slug", str(host["id"]), room_slug, **needs.include()
    )
    prime_room(context, record)
    return record


@strawberry.type
class MessagesQuery:
    """Root query fields about messages."""

    @strawberry.field(description="A room's messages, oldest first; public, no participation needed.")
    async def messages(
        self,
        info: Context,
        host_slug: str,
        room_slug: str,
        last: int | None = strawberry.UNSET,
        before: uuid.UUID | None = strawberry.UNSET,
    ) -> list[MessageType | None] | None:
        """The room by host username and slug, else ``Room not found`` (``NOT_FOUND``); readable
        anonymously and by non-participants (A11). Ordered by created ASC, then id ASC. ``before`` keeps
        the messages strictly before that one (``Message not found`` when it names no message of this
        room), ``last`` the final ``last`` of those; without ``last``, the newest N (B2)."""
        context = info.context
        last, before = _value(last), _value(before)
        check_non_negative(last=last)
        cap = context.settings.list_cap
        needs = _room_needs(info)
        room = await _room(context, host_slug, room_slug, needs)
        limit = clamp(last, cap)
        if limit == 0 and before is None:
            return []
        records = await context.call(
            "messages",
            "history",
            room["id"],
            last=limit,
            before=None if before is None else str(before),
            cap=cap,
        )
        return await _messages(context, records, needs)

    @strawberry.field(description="A user's messages in every room, newest first.")
    async def messages_by_user(
        self,
        info: Context,
        user_slug: str,
        first: int | None = strawberry.UNSET,
        offset: int | None = strawberry.UNSET,
    ) -> list[MessageType | None] | None:
        """The user by exact username, else ``User not found`` (``NOT_FOUND``). Ordered by created DESC,
        then id DESC; paged by ``first``/``offset`` (B2)."""
        context = info.context
        cap = context.settings.list_cap
        window = page(_value(first), _value(offset), cap)
        user = await context.user_by_username(user_slug)
        context.prime_user(user)
        if window.first == 0:
            return []
        records = await context.call(
            "messages", "messages_by_user", str(user["id"]), first=window.first, offset=window.offset, cap=cap
        )
        return await _messages(context, records, _room_needs(info))
