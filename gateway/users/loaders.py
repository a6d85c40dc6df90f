"""Batched user lookups: one ``users.get_many`` per request per batch, never one call per row.

Other domains resolve ``host``, ``user`` and ``participants`` with
``await info.context.loader(user_loader).load(user_id)`` (or ``load_many``) and build the result with
``UserType.maybe(record)``; ``None`` means the user no longer exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

from gateway.graphql.scalars import normalize_uuid

if TYPE_CHECKING:
    from gateway.graphql.context import GraphQLContext

UserRecord = dict[str, Any]


UserLoader = DataLoader[str, UserRecord | None]
"""Keyed by user id in any UUID form (cached under the canonical lowercase form)."""


def user_loader(context: GraphQLContext) -> UserLoader:
    """The factory to pass to ``context.loader``: the request's users DataLoader."""

    async def batch(ids: Sequence[str]) -> list[UserRecord | None]:
        records = await context.call("users", "get_many", [normalize_uuid(i) for i in ids])
        return list(records)

    return DataLoader(load_fn=batch, cache_key_fn=normalize_uuid)
