"""Batched message lookups, and the preparation of a message list: one call per entity per request,
never one per row.

* :func:`message_loader` — messages by id (``messages.get_many``), for fields that hold only an id;
* rooms, topics and participants through :mod:`gateway.rooms.loaders`, users through
  :func:`~gateway.users.loaders.user_loader`.

:func:`prepare_messages` makes a list ready: it loads the rooms of every message at once (one
``rooms.get_many``, nothing when they are primed), their participant ids and topics when the operation
selects them, then every author, host and participant in one ``users.get_many``, and drops the messages
whose author, room or room host is gone (a deletion cascade still in flight, §6.2). The field resolvers
then find everything cached, so a list of 50 messages costs the same calls as a list of 5.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader
from strawberry.types.nodes import SelectedField, Selection

from gateway.graphql.scalars import normalize_uuid
from gateway.rooms.loaders import participant_ids_loader, room_loader, topic_loader
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

    return DataLoader(load_fn=batch, cache_key_fn=normalize_uuid)


def prime_message(context: GraphQLContext, record: MessageRecord) -> None:
    """Let the messages DataLoader answer for ``record`` without another RPC."""
    context.loader(message_loader).prime(record["id"], record)


# --- what an operation selects ------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomNeeds:
    """What the operation selects on the messages' rooms, so only that is fetched."""

    participants: bool = False
    topics: bool = False


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
    for record in messages:
        prime_message(context, record)
    room_ids = _unique(message["room_id"] for message in messages)
    rooms = [room for room in await context.loader(room_loader).load_many(room_ids) if room is not None]
    pending: list[Any] = []
    if needs.participants and rooms:
        pending.append(context.loader(participant_ids_loader).load_many([room["id"] for room in rooms]))
    if needs.topics and rooms:
        pending.append(context.loader(topic_loader).load_many([room["topic_id"] for room in rooms]))
    results = await asyncio.gather(*pending)
    member_lists: list[list[str]] = results[0] if needs.participants and rooms else []
    user_ids = [
        *(message["user_id"] for message in messages),
        *(room["host_id"] for room in rooms),
        *(user for members in member_lists for user in members),
    ]
    users = await context.loader(user_loader).load_many(_unique(user_ids))
    found = {normalize_uuid(user["id"]) for user in users if user is not None}
    live_rooms = {normalize_uuid(room["id"]) for room in rooms if normalize_uuid(room["host_id"]) in found}
    return [
        message
        for message in messages
        if normalize_uuid(message["user_id"]) in found and normalize_uuid(message["room_id"]) in live_rooms
    ]


def _unique(ids: Iterable[str]) -> list[str]:
    """The ids once each, canonical, first occurrence first."""
    return list(dict.fromkeys(normalize_uuid(i) for i in ids))
