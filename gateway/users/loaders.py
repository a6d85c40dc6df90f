"""Batched user lookups: one ``users.get_many`` per request per batch, never one call per row, and none
for the users the process's user directory (:mod:`gateway.users.directory`) already knows.

Other domains resolve ``host``, ``user`` and ``participants`` with
``await info.context.loader(user_loader).load(user_id)`` (or ``load_many``) and build the result with
``UserType.maybe(record)``; ``None`` means the user no longer exists. Records are public ones (no email).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

from gateway.graphql.loading import UuidKeyCache
from gateway.graphql.scalars import normalize_uuid

if TYPE_CHECKING:
    from gateway.graphql.context import GraphQLContext

UserRecord = dict[str, Any]


UserLoader = DataLoader[str, UserRecord | None]
"""Keyed by user id in any UUID form (cached under the canonical lowercase form)."""


def user_loader(context: GraphQLContext) -> UserLoader:
    """The factory to pass to ``context.loader``: the request's users DataLoader."""

    async def get_many(ids: list[str]) -> list[UserRecord | None]:
        return list(await context.call("users", "get_many", ids))

    async def batch(ids: Sequence[str]) -> list[UserRecord | None]:
        return await context.users.users_by_id([normalize_uuid(i) for i in ids], get_many)

    return DataLoader(load_fn=batch, cache_map=UuidKeyCache())
