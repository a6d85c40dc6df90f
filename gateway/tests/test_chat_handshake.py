"""The chat socket's handshake (CONTRACT §10.2, D12) driven through the endpoint over fake services: the
RPCs one handshake makes, every refusal in its place, and the D12 changes that come in while it reads;
and the ``roomEvents`` subscription, which follows a room the same way (B6)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from gateway.auth import tokens
from gateway.chat.relay import ROOMS_EXCHANGE, USERS_EXCHANGE, ChatRelay
from gateway.chat.socket import chat_socket
from gateway.chat.subscriptions import ChatSubscription
from gateway.graphql.errors import GatewayError
from gateway.settings import Settings
from gateway.tests.fake_rooms import FakeRooms
from gateway.tests.fake_users import FakeRpc, FakeUsers
from gateway.tests.test_chat_relay import FakeQueue, connected_relay, message

SECRET = "handshake-test-secret-" * 3
ORIGIN = "http://localhost"
HANDSHAKE = ["users.get_by_email", "users.get_by_username", "rooms.room_access"]
RECHECK = ["rooms.get_many", "rooms.participants_of", "users.get_many"]


class ChangingRpc(FakeRpc):
    """A :class:`FakeRpc` that can run a change right after answering a call, as if it was committed
    just after the service read its answer."""

    def __init__(self, **services: Any) -> None:
        super().__init__(**services)
        self.after: dict[str, Callable[[], Awaitable[None]]] = {}

    async def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        answer = await super().call(service, method, *args, **kwargs)
        change = self.after.pop(f"{service}.{method}", None)
        if change is not None:
            await change()
        return answer


class World:
    """Fake users and rooms, an RPC client over them, a connected relay, and one room: ``study-room`` of
    ``host``, with ``host`` and ``alice`` participating and ``bob`` not."""

    def __init__(self) -> None:
        self.users, self.rooms = FakeUsers(), FakeRooms()
        self.host = self.users.add("host", "host@example.com")
        self.alice = self.users.add("alice", "alice@example.com")
        self.bob = self.users.add("bob", "bob@example.com")
        self.room = self.rooms.add(self.host["id"], "Study Room", participants=(self.host["id"], self.alice["id"]))
        self.rpc = ChangingRpc(users=self.users, rooms=self.rooms)
        self.settings = Settings(env="test", jwt_secret=SECRET)
        self.relay: ChatRelay
        self.queue: FakeQueue
        self.relay, self.queue = connected_relay(rpc=self.rpc)
        self.app = SimpleNamespace(state=SimpleNamespace(settings=self.settings, rpc=self.rpc, chat_relay=self.relay))

    def token(self, user: dict[str, Any]) -> str:
        return tokens.issue(user["email"], SECRET, lifetime=600, issued_at=tokens.now()).token

    def scope(self, host: str, slug: str, token: str | None, origin: str | None = ORIGIN) -> dict[str, Any]:
        headers = [(b"host", b"testserver")]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if token is not None:
            headers.append((b"cookie", f"JWT={token}".encode()))
        return {
            "type": "websocket",
            "path": f"/ws/chat/{host}/{slug}",
            "path_params": {"host": host, "slug": slug},
            "headers": headers,
            "query_string": b"",
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "scheme": "ws",
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
            "app": self.app,
        }

    async def emit(self, exchange: str, kind: str, payload: dict[str, Any]) -> None:
        """An event reaching the relay."""
        await self.relay._on_message(message(exchange, kind, payload))  # type: ignore[arg-type]


class Handshake:
    """The endpoint serving one connection attempt."""

    def __init__(self, world: World, scope: dict[str, Any]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.incoming.put_nowait({"type": "websocket.connect"})
        self.sent: list[dict[str, Any]] = []
        self._answered = asyncio.Event()
        self.task = asyncio.create_task(chat_socket(WebSocket(scope, self.incoming.get, self._send)))

    async def _send(self, sent: dict[str, Any]) -> None:
        self.sent.append(sent)
        self._answered.set()

    async def answer(self) -> str:
        """How the handshake was answered: ``websocket.accept``, ``websocket.close`` (HTTP 403) or
        ``websocket.http.response.start`` (an HTTP error)."""
        await asyncio.wait_for(self._answered.wait(), 5)
        return self.sent[0]["type"]

    async def leave(self) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 5)


async def connect(world: World, user: dict[str, Any] | None, host: str = "host", slug: str = "study-room",
                  **kwargs: Any) -> Handshake:
    handshake = Handshake(world, world.scope(host, slug, world.token(user) if user else None, **kwargs))
    await handshake.answer()
    return handshake


async def refused(world: World, user: dict[str, Any] | None, **kwargs: Any) -> list[str]:
    """Connect with nothing in the user directory, expect the HTTP 403 refusal with nothing left
    subscribed; the RPCs made."""
    world.relay.users.clear()
    handshake = await connect(world, user, **kwargs)
    await asyncio.wait_for(handshake.task, 5)
    assert [sent["type"] for sent in handshake.sent] == ["websocket.close"]
    assert world.relay.subscribers() == [] and world.queue.bound == set()
    return world.rpc.methods_called()


# --- the chat socket ---------------------------------------------------------------------------------------


async def test_a_handshake_makes_three_rpcs_under_one_call_id(caplog):
    world = World()
    with caplog.at_level(logging.INFO, logger="gateway.chat"):
        handshake = await connect(world, world.alice)
    assert await handshake.answer() == "websocket.accept"
    # users.get_by_email for the token, users.get_by_username for the host, and rooms.room_access for the
    # room and the participation together; the user is the token's, not read again.
    assert world.rpc.methods_called() == HANDSHAKE
    stacks = {tuple(stack or ()) for *_, stack in world.rpc.calls}
    assert len(stacks) == 1 and len(next(iter(stacks))) == 1
    (subscriber,) = world.relay.subscribers()
    assert (subscriber.room_id, subscriber.user_id) == (world.room["id"], world.alice["id"])
    assert world.relay.users.lookup(world.alice["id"]).done()  # the author of what this socket sends
    (opened,) = [record for record in caplog.records if record.getMessage() == "chat socket opened"]
    assert (opened.rpc_calls, opened.call_id) == (3, next(iter(stacks))[0])  # type: ignore[attr-defined]
    await handshake.leave()
    assert world.relay.subscribers() == [] and world.queue.bound == set()


async def test_a_warm_handshake_reads_the_users_from_the_directory():
    world = World()
    first = await connect(world, world.alice)
    world.rpc.calls.clear()
    second = await connect(world, world.alice)
    assert await second.answer() == "websocket.accept"
    assert world.rpc.methods_called() == ["rooms.room_access"]
    await first.leave()
    await second.leave()


async def test_refusals_in_the_contract_order():
    world = World()
    assert await refused(world, world.alice, origin="http://evil.example") == []
    world.rpc.calls.clear()
    assert await refused(world, None) == []
    world.rpc.calls.clear()
    assert await refused(world, world.alice, host="bad host") == ["users.get_by_email"]
    world.rpc.calls.clear()
    assert await refused(world, world.alice, host="nobody") == ["users.get_by_email", "users.get_by_username"]
    world.rpc.calls.clear()
    assert await refused(world, world.alice, slug="no-such-room") == HANDSHAKE  # 4404's case
    world.rpc.calls.clear()
    assert await refused(world, world.bob) == HANDSHAKE  # 4403's case


async def test_the_host_is_not_exempt():
    world = World()
    world.rooms.members[world.room["id"]].remove(world.host["id"])
    # The token's user is the host: the directory knows the host's id from that first read.
    assert await refused(world, world.host) == ["users.get_by_email", "rooms.room_access"]


async def test_an_account_that_is_gone_or_inactive_is_refused_after_one_rpc():
    world = World()
    world.users.users[world.alice["id"]]["is_active"] = False
    assert await refused(world, world.alice) == ["users.get_by_email"]  # 4401's case
    world.rpc.calls.clear()
    del world.users.users[world.bob["id"]]
    assert await refused(world, world.bob) == ["users.get_by_email"]


async def test_a_service_that_does_not_answer_is_a_503():
    world = World()
    world.rpc.down.add("rooms")
    handshake = await connect(world, world.alice)
    assert await handshake.answer() == "websocket.http.response.start"
    assert handshake.sent[0]["status"] == 503
    await asyncio.wait_for(handshake.task, 5)
    assert world.relay.subscribers() == []


# D12: a change committed just after the handshake read what it changes, its event reaching the relay
# before the subscriber is registered. The handshake must see it and re-check by RPC.


async def test_leaving_while_the_handshake_reads_refuses_it():
    world = World()

    async def leave() -> None:
        world.rooms.members[world.room["id"]].remove(world.alice["id"])
        payload = {"room_id": world.room["id"], "user_id": world.alice["id"], "membership_version": 9}
        await world.emit(ROOMS_EXCHANGE, "participant_left", payload)

    world.rpc.after["rooms.room_access"] = leave
    assert await refused(world, world.alice) == HANDSHAKE + RECHECK


async def test_deleting_the_room_while_the_handshake_reads_refuses_it():
    world = World()

    async def delete() -> None:
        world.rooms.delete_room(world.room["id"], world.host["id"])
        await world.emit(ROOMS_EXCHANGE, "room_deleted", {"id": world.room["id"], "host_id": world.host["id"]})

    world.rpc.after["rooms.room_access"] = delete
    assert await refused(world, world.alice) == HANDSHAKE + RECHECK


@pytest.mark.parametrize("kind", ["user_deleted", "user_updated"])
async def test_the_user_going_while_the_handshake_reads_refuses_it(kind):
    world = World()

    async def go() -> None:
        if kind == "user_deleted":
            del world.users.users[world.alice["id"]]
        else:
            world.users.users[world.alice["id"]]["is_active"] = False
        await world.emit(USERS_EXCHANGE, kind, {**world.alice, "is_active": False})

    world.rpc.after["users.get_by_email"] = go  # the user was read first
    assert await refused(world, world.alice) == HANDSHAKE + RECHECK


async def test_a_stale_event_is_judged_by_a_fresh_read():
    """A leave whose event arrives late, after the user joined again: the re-check finds them a participant."""
    world = World()

    async def late_event() -> None:
        payload = {"room_id": world.room["id"], "user_id": world.alice["id"], "membership_version": 1}
        await world.emit(ROOMS_EXCHANGE, "participant_left", payload)

    world.rpc.after["rooms.room_access"] = late_event
    handshake = await connect(world, world.alice)
    assert await handshake.answer() == "websocket.accept"
    assert world.rpc.methods_called() == HANDSHAKE + RECHECK
    await handshake.leave()


async def test_changes_of_other_rooms_and_users_cost_no_recheck():
    world = World()
    other = world.rooms.add(world.bob["id"], "Elsewhere", participants=(world.bob["id"], world.alice["id"]))

    async def elsewhere() -> None:
        await world.emit(ROOMS_EXCHANGE, "participant_left", {"room_id": other["id"], "user_id": world.alice["id"]})
        await world.emit(ROOMS_EXCHANGE, "participant_left", {"room_id": world.room["id"], "user_id": world.bob["id"]})
        await world.emit(ROOMS_EXCHANGE, "room_deleted", {"id": other["id"], "host_id": world.bob["id"]})
        await world.emit(USERS_EXCHANGE, "user_deleted", {"id": world.bob["id"]})
        await world.emit(USERS_EXCHANGE, "user_updated", {**world.alice, "avatar": "avatars/new.png"})

    world.rpc.after["rooms.room_access"] = elsewhere
    handshake = await connect(world, world.alice)
    assert await handshake.answer() == "websocket.accept"
    assert world.rpc.methods_called() == HANDSHAKE
    await handshake.leave()


async def test_a_change_after_the_registration_ends_the_subscriber_as_before():
    world = World()
    handshake = await connect(world, world.alice)
    assert await handshake.answer() == "websocket.accept"
    world.rooms.members[world.room["id"]].remove(world.alice["id"])
    await world.emit(ROOMS_EXCHANGE, "participant_left", {"room_id": world.room["id"], "user_id": world.alice["id"]})
    await asyncio.wait_for(handshake.task, 5)
    assert handshake.sent[-1] == {"type": "websocket.close", "code": 4403, "reason": ""}


# --- the roomEvents subscription -----------------------------------------------------------------------------


async def subscribe(world: World, user: dict[str, Any], host: str = "host", slug: str = "study-room") -> Any:
    """Run the ``roomEvents`` resolver as the subscription transport does; the event stream it returns."""
    connection = HTTPConnection(world.scope(host, slug, world.token(user)))
    info = SimpleNamespace(
        context=SimpleNamespace(settings=world.settings, request=connection, avatar_store=None)
    )
    field = next(f for f in ChatSubscription.__strawberry_definition__.fields if f.python_name == "room_events")
    return await field.base_resolver.wrapped_func(ChatSubscription(), info, host_slug=host, room_slug=slug)


async def test_a_subscription_follows_the_room_with_the_same_three_rpcs():
    world = World()
    stream = await subscribe(world, world.alice)
    assert world.rpc.methods_called() == HANDSHAKE
    assert len({tuple(stack or ()) for *_, stack in world.rpc.calls}) == 1  # the subscription's call id
    assert [s.user_id for s in world.relay.subscribers()] == [world.alice["id"]]
    await stream.aclose()


@pytest.mark.parametrize(
    "who, slug, message",
    [("bob", "study-room", "Permission denied"), ("alice", "no-such-room", "Room not found")],
)
async def test_a_subscription_is_refused_with_the_contract_errors(who, slug, message):
    world = World()
    with pytest.raises(GatewayError) as refusal:
        await subscribe(world, getattr(world, who), slug=slug)
    assert refusal.value.message == message
    assert world.rpc.methods_called() == HANDSHAKE
    assert world.relay.subscribers() == []
