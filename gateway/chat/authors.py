"""Who wrote a message: the author's username and avatar for ``new`` frames, cached per gateway process.

A miss costs one ``users.get_many``, shared by every lookup of the same moment (all sockets of a room,
every author of a catch-up), so a message fans out to any number of sockets without an RPC per frame.
The relay keeps entries current from ``users.events`` (``user_updated``: a new avatar; ``user_deleted``)
and clears the cache when its broker connection is lost, since events may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from gateway.chat.events import canonical_id
from gateway.rpc import RpcClient, RpcError

log = logging.getLogger("gateway.chat")

UserRecord = dict[str, Any]

PUBLIC_FIELDS = ("id", "username", "name", "bio", "avatar", "is_active")
"""What is kept of a user: what frames and ``UserType`` show (never the email)."""

DEFAULT_CAPACITY = 10_000


def _public(record: dict[str, Any]) -> UserRecord:
    return {key: record.get(key) for key in PUBLIC_FIELDS}


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A lookup whose every waiter went away must not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


class AuthorCache:
    """User records by id, least recently used evicted; ``None`` remembers an account that is gone."""

    def __init__(self, rpc: RpcClient | None, capacity: int = DEFAULT_CAPACITY) -> None:
        self.rpc = rpc
        self.capacity = capacity
        self._records: OrderedDict[str, UserRecord | None] = OrderedDict()
        self._pending: dict[str, asyncio.Future[UserRecord | None]] = {}
        self._batch: list[str] = []
        self._fetches: set[asyncio.Task[None]] = set()
        self.rpc_calls = 0
        """``users.get_many`` calls made so far."""

    def lookup(self, user_id: str) -> asyncio.Future[UserRecord | None]:
        """The user's record (``None``: no such user), from the cache or the next batched RPC, whose
        failure (an :class:`~gateway.rpc.RpcError`) the future carries."""
        key = canonical_id(user_id) or user_id
        loop = asyncio.get_running_loop()
        if key in self._records:
            self._records.move_to_end(key)
            future: asyncio.Future[UserRecord | None] = loop.create_future()
            future.set_result(self._records[key])
            return future
        pending = self._pending.get(key)
        if pending is not None:
            return pending
        future = loop.create_future()
        future.add_done_callback(_retrieve)
        self._pending[key] = future
        if not self._batch:
            loop.call_soon(self._flush)
        self._batch.append(key)
        return future

    async def get_many(self, user_ids: Iterable[str]) -> dict[str, UserRecord | None]:
        """Records of several users at once (one RPC for all the misses)."""
        keys = list(dict.fromkeys(canonical_id(i) or i for i in user_ids))
        # Shielded: the lookups are shared, and this caller's cancellation must not cancel them.
        found = await asyncio.gather(*(asyncio.shield(self.lookup(key)) for key in keys))
        return dict(zip(keys, found, strict=True))

    def learn(self, record: dict[str, Any]) -> None:
        """Remember a record just read elsewhere (the user of a socket's handshake)."""
        key = canonical_id(record.get("id"))
        if key is not None:
            self._store(key, _public(record))

    def update(self, payload: dict[str, Any]) -> None:
        """A ``user_updated`` event: refresh the entry if there is one (others are not worth keeping)."""
        key = canonical_id(payload.get("id"))
        if key is not None and key in self._records:
            self._store(key, _public(payload))

    def forget(self, user_id: str) -> None:
        """A ``user_deleted`` event."""
        key = canonical_id(user_id) or user_id
        if key in self._records:
            self._records[key] = None

    def clear(self) -> None:
        """Drop every entry (events may have been missed)."""
        self._records.clear()

    def _store(self, key: str, record: UserRecord | None) -> None:
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > self.capacity:
            self._records.popitem(last=False)

    def _flush(self) -> None:
        ids, self._batch = self._batch, []
        if ids:
            task = asyncio.get_running_loop().create_task(self._fetch(ids))
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)

    async def _fetch(self, ids: list[str]) -> None:
        try:
            if self.rpc is None:
                raise RuntimeError("no RPC client")
            self.rpc_calls += 1
            records = await self.rpc.call("users", "get_many", ids)
            if not isinstance(records, list) or len(records) != len(ids):
                raise RuntimeError("users.get_many answered out of shape")
        except (RpcError, RuntimeError) as exc:  # the waiters decide what a failed lookup means
            for key in ids:
                future = self._pending.pop(key, None)
                if future is not None and not future.done():
                    future.set_exception(exc)
            return
        for key, record in zip(ids, records, strict=True):
            value = _public(record) if record is not None else None
            if key not in self._records:  # an event that arrived meanwhile is newer than this read
                self._store(key, value)
            future = self._pending.pop(key, None)
            if future is not None and not future.done():
                future.set_result(self._records.get(key, value))
