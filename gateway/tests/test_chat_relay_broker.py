"""The chat relay on a real RabbitMQ (a virtual host of this module alone): per-room routing between two
gateway processes' relays, D12 events, and a lost broker connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import pytest
import pytest_asyncio

from gateway.chat.relay import ChatRelay, EndReason, Subscriber, SubscriptionEnded
from gateway.settings import Settings
from testing.infra import close_vhost_connections, isolated_vhost

ROOM_A = "0d8f9c4e-5f56-4d77-9d0b-1d4f0a6f3c21"
ROOM_B = "1e9fad5f-6a67-4e88-8e1c-2e5a1b7a4d32"
ALICE = "7c1d2b1e-3a4f-4f5e-8a9b-0c1d2e3f4a5b"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def chat_vhost(rabbit_server: tuple[str, str | None], vhost_name: str) -> Iterator[tuple[str, str]]:
    """(name, AMQP URI): connections are dropped here, which must not disturb other tests."""
    uri, management = rabbit_server
    name = f"{vhost_name}_chat"
    with isolated_vhost(uri, management, name) as vhost_uri:
        yield name, vhost_uri


class CountingRelay(ChatRelay):
    """A relay that counts what its queue delivers."""

    delivered = 0

    async def _on_message(self, message: Any) -> None:
        self.delivered += 1
        await super()._on_message(message)


@pytest_asyncio.fixture
async def relays(chat_vhost: tuple[str, str]) -> AsyncIterator[list[CountingRelay]]:
    """Two relays: two gateway processes."""
    started = [CountingRelay(Settings(env="test", amqp_uri=chat_vhost[1]), None) for _ in range(2)]
    for relay in started:
        await relay.start()
        assert relay.connected
    try:
        yield started
    finally:
        for relay in started:
            await relay.close()


class Publisher:
    """Publishes as the services' outbox does: nameko's topic exchanges, the event type as routing key, a
    JSON body, and the ``room_id`` header when the payload has one."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.connection: aio_pika.abc.AbstractConnection | None = None

    async def publish(self, service: str, event_type: str, payload: dict[str, Any]) -> None:
        if self.connection is None or self.connection.is_closed:
            self.connection = await aio_pika.connect(self.uri)
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(f"{service}.events", aio_pika.ExchangeType.TOPIC, durable=True)
        headers = {"room_id": payload["room_id"]} if "room_id" in payload else {}
        message = aio_pika.Message(json.dumps(payload).encode(), content_type="application/json", headers=headers)
        await exchange.publish(message, routing_key=event_type)
        await channel.close()

    async def created(self, room: str, seq: int) -> None:
        record = {"id": f"00000000-0000-4000-8000-{seq:012d}", "room_id": room, "user_id": ALICE, "body": f"m{seq}",
                  "edited": False, "created": "c", "updated": "u", "seq": seq}
        await self.publish("messages", "message_created", {"room_id": room, "seq": seq, "message": record})

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


@pytest_asyncio.fixture
async def publisher(chat_vhost: tuple[str, str]) -> AsyncIterator[Publisher]:
    publisher = Publisher(chat_vhost[1])
    try:
        yield publisher
    finally:
        await publisher.close()


async def next_seqs(subscriber: Subscriber, count: int) -> list[int]:
    async with asyncio.timeout(TIMEOUT):
        return [(await subscriber.next()).seq for _ in range(count)]


async def test_a_rooms_events_reach_only_the_gateways_holding_its_sockets(relays, publisher):
    first, second = relays
    a = await first.subscribe(ROOM_A, ALICE)
    b = await second.subscribe(ROOM_B, ALICE)
    for seq in range(1, 4):
        await publisher.created(ROOM_A, seq)
        await publisher.created(ROOM_B, seq)
    assert await next_seqs(a, 3) == [1, 2, 3]
    assert await next_seqs(b, 3) == [1, 2, 3]
    # Each relay's queue got its own room's events only: the broker filtered, not the gateway.
    assert (first.delivered, second.delivered) == (3, 3)

    await first.unsubscribe(a)
    assert first.bound_rooms == frozenset()
    await publisher.created(ROOM_A, 4)
    await publisher.created(ROOM_B, 4)
    assert await next_seqs(b, 1) == [4]
    assert first.delivered == 3


async def test_state_events_reach_every_gateway(relays, publisher):
    first, second = relays
    here, there = await first.subscribe(ROOM_A, ALICE), await second.subscribe(ROOM_A, ALICE)
    await publisher.publish("rooms", "room_deleted", {"id": ROOM_A, "host_id": ALICE})
    async with asyncio.timeout(TIMEOUT):
        assert await here.ended() is EndReason.ROOM_GONE
        assert await there.ended() is EndReason.ROOM_GONE


async def test_a_lost_connection_ends_the_subscribers_and_is_made_again(relays, publisher, chat_vhost):
    relay = relays[0]
    subscriber = await relay.subscribe(ROOM_A, ALICE)
    try:
        await asyncio.to_thread(close_vhost_connections, None, chat_vhost[0])
    except Exception as exc:  # noqa: BLE001 - no rabbitmqctl here
        pytest.skip(f"cannot drop the broker connections: {exc}")
    async with asyncio.timeout(TIMEOUT):
        assert await subscriber.ended() is EndReason.RELAY_LOST  # events may have been missed: the client catches up
    with pytest.raises(SubscriptionEnded):
        await subscriber.next()
    await relay.unsubscribe(subscriber)
    async with asyncio.timeout(TIMEOUT * 2):
        while not relay.connected:
            await asyncio.sleep(0.1)
    again = await relay.subscribe(ROOM_A, ALICE)
    await publisher.created(ROOM_A, 1)
    assert await next_seqs(again, 1) == [1]
    await relay.unsubscribe(again)
