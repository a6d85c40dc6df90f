"""The chat relay without a broker: refcounted room bindings under concurrency, fan-out in order, bounded
queues, D12 state changes, connection loss, and the periodic re-check."""

from __future__ import annotations

import asyncio
import json
import random
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.chat.relay import (
    MESSAGES_EXCHANGE,
    ROOMS_EXCHANGE,
    USERS_EXCHANGE,
    ChatRelay,
    EndReason,
    RelayUnavailable,
    Subscriber,
    SubscriptionEnded,
)
from gateway.settings import Settings

ROOM_A = "0d8f9c4e-5f56-4d77-9d0b-1d4f0a6f3c21"
ROOM_B = "1e9fad5f-6a67-4e88-8e1c-2e5a1b7a4d32"
ALICE = "7c1d2b1e-3a4f-4f5e-8a9b-0c1d2e3f4a5b"
BOB = "8d2e3c2f-4b5a-4a6f-9bac-1d2e3f4a5b6c"


class FakeQueue:
    """Records bindings; each (un)binding takes a moment, like a broker round trip."""

    def __init__(self, fail: bool = False) -> None:
        self.bound: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.fail = fail
        self.name = "fake"

    async def bind(self, exchange: Any, routing_key: str, arguments: dict[str, str], timeout: float) -> None:
        assert arguments == {"x-match": "all", "room_id": routing_key}
        await asyncio.sleep(random.random() / 200)
        if self.fail:
            raise ConnectionError("broker gone")
        self.calls.append(("bind", routing_key))
        self.bound.add(routing_key)

    async def unbind(self, exchange: Any, routing_key: str, arguments: dict[str, str], timeout: float) -> None:
        await asyncio.sleep(random.random() / 200)
        self.calls.append(("unbind", routing_key))
        self.bound.discard(routing_key)


class FakeRpc:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((f"{service}.{method}", args))
        answer = self.answers[f"{service}.{method}"]
        return answer(*args) if callable(answer) else answer


def connected_relay(queue: FakeQueue | None = None, rpc: Any = None, **settings: Any) -> tuple[ChatRelay, FakeQueue]:
    queue = queue or FakeQueue()
    relay = ChatRelay(Settings(env="test", **settings), rpc)
    relay._queue, relay._router, relay._connected = queue, object(), True  # what _declare sets up
    return relay, queue


def message(exchange: str, routing_key: str, payload: Any) -> SimpleNamespace:
    return SimpleNamespace(exchange=exchange, routing_key=routing_key, body=json.dumps(payload).encode())


def created(room: str, seq: int, message_id: str, user: str = ALICE) -> SimpleNamespace:
    record = {"id": message_id, "room_id": room, "user_id": user, "body": f"m{seq}", "edited": False,
              "created": "2025-01-01T00:00:00+00:00", "updated": "2025-01-01T00:00:00+00:00", "seq": seq}
    return message(MESSAGES_EXCHANGE, "message_created", {"room_id": room, "seq": seq, "message": record})


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def drain(subscriber: Subscriber) -> list[tuple[str, int]]:
    events = []
    while subscriber.pending:
        event = subscriber._events.popleft()
        events.append((event.action, event.seq))
    return events


async def test_a_room_is_bound_once_whatever_its_subscribers():
    relay, queue = connected_relay()
    subscribers = await asyncio.gather(*(relay.subscribe(ROOM_A, ALICE) for _ in range(20)))
    assert queue.calls == [("bind", ROOM_A)]
    assert relay.bound_rooms == {ROOM_A}
    await asyncio.gather(*(relay.unsubscribe(s) for s in subscribers[:-1]))
    assert queue.bound == {ROOM_A}
    await relay.unsubscribe(subscribers[-1])
    await relay.unsubscribe(subscribers[-1])  # idempotent
    assert queue.calls == [("bind", ROOM_A), ("unbind", ROOM_A)]
    assert relay.bound_rooms == frozenset() and queue.bound == set()


