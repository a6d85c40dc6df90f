"""Batched room, topic and participant lookups: one call per entity per request, never one per row.

* :func:`room_loader` — rooms by id (``rooms.get_many``), for fields that hold only a room id;
* :func:`topic_loader` — topics by id (``rooms.get_topics``);
* :func:`participant_ids_loader` — participant ids by room id (``rooms.participants_of``);
* users (hosts and participants) through the users domain's :func:`~gateway.users.loaders.user_loader`.

The rooms service's room reads take an ``include`` argument (:meth:`RoomNeeds.include`): the rooms then
carry their participant ids and topic, and :func:`prime_room` puts both in these loaders' caches, so
neither costs a call of its own. A room list is made ready by :func:`prepare_rooms`: it loads whatever
participant ids and topics are not cached yet (none, after an ``include``), then every host and
participant in one ``users.get_many``, and drops the rooms whose host is gone. The field resolvers then
find everything in the loaders' caches and resolve without awaiting, so a list of 50 rooms with hosts,
topics and participants costs the same two calls as a list of 5 (the list with ``include``,
``users.get_many``), and what is loaded already is not asked of a DataLoader again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

from gateway.graphql.loading import NOT_LOADED, UuidKeyCache, load_all
from gateway.graphql.scalars import normalize_uuid
from gateway.users.loaders import UserRecord, user_loader

if TYPE_CHECKING:
    from gateway.graphql.context import GraphQLContext

__all__ = [
    "RoomLoader",
    "RoomNeeds",
    "RoomRecord",
    "load_rooms",
    "participant_ids_loader",
    "participants",
    "participants_in_hand",
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

PARTICIPANT_IDS = "participant_ids"
TOPIC = "topic"
"""What a rooms-service room read can ``include``, each the key it adds to every room."""


def _topic_key(topic_id: Any) -> int:
    return int(topic_id)


def room_loader(context: GraphQLContext) -> RoomLoader:
    """The factory to pass to ``context.loader``: rooms by id, ``None`` where a room does not exist."""

    async def batch(ids: Sequence[str]) -> list[RoomRecord | None]:
        return list(await context.call("rooms", "get_many", [normalize_uuid(i) for i in ids]))

    return DataLoader(load_fn=batch, cache_map=UuidKeyCache())


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

    return DataLoader(load_fn=batch, cache_map=UuidKeyCache())


@dataclass(frozen=True)
class RoomNeeds:
    """Which of its rooms' related entities an operation selects, so only those are fetched."""

    participants: bool = False
    topics: bool = False

    def include(self) -> dict[str, Any]:
        """The keyword arguments that make a rooms-service room read (``list_rooms``, the user room
        lists, ``get_room_by_host_slug``, ``get_many``) also return what the operation will ask of each
        room: its participant ids, its topic. Nothing when it asks for neither, so such a read costs
        what it did."""
        include = [name for name, wanted in ((PARTICIPANT_IDS, self.participants), (TOPIC, self.topics)) if wanted]
        return {"include": include} if include else {}


def prime_room(context: GraphQLContext, record: RoomRecord) -> None:
    """Let the rooms DataLoader answer for ``record`` without another RPC, and the participant ids and
    topic loaders too when the record carries them (:meth:`RoomNeeds.include`)."""
    context.loader(room_loader).prime(record["id"], record)
    if PARTICIPANT_IDS in record:
        context.loader(participant_ids_loader).prime(record["id"], list(record[PARTICIPANT_IDS]))
    topic = record.get(TOPIC)
    if topic is not None:
        context.loader(topic_loader).prime(topic["id"], topic)


async def load_rooms(
    context: GraphQLContext, ids: Iterable[str], needs: RoomNeeds = RoomNeeds()
) -> list[RoomRecord | None]:
    """The rooms with these ids, aligned with ``ids`` (``None`` where a room does not exist), like the
    rooms DataLoader; the ones it has not cached yet come from one ``get_many`` that also carries their
    participant ids and topic when ``needs`` them, so neither costs a call of its own."""
    keys = list(ids)
    cache = context.loader(room_loader)
    missing = [room_id for room_id in _unique(keys) if cache.cache_map.get(room_id) is None]
    if missing:
        records = await context.call("rooms", "get_many", missing, **needs.include())
        for room_id, record in zip(missing, records, strict=True):
            if record is None:
                cache.prime(room_id, None)
            else:
                prime_room(context, record)
    await load_all(context.load_missing(room_loader, keys))
    return [context.loaded(room_loader, key) for key in keys]


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
    await load_all(
        context.load_missing(participant_ids_loader, room_ids) if participants else None,
        context.load_missing(topic_loader, [record["topic_id"] for record in rooms]) if topics else None,
    )
    user_ids = [record["host_id"] for record in rooms]
    if participants:
        user_ids += [user for room_id in room_ids for user in context.loaded(participant_ids_loader, room_id)]
    await load_all(context.load_missing(user_loader, _unique(user_ids)))
    return [record for record in rooms if context.loaded(user_loader, record["host_id"]) is not None]


async def participants(context: GraphQLContext, room_id: str) -> list[UserRecord]:
    """The existing participants of a room, ordered by username ASC then id (C11, §3), at most the list
    cap N (B2)."""
    ids = await context.loader(participant_ids_loader).load(room_id)
    records = await context.loader(user_loader).load_many(ids)
    return _ordered_participants(context, records)


def participants_in_hand(context: GraphQLContext, room_id: str) -> list[UserRecord] | Any:
    """:func:`participants` without awaiting, when the room's participant ids and every one of those
    users are already loaded (as :func:`prepare_rooms` leaves them); else ``NOT_LOADED``."""
    ids = context.loaded(participant_ids_loader, room_id)
    records = NOT_LOADED if ids is NOT_LOADED else context.loaded_many(user_loader, ids)
    return NOT_LOADED if records is NOT_LOADED else _ordered_participants(context, records)


def _ordered_participants(context: GraphQLContext, records: Iterable[UserRecord | None]) -> list[UserRecord]:
    # Users' ids are the canonical strings the users service sends: they sort as they are.
    users = sorted((r for r in records if r is not None), key=lambda r: (r["username"], r["id"]))
    return users[: context.settings.list_cap]


def _unique(ids: Iterable[str]) -> list[str]:
    """The ids once each, first occurrence first (a DataLoader would dedupe too, but this keeps the
    batch it sends small and readable in logs)."""
    return list(dict.fromkeys(normalize_uuid(i) for i in dict.fromkeys(ids)))
