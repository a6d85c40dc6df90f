"""The chat relay: the messages service's events, delivered to this gateway's sockets and subscriptions.

One per gateway process (``app.state.chat_relay``), made in the lifespan. It holds one AMQP connection
and channel of its own, and one exclusive, auto-deleted queue consumed in order.

Routing, so that a message costs broker work only for the gateways holding members of its room:

* the messages service publishes ``message_created``/``updated``/``deleted`` on its topic exchange
  ``messages.events`` with a ``room_id`` header (``common.outbox``);
* a durable headers exchange (``CHAT_ROOMS_EXCHANGE``, ``edusphere.chat.rooms``) is bound to
  ``messages.events`` with ``#`` (exchange to exchange), once for all gateways;
* each gateway binds its queue to it with ``{"x-match": "all", "room_id": <room>}`` (routing key: the
  room id, so bindings are told apart) when the first local socket or subscription of the room opens,
  and unbinds when the last one closes; the socket is accepted only once the binding is confirmed, so
  nothing published after that is missed;
* state changes for D12 are few and go to every gateway: ``rooms.events`` ``room_deleted`` and
  ``participant_left``, ``users.events`` ``user_deleted`` and ``user_updated``.

Each subscriber has a bounded queue (``SOCKET_SEND_QUEUE``); the relay never waits for one: a subscriber
whose queue is full is ended (:attr:`EndReason.LAGGING`), and its client catches up on reconnection. A
lost broker connection ends every subscriber (:attr:`EndReason.RELAY_LOST`, events may have been missed
meanwhile) and is re-made in the background with a fresh queue; bindings follow the new subscribers.
Events of one room reach every subscriber in the order the broker delivered them, which is the order the
messages service committed them; a repeated ``new`` or ``delete`` (the outbox publishes at least once)
is dropped by its ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)

from gateway.users.directory import UserDirectory
from gateway.chat.events import NEW, UPDATE, ChatEvent, canonical_id
from gateway.rpc import RpcClient, RpcError, loads
from gateway.settings import Settings

log = logging.getLogger("gateway.chat")

MESSAGES_EXCHANGE = "messages.events"
ROOMS_EXCHANGE = "rooms.events"
USERS_EXCHANGE = "users.events"
ROOM_EVENTS = ("room_deleted", "participant_left")
USER_EVENTS = ("user_deleted", "user_updated")

BROKER_TIMEOUT = 5.0
"""Seconds a connection attempt or a (un)binding may take."""
RECONNECT_MAX_DELAY = 30.0
ACCESS_CHANGES_KEPT = 1024
"""D12 changes remembered for the handshakes in progress; one that began before all of them re-checks."""


class EndReason(enum.Enum):
    """Why a subscriber ends. D12 reasons carry their close code; the others close without one (an
    unclean close: the reference web client reconnects and catches up)."""

    USER_GONE = 4401
    NOT_PARTICIPANT = 4403
    ROOM_GONE = 4404
    LAGGING = "lagging"
    """Its queue overflowed: the client does not read fast enough."""
    RELAY_LOST = "relay lost"
    """The broker connection was lost: events may be missing."""
    UNDELIVERABLE = "undeliverable"
    """An event could not be prepared (the users service did not answer)."""

    @property
    def close_code(self) -> int | None:
        """The socket close code (D12), ``None`` for an unclean close."""
        return self.value if isinstance(self.value, int) else None


class SubscriptionEnded(Exception):
    """Raised by :meth:`Subscriber.next` once the subscriber has ended."""

    def __init__(self, reason: EndReason) -> None:
        super().__init__(reason.name)
        self.reason = reason


class RelayUnavailable(Exception):
    """The relay has no broker connection: no new subscriber can be served."""


@dataclass(frozen=True)
class AccessMark:
    """Where a handshake began reading whether its user may follow a room (:meth:`ChatRelay.access_mark`)."""

    changes: int
    """How many D12 changes the relay had seen."""
    at: float
    """The loop time."""


class Subscriber:
    """One socket or subscription of a room: a bounded queue of events, and why it ended."""

    def __init__(self, room_id: str, user_id: str, capacity: int) -> None:
        self.room_id = room_id
        self.user_id = user_id
        self.capacity = capacity
        self.end_reason: EndReason | None = None
        self.checked_at: float | None = None
        """When the checks that admitted it began (after it was registered); the periodic re-check
        judges it only by reads made later."""
        self._events: deque[ChatEvent] = deque()
        self._wakeup = asyncio.Event()
        self._ended = asyncio.Event()

    @property
    def pending(self) -> int:
        """Events queued and not yet taken."""
        return len(self._events)

    def offer(self, event: ChatEvent) -> None:
        """Queue ``event`` without waiting; a full queue ends the subscriber instead."""
        if self.end_reason is not None:
            return
        if len(self._events) >= self.capacity:
            self.end(EndReason.LAGGING)
            return
        self._events.append(event)
        self._wakeup.set()

    def end(self, reason: EndReason) -> None:
        """End it (the first reason wins); :meth:`next` raises from now on."""
        if self.end_reason is None:
            self.end_reason = reason
            self._events.clear()
            self._wakeup.set()
            self._ended.set()

    async def ended(self) -> EndReason:
        """Wait until it ends; why. (A writer blocked on a client that does not read never gets back to
        :meth:`next`, so whoever serves the client watches this too.)"""
        await self._ended.wait()
        assert self.end_reason is not None
        return self.end_reason

    async def next(self) -> ChatEvent:
        """The next event, waiting for one; :class:`SubscriptionEnded` once ended."""
        while True:
            if self.end_reason is not None:
                raise SubscriptionEnded(self.end_reason)
            if self._events:
                return self._events.popleft()
            self._wakeup.clear()
            await self._wakeup.wait()


class ChatRelay:
    """See the module docstring. ``await start()``, then :meth:`subscribe` / :meth:`unsubscribe` from
    any task, ``await close()``."""

    def __init__(self, settings: Settings, rpc: RpcClient | None, users: UserDirectory | None = None) -> None:
        self.settings = settings
        self.rpc = rpc
        self.users = users if users is not None else UserDirectory(rpc)
        """The process's user directory, which the users events keep current while connected."""
        self.users.feed_live = lambda: self._connected
        self._rooms: dict[str, set[Subscriber]] = {}
        self._users: dict[str, set[Subscriber]] = {}
        self._bound: set[str] = set()
        self._room_seq: dict[str, int] = {}
        self._access_changes = 0
        self._access_log: deque[tuple[int, str | None, str | None]] = deque(maxlen=ACCESS_CHANGES_KEPT)
        self._lock = asyncio.Lock()  # serialises (un)bindings, so each room's binding follows its subscribers
        self._generation = 0  # bumped on every connection loss: a binding made on a dead queue is void
        self._queue: AbstractQueue | None = None
        self._router: AbstractExchange | None = None
        self._connected = False
        self._closing = False
        self._attempted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle -----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while events flow (connected, queue consumed): new subscribers can be served."""
        return self._connected

    @property
    def bound_rooms(self) -> frozenset[str]:
        """Rooms whose events this gateway's queue currently receives."""
        return frozenset(self._bound)

    async def start(self) -> None:
        """Connect in the background, and wait for the first attempt: a broker that is up at start
        makes a relay that is ready before the app serves; one that is down does not stop the app."""
        self._tasks = [
            asyncio.create_task(self._supervise(), name="chat-relay"),
            asyncio.create_task(self._recheck_forever(), name="chat-recheck"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), BROKER_TIMEOUT * 2)

    async def close(self) -> None:
        """Stop; every subscriber ends. Idempotent."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # --- subscribers -------------------------------------------------------------------------------

    async def subscribe(self, room_id: str, user_id: str) -> Subscriber:
        """A new subscriber of ``room_id``, receiving every event published from now on (its room's
        binding is confirmed by the broker before this returns). :class:`RelayUnavailable` without a
        broker connection."""
        if not self._connected:
            raise RelayUnavailable("the chat relay has no broker connection")
        subscriber = Subscriber(room_id, user_id, self.settings.socket_send_queue)
        self._rooms.setdefault(room_id, set()).add(subscriber)
        self._users.setdefault(user_id, set()).add(subscriber)
        try:
            await self._bind_room(room_id)
        except BaseException:
            await self.unsubscribe(subscriber)
            raise
        return subscriber

    async def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget ``subscriber``; the last one of a room takes the room's binding away. Idempotent."""
        room = self._rooms.get(subscriber.room_id)
        if room is None or subscriber not in room:
            return
        room.discard(subscriber)
        if not room:
            del self._rooms[subscriber.room_id]
        users = self._users.get(subscriber.user_id)
        if users is not None:
            users.discard(subscriber)
            if not users:
                del self._users[subscriber.user_id]
        if subscriber.room_id not in self._rooms:
            await self._unbind_room(subscriber.room_id)

    def subscribers(self) -> list[Subscriber]:
        """Every current subscriber."""
        return [subscriber for room in self._rooms.values() for subscriber in room]

    async def recheck(self, subscribers: Iterable[Subscriber] | None = None) -> None:
        """D12 by RPC: end each given subscriber (default: all) whose user is gone or inactive, whose
        room is gone, or who no longer participates. Only subscribers admitted by earlier reads are
        judged. Raises :class:`~gateway.rpc.RpcError` when a service does not answer (nothing ends)."""
        rpc = self.rpc
        if rpc is None:
            return
        started = asyncio.get_running_loop().time()
        targets = [
            subscriber
            for subscriber in (self.subscribers() if subscribers is None else subscribers)
            if subscriber.end_reason is None and subscriber.checked_at is not None and subscriber.checked_at <= started
        ]
        if not targets:
            return
        room_ids = sorted({subscriber.room_id for subscriber in targets})
        user_ids = sorted({subscriber.user_id for subscriber in targets})
        rooms, members, users = await asyncio.gather(
            rpc.call("rooms", "get_many", room_ids),
            rpc.call("rooms", "participants_of", room_ids),
            rpc.call("users", "get_many", user_ids),
        )
        live_rooms = {room_id for room_id, room in zip(room_ids, rooms, strict=True) if room is not None}
        active_users = {
            user_id for user_id, user in zip(user_ids, users, strict=True) if user is not None and user.get("is_active")
        }
        participants = {room_id: set(members.get(room_id) or ()) for room_id in room_ids}
        for subscriber in targets:
            if subscriber.user_id not in active_users:
                subscriber.end(EndReason.USER_GONE)
            elif subscriber.room_id not in live_rooms:
                subscriber.end(EndReason.ROOM_GONE)
            elif subscriber.user_id not in participants[subscriber.room_id]:
                subscriber.end(EndReason.NOT_PARTICIPANT)

    # --- handshakes ------------------------------------------------------------------------------

    def access_mark(self) -> AccessMark:
        """Taken before a handshake reads the user, the room and the participation. A D12 change
        committed after those reads arrives as an event after the mark: it ends the subscriber once
        registered, and before that shows in :meth:`access_changed`."""
        return AccessMark(self._access_changes, asyncio.get_running_loop().time())

    def access_changed(self, mark: AccessMark, room_id: str, user_id: str) -> bool:
        """Whether, since ``mark``, ``room_id`` was deleted, ``user_id`` left it or went, or the broker
        connection was lost (events may be missing); true as well when the mark is too old to tell."""
        newer = self._access_changes - mark.changes
        if newer > len(self._access_log):
            return True
        for number, room, user in reversed(self._access_log):
            if number <= mark.changes:
                break
            if room in (None, room_id) and user in (None, user_id):
                return True
        return False

    def _access_change(self, room_id: str | None, user_id: str | None) -> None:
        """Remember a D12 change for the handshakes in progress (``None``: every room, every user)."""
        self._access_changes += 1
        self._access_log.append((self._access_changes, room_id, user_id))

    # --- bindings --------------------------------------------------------------------------------

    async def _bind_room(self, room_id: str) -> None:
        async with self._lock:
            if room_id in self._bound:
                return
            queue, router, generation = self._queue, self._router, self._generation
            if not self._connected or queue is None or router is None:
                raise RelayUnavailable("the chat relay has no broker connection")
            try:
                await queue.bind(router, routing_key=room_id, arguments=_room_binding(room_id), timeout=BROKER_TIMEOUT)
            except Exception as exc:
                raise RelayUnavailable(f"cannot bind room {room_id}: {exc!r}") from exc
            if generation != self._generation:
                raise RelayUnavailable("the broker connection was lost while binding")
            self._bound.add(room_id)
            log.debug("room bound", extra={"room_id": room_id})

    async def _unbind_room(self, room_id: str) -> None:
        async with self._lock:
            if room_id in self._rooms or room_id not in self._bound:
                return  # subscribed again meanwhile, or already gone with a lost connection
            self._bound.discard(room_id)
            self._room_seq.pop(room_id, None)
            queue, router = self._queue, self._router
            if not self._connected or queue is None or router is None:
                return
            try:
                await queue.unbind(router, routing_key=room_id, arguments=_room_binding(room_id), timeout=BROKER_TIMEOUT)
            except Exception:
                # The binding lingers until the connection is re-made: the room's events still come
                # and find no subscriber. Extra traffic, nothing wrong delivered.
                log.warning("could not unbind room %s", room_id, exc_info=True)
            else:
                log.debug("room unbound", extra={"room_id": room_id})

    # --- the connection --------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._closing:
            try:
                connection = await aio_pika.connect(
                    self.settings.amqp_uri,
                    timeout=BROKER_TIMEOUT,
                    client_properties={"connection_name": "gateway-chat-relay"},
                )
            except Exception as exc:  # noqa: BLE001 - the supervisor must outlive any failed attempt
                log.warning("chat relay cannot reach the broker (%s); retrying in %.0f s", exc, delay)
                self._attempted.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
                continue
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def on_close(*_args: Any, lost: asyncio.Future[None] = lost) -> None:
                if not lost.done():
                    lost.set_result(None)

            connection.close_callbacks.add(on_close)
            try:
                await self._declare(connection, on_close)
                self.users.clear()  # what was read before the users events flowed may be stale already
                self._connected = True
                self._attempted.set()
                delay = 1.0
                log.info("chat relay connected; queue %s", self._queue.name if self._queue else "?")
                await lost
                log.warning("chat relay lost its broker connection; ending %d subscriber(s)", len(self.subscribers()))
            except Exception as exc:  # noqa: BLE001 - whatever failed, the connection is re-made
                log.warning("chat relay could not set up its queue (%s); retrying in %.0f s", exc, delay)
            finally:
                self._lose_connection()
                with contextlib.suppress(Exception):
                    await connection.close()
            if not self._closing:
                self._attempted.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)

    async def _declare(self, connection: AbstractConnection, on_close: Any) -> None:
        channel = await connection.channel()
        channel.close_callbacks.add(on_close)  # a channel error ends the connection's use too
        # Declared as nameko declares them (topic, durable), so either side may come first.
        messages = await channel.declare_exchange(MESSAGES_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        rooms = await channel.declare_exchange(ROOMS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        users = await channel.declare_exchange(USERS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        router = await channel.declare_exchange(
            self.settings.chat_rooms_exchange, aio_pika.ExchangeType.HEADERS, durable=True
        )
        await router.bind(messages, routing_key="#")
        # A fresh name per connection: the broker may not yet have noticed that the previous one died.
        queue = await channel.declare_queue(f"gateway.chat.{uuid.uuid4().hex}", exclusive=True, auto_delete=True)
        for key in ROOM_EVENTS:
            await queue.bind(rooms, routing_key=key)
        for key in USER_EVENTS:
            await queue.bind(users, routing_key=key)
        await queue.consume(self._on_message, no_ack=True)
        self._queue, self._router = queue, router

    def _lose_connection(self) -> None:
        """Everything bound to the dead queue is void; every subscriber may have missed events."""
        self._connected = False
        self._generation += 1
        self._queue = self._router = None
        self._bound.clear()
        self._room_seq.clear()
        self.users.clear()
        self._access_change(None, None)
        for subscriber in self.subscribers():
            subscriber.end(EndReason.RELAY_LOST)

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.socket_recheck_seconds)
            if not self._connected or not self._rooms:
                continue
            try:
                await self.recheck()
            except RpcError as exc:
                log.warning("periodic socket re-check skipped: %s", exc)
            except Exception:
                log.exception("periodic socket re-check failed")

    # --- dispatch ------------------------------------------------------------------------------------

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # aio-pika runs one task per delivery, started in delivery order; with no await in here each
        # runs to completion in that order, so every subscriber sees its room's events in order.
        try:
            payload = loads(message.body)
        except (ValueError, UnicodeDecodeError):
            log.warning("undecodable event %s on %s dropped", message.routing_key, message.exchange)
            return
        try:
            kind = message.routing_key or ""
            if message.exchange == MESSAGES_EXCHANGE:
                self._on_message_event(kind, payload)
            elif message.exchange == ROOMS_EXCHANGE:
                self._on_room_event(kind, payload)
            elif message.exchange == USERS_EXCHANGE:
                self._on_user_event(kind, payload)
        except Exception:
            log.exception("chat relay failed to dispatch %s from %s", message.routing_key, message.exchange)

    def _on_message_event(self, kind: str, payload: Any) -> None:
        event = ChatEvent.from_message_event(kind, payload)
        if event is None:
            log.warning("malformed %s event dropped", kind)
            return
        subscribers = self._rooms.get(event.room_id)
        if not subscribers:
            return
        last = self._room_seq.get(event.room_id, 0)
        if event.action != UPDATE and event.seq <= last:
            # An unchanged edit re-announces a message with its old seq (C7); a new or delete never does.
            log.info("repeated %s event of seq %d dropped", kind, event.seq, extra={"room_id": event.room_id})
            return
        self._room_seq[event.room_id] = max(last, event.seq)
        if event.action == NEW and event.author_id is not None:
            event.author = self.users.lookup(event.author_id)  # one lookup for every subscriber
        for subscriber in tuple(subscribers):
            subscriber.offer(event)

    def _on_room_event(self, kind: str, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        if kind == "room_deleted":
            room_id = canonical_id(payload.get("id"))
            if room_id is not None:
                self._access_change(room_id, None)
            for subscriber in tuple(self._rooms.get(room_id or "", ())):
                subscriber.end(EndReason.ROOM_GONE)
        elif kind == "participant_left":
            room_id, user_id = canonical_id(payload.get("room_id")), canonical_id(payload.get("user_id"))
            if room_id is not None and user_id is not None:
                self._access_change(room_id, user_id)
            for subscriber in tuple(self._rooms.get(room_id or "", ())):
                if subscriber.user_id == user_id:
                    subscriber.end(EndReason.NOT_PARTICIPANT)

    def _on_user_event(self, kind: str, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        user_id = canonical_id(payload.get("id"))
        if user_id is None:
            return
        if kind == "user_deleted":
            self.users.forget(user_id, payload.get("username"))
            gone = True
        elif kind == "user_updated":
            self.users.update(payload)
            gone = payload.get("is_active") is False
        else:
            return
        if gone:
            self._access_change(None, user_id)
            for subscriber in tuple(self._users.get(user_id, ())):
                subscriber.end(EndReason.USER_GONE)


def _room_binding(room_id: str) -> dict[str, str]:
    return {"x-match": "all", "room_id": room_id}