async def test_bindings_follow_subscribers_under_concurrency():
    relay, queue = connected_relay()
    rooms = [uid(n) for n in range(5)]
    live: list[Subscriber] = []

    async def churn(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(30):
            if live and rng.random() < 0.5:
                subscriber = live.pop(rng.randrange(len(live)))
                await relay.unsubscribe(subscriber)
            else:
                live.append(await relay.subscribe(rng.choice(rooms), ALICE))

    await asyncio.gather(*(churn(seed) for seed in range(12)))
    expected = {subscriber.room_id for subscriber in live}
    assert queue.bound == expected == set(relay.bound_rooms)
    await asyncio.gather(*(relay.unsubscribe(s) for s in live))
    assert queue.bound == set() and relay.bound_rooms == frozenset()


async def test_a_failed_binding_refuses_the_subscriber_and_leaves_nothing_behind():
    relay, _ = connected_relay(FakeQueue(fail=True))
    with pytest.raises(RelayUnavailable):
        await relay.subscribe(ROOM_A, ALICE)
    assert relay.subscribers() == [] and relay.bound_rooms == frozenset()


async def test_no_subscriber_without_a_broker_connection():
    relay = ChatRelay(Settings(env="test"), None)
    with pytest.raises(RelayUnavailable):
        await relay.subscribe(ROOM_A, ALICE)


async def test_events_reach_the_subscribers_of_their_room_in_order():
    relay, _ = connected_relay()
    a1, a2 = await relay.subscribe(ROOM_A, ALICE), await relay.subscribe(ROOM_A, BOB)
    b1 = await relay.subscribe(ROOM_B, ALICE)
    for seq in range(1, 6):
        await relay._on_message(created(ROOM_A, seq, uid(seq)))
    await relay._on_message(created(ROOM_B, 1, uid(100)))
    await relay._on_message(message(MESSAGES_EXCHANGE, "message_deleted", {"room_id": ROOM_A, "seq": 6, "id": uid(1)}))
    expected = [("new", seq) for seq in range(1, 6)] + [("delete", 6)]
    assert drain(a1) == drain(a2) == expected
    assert drain(b1) == [("new", 1)]


async def test_one_author_lookup_per_event_however_many_subscribers():
    relay, _ = connected_relay()
    subscribers = [await relay.subscribe(ROOM_A, ALICE) for _ in range(5)]
    await relay._on_message(created(ROOM_A, 1, uid(1)))
    events = [s._events[0] for s in subscribers]
    assert all(event is events[0] for event in events)  # shared, so the frame is built once
    assert events[0].author is not None


async def test_repeated_new_and_delete_are_dropped_reannounced_updates_pass():
    relay, _ = connected_relay()
    subscriber = await relay.subscribe(ROOM_A, ALICE)
    await relay._on_message(created(ROOM_A, 1, uid(1)))
    await relay._on_message(created(ROOM_A, 2, uid(2)))
    await relay._on_message(created(ROOM_A, 1, uid(1)))  # the outbox published it again
    record = {"id": uid(1), "room_id": ROOM_A, "user_id": ALICE, "body": "m1", "edited": False,
              "created": "c", "updated": "u", "seq": 1}
    # An edit that left the body as it was: the message's own (old) seq, still an event (C7).
    await relay._on_message(message(MESSAGES_EXCHANGE, "message_updated", {"room_id": ROOM_A, "seq": 1, "message": record}))
    await relay._on_message(message(MESSAGES_EXCHANGE, "message_deleted", {"room_id": ROOM_A, "seq": 3, "id": uid(2)}))
    await relay._on_message(message(MESSAGES_EXCHANGE, "message_deleted", {"room_id": ROOM_A, "seq": 3, "id": uid(2)}))
    assert drain(subscriber) == [("new", 1), ("new", 2), ("update", 1), ("delete", 3)]


async def test_a_full_queue_ends_only_that_subscriber():
    relay, _ = connected_relay(socket_send_queue=3)
    slow, fast = await relay.subscribe(ROOM_A, ALICE), await relay.subscribe(ROOM_A, BOB)
    for seq in range(1, 5):
        await relay._on_message(created(ROOM_A, seq, uid(seq)))
        if fast.pending:
            fast._events.popleft()  # this one keeps up
    assert slow.end_reason is EndReason.LAGGING and slow.pending == 0
    assert fast.end_reason is None
    with pytest.raises(SubscriptionEnded) as ended:
        await slow.next()
    assert ended.value.reason.close_code is None  # no close frame: the client reconnects and catches up


async def test_room_and_user_events_end_the_right_subscribers():
    relay, _ = connected_relay()
    alice_a, bob_a = await relay.subscribe(ROOM_A, ALICE), await relay.subscribe(ROOM_A, BOB)
    alice_b, bob_b = await relay.subscribe(ROOM_B, ALICE), await relay.subscribe(ROOM_B, BOB)

    await relay._on_message(message(ROOMS_EXCHANGE, "participant_left", {"room_id": ROOM_A, "user_id": BOB}))
    assert (alice_a.end_reason, bob_a.end_reason, bob_b.end_reason) == (None, EndReason.NOT_PARTICIPANT, None)

    await relay._on_message(message(USERS_EXCHANGE, "user_updated", {"id": BOB, "is_active": True, "changed": ["bio"]}))
    assert bob_b.end_reason is None
    await relay._on_message(message(USERS_EXCHANGE, "user_updated", {"id": BOB, "is_active": False, "changed": ["is_active"]}))
    assert bob_b.end_reason is EndReason.USER_GONE

    await relay._on_message(message(ROOMS_EXCHANGE, "room_deleted", {"id": ROOM_B, "host_id": BOB}))
    assert (alice_b.end_reason, alice_a.end_reason) == (EndReason.ROOM_GONE, None)

    await relay._on_message(message(USERS_EXCHANGE, "user_deleted", {"id": ALICE, "username": "alice"}))
    assert alice_a.end_reason is EndReason.USER_GONE
    assert [EndReason.USER_GONE.close_code, EndReason.NOT_PARTICIPANT.close_code, EndReason.ROOM_GONE.close_code] == [
        4401, 4403, 4404,
    ]


async def test_an_ended_subscriber_stops_at_once_even_with_events_queued():
    relay, _ = connected_relay()
    subscriber = await relay.subscribe(ROOM_A, ALICE)
    await relay._on_message(created(ROOM_A, 1, uid(1)))
    await relay._on_message(message(ROOMS_EXCHANGE, "room_deleted", {"id": ROOM_A, "host_id": BOB}))
    with pytest.raises(SubscriptionEnded):
        await subscriber.next()


async def test_a_waiting_subscriber_wakes_for_an_event_and_for_its_end():
    relay, _ = connected_relay()
    subscriber = await relay.subscribe(ROOM_A, ALICE)
    waiting = asyncio.create_task(subscriber.next())
    await asyncio.sleep(0)
    await relay._on_message(created(ROOM_A, 1, uid(1)))
    assert (await asyncio.wait_for(waiting, 1)).seq == 1
    waiting = asyncio.create_task(subscriber.next())
    await asyncio.sleep(0)
    subscriber.end(EndReason.ROOM_GONE)
    with pytest.raises(SubscriptionEnded):
        await asyncio.wait_for(waiting, 1)


async def test_garbage_does_not_stop_the_relay():
    relay, _ = connected_relay()
    subscriber = await relay.subscribe(ROOM_A, ALICE)
    await relay._on_message(SimpleNamespace(exchange=MESSAGES_EXCHANGE, routing_key="message_created", body=b"\xff"))
    await relay._on_message(message(MESSAGES_EXCHANGE, "message_created", {"room_id": ROOM_A}))
    await relay._on_message(message(ROOMS_EXCHANGE, "room_deleted", "not a dict"))
    await relay._on_message(created(ROOM_A, 1, uid(1)))
    assert drain(subscriber) == [("new", 1)]


async def test_losing_the_connection_ends_everyone_and_voids_bindings():
    relay, _ = connected_relay()
    subscribers = [await relay.subscribe(ROOM_A, ALICE), await relay.subscribe(ROOM_B, BOB)]
    relay.users.learn({"id": ALICE, "username": "alice"})
    relay._lose_connection()
    assert {s.end_reason for s in subscribers} == {EndReason.RELAY_LOST}
    assert relay.bound_rooms == frozenset() and not relay.connected
    assert relay.users._records == {}  # user events may have been missed
    with pytest.raises(RelayUnavailable):
        await relay.subscribe(ROOM_A, ALICE)
    for subscriber in subscribers:
        await relay.unsubscribe(subscriber)  # no broker call: the queue died with the connection


async def test_a_binding_made_on_a_lost_connection_does_not_count():
    queue = FakeQueue()
    relay, _ = connected_relay(queue)

    async def bind_then_lose(*args: Any, **kwargs: Any) -> None:
        relay._lose_connection()
        relay._queue, relay._router, relay._connected = queue, object(), True  # reconnected meanwhile

    queue.bind = bind_then_lose  # type: ignore[method-assign]
    with pytest.raises(RelayUnavailable):
        await relay.subscribe(ROOM_A, ALICE)
    assert relay.bound_rooms == frozenset()


async def test_periodic_recheck_ends_who_no_longer_may_follow():
    carol, dave, erin = uid(3), uid(4), uid(5)
    rpc = FakeRpc(
        {
            "rooms.get_many": lambda ids: [None if room == ROOM_B else {"id": room} for room in ids],
            "rooms.participants_of": lambda ids: {ROOM_A: [ALICE, BOB, dave], ROOM_B: [ALICE]},
            "users.get_many": lambda ids: [
                None if user == carol else {"id": user, "is_active": user != dave} for user in ids
            ],
        }
    )
    relay, _ = connected_relay(rpc=rpc)
    keeps = await relay.subscribe(ROOM_A, ALICE)
    room_gone = await relay.subscribe(ROOM_B, ALICE)
    left = await relay.subscribe(ROOM_A, erin)
    deleted = await relay.subscribe(ROOM_A, carol)
    inactive = await relay.subscribe(ROOM_A, dave)
    unchecked = await relay.subscribe(ROOM_A, erin)  # still in its handshake: not judged yet
    for subscriber in (keeps, room_gone, left, deleted, inactive):
        subscriber.checked_at = 0.0
    await relay.recheck()
    assert keeps.end_reason is None and unchecked.end_reason is None
    assert room_gone.end_reason is EndReason.ROOM_GONE
    assert left.end_reason is EndReason.NOT_PARTICIPANT
    assert deleted.end_reason is EndReason.USER_GONE and inactive.end_reason is EndReason.USER_GONE
    assert len(rpc.calls) == 3  # batched: one call per question, whatever the number of sockets


async def test_ended_wakes_whoever_serves_the_client():
    relay, _ = connected_relay(socket_send_queue=1)
    subscriber = await relay.subscribe(ROOM_A, ALICE)
    watcher = asyncio.create_task(subscriber.ended())
    await relay._on_message(created(ROOM_A, 1, uid(1)))
    await asyncio.sleep(0)
    assert not watcher.done()  # one event fits
    await relay._on_message(created(ROOM_A, 2, uid(2)))  # nobody took the first: the queue is full
    assert await asyncio.wait_for(watcher, 1) is EndReason.LAGGING
