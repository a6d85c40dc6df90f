"""What the request's DataLoaders hold, read without awaiting.

A list query loads everything its rows will ask for before they are resolved (one batch per entity);
the rows' fields then read it with :meth:`~gateway.graphql.context.GraphQLContext.loaded`, which answers
at once, or :data:`NOT_LOADED` when the data still has to be loaded (a DataLoader round). Loaders keyed
by UUID use :class:`UuidKeyCache`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from strawberry.dataloader import AbstractCache

from gateway.graphql.scalars import normalize_uuid

__all__ = ["NOT_LOADED", "UuidKeyCache", "load_all"]

NOT_LOADED: Any = object()
"""What is answered for a key a DataLoader does not hold yet (or holds a failed load for)."""


class UuidKeyCache(AbstractCache[Any, Any]):
    """A DataLoader cache keyed by the canonical form of a UUID (:func:`normalize_uuid`), given in any
    form ``uuid.UUID`` accepts.

    Keys are stored canonical, so a key that is found as given is canonical already: ids from the
    services always are, and they are looked up without checking their form (which costs more than the
    lookup, for every row of every list).
    """

    def __init__(self) -> None:
        self.futures: dict[str, asyncio.Future[Any]] = {}

    def get(self, key: Any) -> asyncio.Future[Any] | None:
        """The future held for ``key``, ``None`` when there is none."""
        found = self.futures.get(key)
        return found if found is not None else self.futures.get(normalize_uuid(key))

    def set(self, key: Any, value: asyncio.Future[Any]) -> None:
        """Hold ``value`` for ``key``."""
        self.futures[normalize_uuid(key)] = value

    def delete(self, key: Any) -> None:
        """Forget ``key``."""
        del self.futures[normalize_uuid(key)]

    def clear(self) -> None:
        """Forget every key."""
        self.futures.clear()


async def load_all(*loads: Awaitable[Any] | None) -> None:
    """Wait for the loads :meth:`~gateway.graphql.context.GraphQLContext.load_missing` started
    (``None``: nothing was missing), together."""
    pending = [load for load in loads if load is not None]
    if len(pending) == 1:
        await pending[0]
    elif pending:
        await asyncio.gather(*pending)
