"""Batched room, topic and participant lookups: one call per entity per request, never one per row.

* :func:`room_loader` — rooms by id (``rooms.get_many``), for fields that hold only a room id;
* :func:`topic_loader` — topics by id (``rooms.get_topics``);
* :func:`participant_ids_loader` — participant ids by room id (``rooms.participants_of``);
* users (hosts and participants) through the users domain's :func:`~gateway.users.loaders.user_loader`.

A room list is made ready by :func:`prepare_rooms`: it loads the participant ids and topics of every
room at once, then every host and participant in one ``users.get_many``, and drops the rooms whose host
is gone. The field resolvers then find everything in the loaders' caches, so a list of 50 rooms costs
the same four calls as a list of 5 (the list, ``participants_of``, ``get_topics``, ``users.get_many``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

from gateway.graphql.scalars import normalize_uuid
from gateway.users.loaders import UserRecord, user_loader

if TYPE_CHECKING:
    from gateway.graphql.context import GraphQLContext

__all__ = [
    "RoomLoader",
    "RoomRecord",
    "participant_ids_loader",
    "participants",
    "prepare_rooms",
    "prime_room",
    "room_loader",
    "topic_loader",
    "user_loader",
]

RoomRecord = dict[str, Any]
TopicRecord = dict[str, Any]

RoomLoader = DataLoader[str, RoomRecord | None]
"""Keyed by room id in any UUID form (cached under the canonical lowercase form)."""

TopicLoader = DataLoader[int, TopicRecord | None]
"""Keyed by the integer topic id."""

ParticipantIdsLoader = DataLoader[str, list[str]]
"""Keyed by room id; the user ids of its participants, in the service's (joining) order."""


def _topic_key(topic_id: Any) -> int:
    return int(topic_id)


def room_loader(context: GraphQLContext) -> RoomLoader:
    """The factory to pass to ``context.loader``: rooms by id, ``None`` where a room does not exist."""

    async def batch(ids: Sequence[str]) -> list[RoomRecord | None]:
        return list(await context.call("rooms", "get_many", [normalize_uuid(i) for i in ids]))

    return DataLoader(load_fn=batch, cache_key_fn=normalize_uuid)


def topic_loader(context: GraphQLContext) -> TopicLoader:
    """The factory to pass to ``context.loader``: topics by id, ``None`` where a topic does not exist."""

    async def batch(ids: Sequence[int]) -> list[TopicRecord | None]:
        return list(await context.call("rooms", "get_topics", [int(i) for i in ids]))

    return DataLoader(load_fn=batch, cache_key_fn=_topic_key)


def participant_ids_loader(context: GraphQLContext) -> ParticipantIdsLoader:
    """The factory to pass to ``context.loader``: participant ids by room id, one ``participants_of``
    call for every room of the batch."""

    async def batch(ids: Sequence[str]) -> list[list[str]]:
        keys = [normalize_uuid(i) for i in ids]
        members = await context.call("rooms", "participants_of", keys)
        return [list(members.get(key) or []) for key in keys]

    return DataLoader(load_fn=batch, cache_key_fn=normalize_uuid)


def prime_room(context: GraphQLContext, record: RoomRecord) -> None:
    """Let the rooms DataLoader answer for ``record`` without another RPC."""
    context.loader(room_loader).prime(record["id"], record)


async def prepare_rooms(
    context: GraphQLContext,
    records: Iterable[RoomRecord],
    *,
    participants: bool = True,
    topics: bool = True,
) -> list[RoomRecord]:
    """``records`` without the rooms whose host no longer exists (an account deletion whose cascade is
    still in flight, §6.2), in their order.

    Participant ids (when ``participants``) and topics (when ``topics``) of every room are loaded
    together first, then the hosts and participants in one users batch, so the field resolvers that
    follow find everything cached.
    """
    rooms = list(records)
    if not rooms:
        return []
    for record in rooms:
        prime_room(context, record)
    room_ids = [record["id"] for record in rooms]
    pending: list[Any] = []
    if participants:
        pending.append(context.loader(participant_ids_loader).load_many(room_ids))
    if topics:
        pending.append(context.loader(topic_loader).load_many([record["topic_id"] for record in rooms]))
    results = await asyncio.gather(*pending)
    member_lists: list[list[str]] = results[0] if participants else []
    user_ids = [record["host_id"] for record in rooms] + [user for members in member_lists for user in members]
    users = await context.loader(user_loader).load_many(_unique(user_ids))
    found = {normalize_uuid(user["id"]) for user in users if user is not None}
    return [record for record in rooms if normalize_uuid(record["host_id"]) in found]


async def participants(context: GraphQLContext, room_id: str) -> list[UserRecord]:
    """The existing participants of a room, ordered by username ASC then id (C11, §3), at most the list
    cap N (B2)."""
    ids = await context.loader(participant_ids_loader).load(room_id)
    records = await context.loader(user_loader).load_many(ids)
    users = sorted((r for r in records if r is not None), key=lambda r: (r["username"], normalize_uuid(r["id"])))
    return users[: context.settings.list_cap]


def _unique(ids: Iterable[str]) -> list[str]:
    """The ids once each, first occurrence first (a DataLoader would dedupe too, but this keeps the
    batch it sends small and readable in logs)."""
    return list(dict.fromkeys(normalize_uuid(i) for i in ids))
