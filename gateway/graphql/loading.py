"""What the request's DataLoaders hold, read without awaiting.

A list query loads everything its rows will ask for before they are resolved (one batch per entity);
the rows' fields then read it with :meth:`~gateway.graphql.context.GraphQLContext.loaded`, which answers
at once, or :data:`NOT_LOADED` when the data still has to be loaded (a DataLoader round). Loaders keyed
by UUID use :class:`UuidKeyCache`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from strawberry.dataloader import AbstractCache

from gateway.graphql.scalars import normalize_uuid

if TYPE_CHECKING:
    from gateway.graphql.context import GraphQLContext

__all__ = ["NOT_LOADED", "UuidKeyCache", "load_all", "made_once"]

RecordT = TypeVar("RecordT")
MadeT = TypeVar("MadeT")

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


def made_once(context: GraphQLContext, build: Callable[[RecordT], MadeT], record: RecordT) -> MadeT:
    """``build(record)``, made once per record per request: a list shows the same users and topics in
    many rows (hosts, participants, authors), and the executor completes an object it has completed
    before, with the same plain selection, at no cost (:mod:`gateway.graphql.execution`)."""
    made = context.loader(_made)
    key = (build, id(record))
    found = made.get(key)
    if found is None or found[0] is not record:
        found = made[key] = (record, build(record))  # the record kept with it, so its id stays its own
    return found[1]  # type: ignore[no-any-return]


def _made(_context: GraphQLContext) -> dict[tuple[Any, int], tuple[Any, Any]]:
    """The request's objects :func:`made_once` built (``context.loader`` keeps one of these per request)."""
    return {}


async def load_all(*loads: Awaitable[Any] | None) -> None:
    """Wait for the loads :meth:`~gateway.graphql.context.GraphQLContext.load_missing` started
    (``None``: nothing was missing), together."""
    pending = [load for load in loads if load is not None]
    if len(pending) == 1:
        await pending[0]
    elif pending:
        await asyncio.gather(*pending)
