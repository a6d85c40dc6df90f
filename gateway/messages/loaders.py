"""Batched message lookups, and the preparation of a message list: one call per entity per request,
never one per row.

* :func:`message_loader` — messages by id (``messages.get_many``), for fields that hold only an id;
* rooms, topics and participants through :mod:`gateway.rooms.loaders`, users through
  :func:`~gateway.users.loaders.user_loader`.

:func:`prepare_messages` makes a list ready: it loads the rooms of every message at once (one
``rooms.get_many``, nothing when they are primed), with their participant ids and topics when the
operation selects them (the rooms service's ``include``, no call of their own), then every author, host
and participant in one ``users.get_many``, and drops the messages whose author, room or room host is
gone (a deletion cascade still in flight, §6.2); its work grows with the distinct rooms and users,
not with the messages. The field resolvers then find everything cached and resolve without awaiting,
so a list of 50 messages costs the same calls as a list of 5.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader
from strawberry.types.nodes import SelectedField, Selection

from gateway.graphql.loading import UuidKeyCache, load_all
from gateway.graphql.scalars import normalize_uuid
from gateway.rooms.loaders import RoomNeeds, load_rooms, participant_ids_loader, topic_loader
from gateway.users.loaders import user_loader

if TYPE_CHECKING:
    from gateway.graphql.context import GraphQLContext

MessageRecord = dict[str, Any]

MessageLoader = DataLoader[str, MessageRecord | None]
"""Keyed by message id in any UUID form (cached under the canonical lowercase form)."""


def message_loader(context: GraphQLContext) -> MessageLoader:
    """The factory to pass to ``context.loader``: messages by id, ``None`` where a message does not
    exist (or was deleted)."""

    async def batch(ids: Sequence[str]) -> list[MessageRecord | None]:
        return list(await context.call("messages", "get_many", [normalize_uuid(i) for i in ids]))

    return DataLoader(load_fn=batch, cache_map=UuidKeyCache())


# --- what an operation selects ------------------------------------------------------------------------


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields selected directly on a type, through fragment spreads and inline fragments."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _fields(selection.selections)


def subfields(fields: Iterable[SelectedField]) -> list[SelectedField]:
    """The fields selected under each of ``fields``."""
    return [child for field in fields for child in _fields(field.selections)]


def children(fields: Iterable[SelectedField], name: str) -> list[SelectedField]:
    """The fields selected under every occurrence (aliases included) of ``name`` among ``fields``."""
    return subfields(field for field in fields if field.name == name)


def room_needs(message_fields: Iterable[SelectedField]) -> RoomNeeds:
    """What ``room { … }`` selects, given the fields selected on ``MessageType``."""
    selected = {field.name for field in children(message_fields, "room")}
    return RoomNeeds(participants="participants" in selected, topics="topic" in selected)


# --- preparing a list ----------------------------------------------------------------------------------


async def prepare_messages(
    context: GraphQLContext, records: Iterable[MessageRecord], needs: RoomNeeds = RoomNeeds()
) -> list[MessageRecord]:
    """``records``, in their order, without the messages whose author, room or room host no longer
    exists; everything the resolvers will ask for is loaded, in batches, on the way."""
    messages = list(records)
    if not messages:
        return []
    # Each distinct room and author once: a room's 200 messages have one room and a few authors.
    room_keys = list(dict.fromkeys(message["room_id"] for message in messages))
    author_keys = list(dict.fromkeys(message["user_id"] for message in messages))
    room_records = await load_rooms(context, room_keys, needs)
    rooms = [room for room in room_records if room is not None]
    await load_all(
        context.load_missing(participant_ids_loader, [room["id"] for room in rooms]) if needs.participants else None,
        context.load_missing(topic_loader, [room["topic_id"] for room in rooms]) if needs.topics else None,
    )
    user_ids = [*author_keys, *(room["host_id"] for room in rooms)]
    if needs.participants:
        user_ids += [user for room in rooms for user in context.loaded(participant_ids_loader, room["id"])]
    await load_all(context.load_missing(user_loader, _unique(user_ids)))
    live_rooms = {
        key
        for key, room in zip(room_keys, room_records, strict=True)
        if room is not None and context.loaded(user_loader, room["host_id"]) is not None
    }
    live_authors = {key for key in author_keys if context.loaded(user_loader, key) is not None}
    return [message for message in messages if message["room_id"] in live_rooms and message["user_id"] in live_authors]


def _unique(ids: Iterable[str]) -> list[str]:
    """The ids once each, canonical, first occurrence first."""
    return list(dict.fromkeys(normalize_uuid(i) for i in dict.fromkeys(ids)))
