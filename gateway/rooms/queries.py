"""Query fields of the rooms domain: ``rooms``, ``roomsParticipatedByUser``, ``roomsNotParticipatedByUser``,
``room`` and ``topics`` (§5, B2).

Host and user slugs are usernames, resolved with ``users.get_by_username``. Every room read asks the
rooms service for the participant ids and topic of each room when the operation selects them
(:class:`~gateway.rooms.loaders.RoomNeeds`), then goes through
:func:`gateway.rooms.loaders.prepare_rooms`, which batches the hosts and participants in one
``users.get_many`` and leaves out rooms whose host is gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from strawberry.types import Info
from strawberry.types.nodes import Selection

from gateway.graphql import errors
from gateway.graphql.context import GraphQLContext
from gateway.graphql.pagination import Page, page
from gateway.rooms import loaders
from gateway.rooms.types import ROOM_NOT_FOUND, RoomType, TopicType

Context = Info[GraphQLContext, None]


def _value(argument: Any) -> Any:
    """An optional argument's value, ``None`` when it was not given."""
    return None if argument is strawberry.UNSET else argument


def _window(context: GraphQLContext, first: Any, offset: Any) -> Page:
    return page(_value(first), _value(offset), context.settings.list_cap)


def _topic_names(topic: Any) -> list[str] | None:
    """The ``topic`` filter as the service takes it, ``None`` when it is to be ignored.

    GraphQL list coercion already turned a single string into a one-item list. ``null`` items and
    ``""`` match no topic, so they are dropped; a filter left with no names (``null``, ``[]``, ``""``,
    ``[null]``) is ignored (§5).
    """
    names = [name for name in (_value(topic) or []) if name]
    return names or None


def _child_fields(selections: Iterable[Selection]) -> set[str]:
    """The names of the fields selected directly on a type, through fragments."""
    names: set[str] = set()
    for selection in selections:
        name = getattr(selection, "name", None)
        if name is not None and not hasattr(selection, "type_condition"):  # a field, not a fragment
            names.add(name)
        else:
            names |= _child_fields(selection.selections)
    return names


def _room_fields(info: Context) -> set[str]:
    """What the operation selects on the rooms this root field returns."""
    return _child_fields(child for field in info.selected_fields for child in field.selections)


def _room_needs(info: Context) -> loaders.RoomNeeds:
    """What the operation selects of its rooms' participants and topic."""
    selected = _room_fields(info)
    return loaders.RoomNeeds(participants="participants" in selected, topics="topic" in selected)


async def _rooms(
    context: GraphQLContext, records: list[dict[str, Any]], needs: loaders.RoomNeeds
) -> list[RoomType | None]:
    ready = await loaders.prepare_rooms(context, records, participants=needs.participants, topics=needs.topics)
    return [RoomType.from_record(record) for record in ready]


async def _user_id(context: GraphQLContext, username: str) -> str:
    """The id of the user with exactly this username; ``User not found`` (``NOT_FOUND``) otherwise."""
    user = await context.user_by_username(username)
    context.prime_user(user)
    return str(user["id"])


async def _user_rooms(info: Context, method: str, user_slug: str, first: Any, offset: Any) -> list[RoomType | None]:
    """A user's room list from the rooms service's ``method`` (participated or not): the paging arguments
    checked first, then the user by exact username (``User not found``); ``first: 0`` asks no list."""
    context = info.context
    window = _window(context, first, offset)
    user_id = await _user_id(context, user_slug)
    if window.first == 0:
        return []
    needs = _room_needs(info)
    records = await context.call(
        "rooms", method, user_id, first=window.first, offset=window.offset, **needs.include()
    )
    return await _rooms(context, records, needs)


