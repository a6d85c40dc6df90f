"""The gateway process's user directory: who a user id, a username or a token's email names, without an
RPC per request.

One per gateway process (``app.state.user_directory``; the chat relay holds the same one as ``users``).
It answers

* public records by id: :meth:`UserDirectory.users_by_id` (the GraphQL users loader) and
  :meth:`UserDirectory.lookup` / :meth:`UserDirectory.get_many` (chat frames: lookups of the same moment
  share one batched ``users.get_many``);
* a username's user: :meth:`UserDirectory.user_by_username` / :meth:`UserDirectory.id_by_username`
  (host and user slugs);
* the user a token names: :meth:`UserDirectory.viewer_by_email` (authentication, §4.2).

Public records hold the fields ``UserType`` and chat frames show (never the email); viewer records are
the service's whole record, which authentication needs (``is_active``, ``date_joined_ts``).

Kept current by ``users.events`` (the relay calls :meth:`UserDirectory.update` on ``user_updated`` and
:meth:`UserDirectory.forget` on ``user_deleted``) and by this gateway's own mutations
(:meth:`UserDirectory.learn`, :meth:`UserDirectory.forget`), so a change made here is seen here at once and
on other gateways when its event arrives. Usernames and emails never change, so those events carry all
it needs.

It keeps entries only while that event feed flows (``feed_live``, the relay's connection): the relay
clears it when the connection is lost or made again, since events may have been missed, and a read that
began before a clear or before a change to the same user is not kept. As a backstop against an event
missed all the same, viewer entries live :data:`VIEWER_TTL` seconds and the others :data:`RECORD_TTL`.

Never cached here: tokens (each request checks its signature, expiry and ``origIat`` against the
record), passwords (``tokenAuth`` and ``deleteAccount`` always ask the service), and nothing that misses:
an unknown email or username is asked again next time.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from gateway.graphql.scalars import canonical_uuid
from gateway.rpc import BrokerUnavailable, RpcClient, RpcError

UserRecord = dict[str, Any]
T = TypeVar("T")

PUBLIC_FIELDS = ("id", "username", "name", "bio", "avatar", "is_active")
"""What a public record keeps: what ``UserType`` and chat frames show, and the active flag."""

DEFAULT_CAPACITY = 10_000
"""Entries per table (records by id, usernames, viewers); the least recently used go first."""

VIEWER_TTL = 5.0
"""Seconds a viewer entry is trusted without its events. Events normally update it within milliseconds;
this only bounds how long a missed ``user_deleted`` or deactivation could keep a token working, well
inside the 30 s the contract allows sockets for the same changes (D12). It costs at most one
``users.get_by_email`` per active user every 5 s, against one per request without the directory."""

RECORD_TTL = 300.0
"""Seconds a public record or a username entry is trusted without its events: a missed profile change
shows at most this long."""


def _public(record: dict[str, Any]) -> UserRecord:
    return {key: record.get(key) for key in PUBLIC_FIELDS}


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A read whose every waiter went away must not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


def _always() -> bool:
    return True


class UserDirectory:
    """See the module docstring. ``rpc`` serves the calls made without a ``fetch`` of their own;
    ``feed_live`` says whether the events that keep it current flow (by default: always, for a directory
    fed by hand); ``clock`` is for tests."""

    def __init__(
        self,
        rpc: RpcClient | None = None,
        *,
        capacity: int = DEFAULT_CAPACITY,
        viewer_ttl: float = VIEWER_TTL,
        record_ttl: float = RECORD_TTL,
        feed_live: Callable[[], bool] = _always,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpc = rpc
        self.capacity = capacity
        self.viewer_ttl = viewer_ttl
        self.record_ttl = record_ttl
        self.feed_live = feed_live
        self.clock = clock
        self._records: OrderedDict[str, tuple[UserRecord | None, float]] = OrderedDict()
        """id → (public record, ``None`` for an account that is gone; expiry)."""
        self._usernames: OrderedDict[str, tuple[str, float]] = OrderedDict()
        """username → (id, expiry)."""
        self._viewers: OrderedDict[str, tuple[UserRecord, float]] = OrderedDict()
        """a token's email, as written in the token → (the service's record, expiry)."""
        self._viewer_emails: dict[str, set[str]] = {}
        """id → the keys of its entries in ``_viewers``."""
        # A read keeps its answer only if nothing touched that user since it began (see _keeps).
        self._epoch = 0
        self._cleared_at = 0
        self._changed: dict[str, int] = {}
        self._reads = 0
        self._pending: dict[str, asyncio.Future[UserRecord | None]] = {}
        self._batch: list[str] = []
        self._fetches: set[asyncio.Task[None]] = set()
        self._shared: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self.rpc_calls = 0
        """Calls made with its own ``rpc`` so far (``users.get_many`` of :meth:`lookup` included)."""

    @property
    def live(self) -> bool:
        """True while entries are kept (the event feed flows)."""
        return self.feed_live()

    # --- public records by id --------------------------------------------------------------------

    async def users_by_id(
        self, user_ids: Sequence[str], fetch: Callable[[list[str]], Awaitable[Sequence[UserRecord | None]]]
    ) -> list[UserRecord | None]:
        """Public records aligned with ``user_ids`` (``None``: no such user); the ones not known are read
        with one ``fetch(ids)`` (a ``users.get_many``)."""
        keys = [canonical_uuid(user_id) or user_id for user_id in user_ids]
        found: dict[str, UserRecord | None] = {}
        missing: dict[str, None] = {}  # ordered, once each
        now = self.clock()
        live = self.live
        for key in keys:
            entry = self._records.get(key) if live else None
            if entry is not None and entry[1] > now:
                self._records.move_to_end(key)
                found[key] = entry[0]
            else:
                missing[key] = None
        if missing:
            since = self._begin_read()
            try:
                records = list(await fetch(list(missing)))
                if len(records) != len(missing):
                    raise RpcError("users.get_many answered out of shape", service="users", method="get_many")
                for key, record in zip(missing, records, strict=True):
                    found[key] = self._keep_record(key, record, since)
            finally:
                self._end_read()
        return [found[key] for key in keys]

    def lookup(self, user_id: str) -> asyncio.Future[UserRecord | None]:
        """The user's public record (``None``: no such user), from the directory or the next batched
        ``users.get_many`` through its own ``rpc``, whose failure (an :class:`~gateway.rpc.RpcError`) the
        future carries."""
        key = canonical_uuid(user_id) or user_id
        loop = asyncio.get_running_loop()
        entry = self._records.get(key) if self.live else None
        if entry is not None and entry[1] > self.clock():
            self._records.move_to_end(key)
            future: asyncio.Future[UserRecord | None] = loop.create_future()
            future.set_result(entry[0])
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
        """Public records of several users at once (one batched RPC for all the misses)."""
        keys = list(dict.fromkeys(canonical_uuid(i) or i for i in user_ids))
        # Shielded: the lookups are shared, and this caller's cancellation must not cancel them.
        found = await asyncio.gather(*(asyncio.shield(self.lookup(key)) for key in keys))
        return dict(zip(keys, found, strict=True))

    # --- usernames ------------------------------------------------------------------------------

    async def user_by_username(
        self, username: str, fetch: Callable[[], Awaitable[UserRecord]] | None = None
    ) -> UserRecord:
        """The public record of the user with exactly this username; when it is not known, ``fetch()``
        (default: ``users.get_by_username`` through its own ``rpc``) reads it, shared by every caller
        asking meanwhile, and its error (``User not found``, a failed call) reaches them all."""
        if self.live:
            entry = self._usernames.get(username)
            now = self.clock()
            if entry is not None and entry[1] > now:
                record = self._records.get(entry[0])
                if record is not None and record[0] is not None and record[1] > now:
                    self._usernames.move_to_end(username)
                    self._records.move_to_end(entry[0])
                    return record[0]
        read = fetch or (lambda: self._call("get_by_username", username))
        return _public(await self._shared_read("username", username, read, self._keep_username))

    async def id_by_username(self, username: str, fetch: Callable[[], Awaitable[UserRecord]] | None = None) -> str:
        """The id of the user with exactly this username, as :meth:`user_by_username` finds it."""
        return str((await self.user_by_username(username, fetch))["id"])

    # --- viewers ------------------------------------------------------------------------------------

    async def viewer_by_email(
        self, email: str, fetch: Callable[[], Awaitable[UserRecord | None]] | None = None, *, fresh: bool = False
    ) -> UserRecord | None:
        """The service's record of the user whose email matches ``email`` (case-insensitive, D1), ``None``
        when there is none. When it is not known (or ``fresh``), ``fetch()`` (default:
        ``users.get_by_email`` through its own ``rpc``) reads it, shared by the callers asking meanwhile."""
        if self.live and not fresh:
            entry = self._viewers.get(email)
            if entry is not None and entry[1] > self.clock():
                self._viewers.move_to_end(email)
                return entry[0]
        read = fetch or (lambda: self._call("get_by_email", email))

        def keep(record: UserRecord | None, since: int) -> None:
            self._keep_viewer(email, record, since)

        if fresh:
            return await self._read(read, keep)
        return await self._shared_read("email", email, read, keep)

    # --- what this gateway and the events say --------------------------------------------------------

    def learn(self, record: dict[str, Any], *, viewer: bool = False) -> None:
        """Remember a record the users service just returned (a login, a registration, a profile change
        made here): its public entry, its username, the viewer entries of the same user, and with
        ``viewer`` an entry for its email too (the token a login issues names it)."""
        key = canonical_uuid(record.get("id"))
        if key is None:
            return
        self._touch(key)
        if not self.live:
            return
        public = _public(record)
        self._store_record(key, public)
        self._store_username(public.get("username"), key)
        self._refresh_viewers(key, public)
        email = record.get("email")
        if viewer and isinstance(email, str):
            self._store_viewer(email, {**record, "id": key})

    def update(self, payload: dict[str, Any]) -> None:
        """A ``user_updated`` event (its payload: the public fields after the change): refresh the
        entries of that user (a user not known is not worth keeping)."""
        key = canonical_uuid(payload.get("id"))
        if key is None:
            return
        self._touch(key)
        public = _public({**payload, "id": key})
        entry = self._records.get(key)
        if entry is not None and entry[0] is not None:
            if entry[0].get("username") != public.get("username"):
                self._drop_username(entry[0].get("username"), key)
            self._store_record(key, public)
        self._refresh_viewers(key, public)

    def forget(self, user_id: str, username: str | None = None) -> None:
        """A ``user_deleted`` event, or an account deleted here: the user is gone (its id remembered as
        such), its username and its tokens name nobody."""
        key = canonical_uuid(user_id) or user_id
        self._touch(key)
        entry = self._records.get(key)
        if entry is not None:
            if entry[0] is not None:
                self._drop_username(entry[0].get("username"), key)
            self._records[key] = (None, self.clock() + self.record_ttl)
        self._drop_username(username, key)
        for email in self._viewer_emails.pop(key, set()):
            self._viewers.pop(email, None)

    def clear(self) -> None:
        """Drop every entry, and keep no read in progress (events may have been missed)."""
        self._epoch += 1
        self._cleared_at = self._epoch
        self._records.clear()
        self._usernames.clear()
        self._viewers.clear()
        self._viewer_emails.clear()
        self._shared.clear()  # later callers read anew rather than join a read begun before

    # --- reads -------------------------------------------------------------------------------------

    async def _call(self, method: str, *args: Any) -> Any:
        if self.rpc is None:
            raise BrokerUnavailable("no RPC client", service="users", method=method)
        self.rpc_calls += 1
        return await self.rpc.call("users", method, *args)

    async def _read(self, fetch: Callable[[], Awaitable[T]], keep: Callable[[T, int], None]) -> T:
        since = self._begin_read()
        try:
            value = await fetch()
            keep(value, since)
            return value
        finally:
            self._end_read()

    async def _shared_read(
        self, kind: str, key: str, fetch: Callable[[], Awaitable[T]], keep: Callable[[T, int], None]
    ) -> T:
        """``fetch()`` once for every caller asking for the same ``key`` meanwhile; a caller's cancellation
        leaves the read to the others."""
        shared = self._shared.get((kind, key))
        if shared is None:
            shared = asyncio.get_running_loop().create_task(self._read(fetch, keep))
            shared.add_done_callback(_retrieve)
            shared.add_done_callback(lambda task: self._forget_shared(kind, key, task))
            self._shared[(kind, key)] = shared
        return await asyncio.shield(shared)  # type: ignore[no-any-return]

    def _forget_shared(self, kind: str, key: str, task: asyncio.Task[Any]) -> None:
        if self._shared.get((kind, key)) is task:
            del self._shared[(kind, key)]

    def _begin_read(self) -> int:
        self._reads += 1
        return self._epoch

    def _end_read(self) -> None:
        self._reads -= 1
        if not self._reads:
            self._changed.clear()  # no read left that could be older than these changes

    def _touch(self, key: str) -> None:
        """``key``'s user changed (an event, a mutation): reads in progress about it are older."""
        self._epoch += 1
        if self._reads:
            self._changed[key] = self._epoch

    def _keeps(self, key: str, since: int) -> bool:
        """Whether a read of ``key`` begun at ``since`` may be kept."""
        return self.live and self._cleared_at <= since and self._changed.get(key, 0) <= since

    def _keep_record(self, key: str, record: UserRecord | None, since: int) -> UserRecord | None:
        """Keep a read of ``key``'s record (``None``: no such user); what to answer with."""
        value = _public(record) if record is not None else None
        if self._keeps(key, since):
            self._store_record(key, value)
            return value
        entry = self._records.get(key)  # an event that arrived meanwhile is newer than this read
        return entry[0] if entry is not None else value

    def _keep_username(self, record: UserRecord, since: int) -> None:
        key = canonical_uuid(record.get("id"))
        if key is not None and self._keeps(key, since):
            public = _public(record)
            self._store_record(key, public)
            self._store_username(public.get("username"), key)

    def _keep_viewer(self, email: str, record: UserRecord | None, since: int) -> None:
        key = canonical_uuid(record.get("id")) if record is not None else None
        if record is None or key is None or not self._keeps(key, since):
            return
        public = _public(record)
        self._store_viewer(email, {**record, "id": key})
        self._store_record(key, public)
        self._store_username(public.get("username"), key)

    # --- the tables -------------------------------------------------------------------------------------

    def _store_record(self, key: str, record: UserRecord | None) -> None:
        self._records[key] = (record, self.clock() + self.record_ttl)
        self._records.move_to_end(key)
        while len(self._records) > self.capacity:
            self._records.popitem(last=False)

    def _store_username(self, username: Any, key: str) -> None:
        if not isinstance(username, str):
            return
        self._usernames[username] = (key, self.clock() + self.record_ttl)
        self._usernames.move_to_end(username)
        while len(self._usernames) > self.capacity:
            self._usernames.popitem(last=False)

    def _drop_username(self, username: Any, key: str) -> None:
        entry = self._usernames.get(username) if isinstance(username, str) else None
        if entry is not None and entry[0] == key:
            del self._usernames[username]

    def _store_viewer(self, email: str, record: UserRecord) -> None:
        self._viewers[email] = (record, self.clock() + self.viewer_ttl)
        self._viewers.move_to_end(email)
        self._viewer_emails.setdefault(record["id"], set()).add(email)
        while len(self._viewers) > self.capacity:
            evicted, (old, _expiry) = self._viewers.popitem(last=False)
            emails = self._viewer_emails.get(old["id"])
            if emails is not None:
                emails.discard(evicted)
                if not emails:
                    del self._viewer_emails[old["id"]]

    def _refresh_viewers(self, key: str, public: UserRecord) -> None:
        """New public values into the viewer entries of ``key`` (a fresh dict: requests holding the old
        one keep a consistent record); their expiry stays."""
        for email in self._viewer_emails.get(key, ()):
            record, expiry = self._viewers[email]
            self._viewers[email] = ({**record, **public}, expiry)

    def _flush(self) -> None:
        ids, self._batch = self._batch, []
        if ids:
            task = asyncio.get_running_loop().create_task(self._fetch(ids))
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)

    async def _fetch(self, ids: list[str]) -> None:
        since = self._begin_read()
        try:
            try:
                records = await self._call("get_many", ids)
                if not isinstance(records, list) or len(records) != len(ids):
                    raise RpcError("users.get_many answered out of shape", service="users", method="get_many")
            except RpcError as exc:  # the waiters decide what a failed lookup means
                for key in ids:
                    future = self._pending.pop(key, None)
                    if future is not None and not future.done():
                        future.set_exception(exc)
                return
            for key, record in zip(ids, records, strict=True):
                value = self._keep_record(key, record, since)
                future = self._pending.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(value)
        finally:
            self._end_read()