@strawberry.type
class RoomsQuery:
    """Root query fields about rooms and topics."""

    @strawberry.field(description="Rooms, filtered by host, text and topics; most participants first.")
    async def rooms(
        self,
        info: Context,
        host_slug: str | None = strawberry.UNSET,
        search: str | None = strawberry.UNSET,
        topic: list[str | None] | None = strawberry.UNSET,
        first: int | None = strawberry.UNSET,
        offset: int | None = strawberry.UNSET,
    ) -> list[RoomType | None] | None:
        """The filters are ANDed, each ignored when ``""``, ``null`` or ``[]``: ``hostSlug`` is the
        host's exact username (an unknown host gives ``[]``); ``search`` is contained, case-insensitively,
        in the name or the description; ``topic`` names the topic exactly (a single string is a one-name
        list). Ordered by participant count DESC, created DESC, id ASC; paged by ``first``/``offset``."""
        context = info.context
        window = _window(context, first, offset)
        host_id = None
        host_slug = _value(host_slug)
        if host_slug:
            try:
                host_id = await _user_id(context, host_slug)
            except errors.GatewayError as exc:
                if exc.code != errors.NOT_FOUND:
                    raise
                return []
        if window.first == 0:
            return []
        needs = _room_needs(info)
        records = await context.call(
            "rooms",
            "list_rooms",
            host_id=host_id,
            search=_value(search) or None,
            topics=_topic_names(topic),
            first=window.first,
            offset=window.offset,
            **needs.include(),
        )
        return await _rooms(context, records, needs)

    @strawberry.field(description="Rooms the user participates in; most participants first.")
    async def rooms_participated_by_user(
        self,
        info: Context,
        user_slug: str,
        first: int | None = strawberry.UNSET,
        offset: int | None = strawberry.UNSET,
    ) -> list[RoomType | None] | None:
        """The user by exact username, else ``User not found`` (``NOT_FOUND``). Ordered by true
        participant count DESC, created DESC, id ASC (C10); paged by ``first``/``offset``."""
        return await _user_rooms(info, "rooms_participated_by", user_slug, first, offset)

    @strawberry.field(description="Rooms the user does not participate in; most participants first.")
    async def rooms_not_participated_by_user(
        self,
        info: Context,
        user_slug: str,
        first: int | None = strawberry.UNSET,
        offset: int | None = strawberry.UNSET,
    ) -> list[RoomType | None] | None:
        """The user by exact username, else ``User not found`` (``NOT_FOUND``). Ordered by participant
        count DESC, created DESC, id ASC; paged by ``first``/``offset``."""
        return await _user_rooms(info, "rooms_not_participated_by", user_slug, first, offset)

    @strawberry.field(description="The room with this host username and room slug.")
    async def room(self, info: Context, host_slug: str, room_slug: str) -> RoomType | None:
        """Both exact, else ``Room not found`` (``NOT_FOUND``), also when the host is unknown or gone."""
        context = info.context
        try:
            host_id = await _user_id(context, host_slug)
        except errors.GatewayError as exc:
            if exc.code == errors.NOT_FOUND:
                raise errors.GatewayError(ROOM_NOT_FOUND, errors.NOT_FOUND) from None
            raise
        needs = _room_needs(info)
        record = await context.call("rooms", "get_room_by_host_slug", host_id, room_slug, **needs.include())
        (room,) = await _rooms(context, [record], needs) or [None]
        if room is None:
            raise errors.GatewayError(ROOM_NOT_FOUND, errors.NOT_FOUND)
        return room

    @strawberry.field(description="Topics, those without rooms included; most rooms first.")
    async def topics(
        self,
        info: Context,
        search: str | None = strawberry.UNSET,
        min_rooms: int | None = strawberry.UNSET,
        first: int | None = strawberry.UNSET,
        offset: int | None = strawberry.UNSET,
    ) -> list[TopicType | None] | None:
        """``search``: the name contains it, case-insensitively; ``minRooms``: at least that many rooms
        (``0``/``null`` ignored). Ordered by room count DESC, lower-cased name, name; paged by
        ``first``/``offset``."""
        context = info.context
        window = _window(context, first, offset)
        if window.first == 0:
            return []
        records = await context.call(
            "rooms",
            "list_topics",
            search=_value(search) or None,
            min_rooms=_value(min_rooms) or None,
            first=window.first,
            offset=window.offset,
        )
        topic_cache = context.loader(loaders.topic_loader)
        for record in records:
            topic_cache.prime(record["id"], record)
        return [TopicType.from_record(record) for record in records]
