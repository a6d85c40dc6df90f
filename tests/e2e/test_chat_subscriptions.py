"""The ``roomEvents`` subscription end to end, over ``graphql-transport-ws`` on ``/graphql/`` (CONTRACT §2.2,
B6, C12, D8, D9, D12): the same events as the room's chat socket, in the same order; subscribe errors and
terminations as ``error`` messages."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.conftest import create_room, join, leave, unique
from tests.e2e.test_chat import (
    DELETE_ACCOUNT,
    DELETE_ROOM,
    ORIGIN,
    TIMEOUT,
    UPDATE_MESSAGE,
    Room,
    gateways,  # noqa: F401  (fixture)
    gql,
    make_room,
    posted,
    tuned_gateway,  # noqa: F401  (fixture)
    ws_base,
)

LOGIN_REQUIRED = {"message": "You do not have permission to perform this action", "extensions": {"code": "UNAUTHENTICATED"}}
ROOM_NOT_FOUND = {"message": "Room not found", "extensions": {"code": "NOT_FOUND"}}
PERMISSION_DENIED = {"message": "Permission denied", "extensions": {"code": "PERMISSION_DENIED"}}

ROOM_EVENTS = """subscription Events($h: String!, $r: String!) {
  roomEvents(hostSlug: $h, roomSlug: $r) {
    action id message { id body edited updated created seq user { id username avatar } room { id slug } }
  }
}"""


class Subscriptions:
    """One ``graphql-transport-ws`` connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(
        cls,
        base_url: str,
        *,
        token: str | None = None,
        cookie: str | None = None,
        path: str = "/graphql/",
        origin: str | None = ORIGIN,
    ) -> Subscriptions:
        """Connect and initialise, with ``Authorization`` in ``connection_init`` when ``token`` is given
        and/or a ``JWT`` cookie on the upgrade."""
        headers = {"Cookie": f"JWT={cookie}"} if cookie else {}
        ws = await connect(
            ws_base(base_url) + path,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            origin=origin,  # type: ignore[arg-type]
            additional_headers=headers,
            proxy=None,
            open_timeout=TIMEOUT,
        )
        assert ws.subprotocol == "graphql-transport-ws"
        connection = cls(ws)
        await connection.send({"type": "connection_init", "payload": {"Authorization": f"JWT {token}"} if token else {}})
        assert await connection.next() == {"type": "connection_ack"}
        return connection

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def next(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def subscribe(self, operation_id: str, host: str, slug: str, query: str = ROOM_EVENTS) -> None:
        await self.send({"id": operation_id, "type": "subscribe",
                         "payload": {"query": query, "variables": {"h": host, "r": slug}}})

    async def event(self, operation_id: str = "1", timeout: float = TIMEOUT) -> dict[str, Any]:
        message = await self.next(timeout)
        assert (message["type"], message["id"]) == ("next", operation_id), message
        assert list(message["payload"]) == ["data"], message
        return message["payload"]["data"]["roomEvents"]

    async def error(self, operation_id: str = "1") -> dict[str, Any]:
        """The one error ending an operation: ``{"message", "extensions"}``."""
        message = await self.next()
        assert (message["type"], message["id"]) == ("error", operation_id), message
        (error,) = message["payload"]
        return {"message": error["message"], "extensions": error["extensions"]}

    async def quiet(self, seconds: float = 0.5) -> None:
        try:
            message = await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {message}")

    async def close(self) -> None:
        await self.ws.close()


async def ready(
    connection: Subscriptions, room: Room, user: dict[str, Any], base: str, operation_id: str = "1"
) -> None:
    """Subscribe, and return once the subscription is live. The server sends nothing when a subscription
    starts, so probes are posted through a socket until one comes through (later probes are drained)."""
    await connection.subscribe(operation_id, room.host_name, room.slug)
    chat = await room.open(base, user)
    probes: list[str] = []
    try:
        async with asyncio.timeout(TIMEOUT * 2):
            while True:
                probes.append((await posted(chat, f"probe {len(probes)}"))["id"])
                try:
                    seen = (await connection.event(operation_id, timeout=1.0))["id"]
                except TimeoutError:
                    continue  # posted before the subscription was live: never delivered
                for _ in probes[probes.index(seen) + 1 :]:
                    await connection.event(operation_id)
                return
    finally:
        await chat.close()


async def ending(connection: Subscriptions, operation_id: str = "1") -> dict[str, Any]:
    """The error that ends an operation, skipping the events still arriving before it."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            message = await connection.next()
            if message["type"] != "next":
                assert (message["type"], message["id"]) == ("error", operation_id), message
                (error,) = message["payload"]
                return {"message": error["message"], "extensions": error["extensions"]}


async def test_the_subscription_gets_what_the_socket_gets_in_the_same_order(api, gateways):  # noqa: F811
    room = make_room(api, members=1)
    member = room.members[0]
    events = await Subscriptions.open(gateways[1], token=member["token"])
    await ready(events, room, member, gateways[0])
    chat = await room.open(gateways[0], member)
    frames = []
    new = await posted(chat, "hello")
    frames.append(new)
    await chat.send(type="update", messageId=new["id"], message="hello again")
    frames.append(await chat.next())
    await gql(api, UPDATE_MESSAGE, {"id": new["id"], "b": "edited by graphql"}, member["token"])
    frames.append(await chat.next())
    await chat.send(type="delete", messageId=new["id"])
    frames.append(await chat.next())
    received = [await events.event() for _ in frames]
    assert [(e["action"], e["id"]) for e in received] == [(f["action"], f["id"]) for f in frames]
    created = received[0]["message"]
    assert {key: created[key] for key in ("id", "body", "edited", "seq", "created", "updated")} == {
        "id": new["id"], "body": "hello", "edited": False, "seq": new["seq"], "created": new["created"],
        "updated": new["updated"]}
    assert created["user"] == {"id": member["id"], "username": member["username"], "avatar": ""}
    assert created["room"] == {"id": room.id, "slug": room.slug}
    assert [e["message"]["body"] for e in received[1:3]] == ["hello again", "edited by graphql"]
    assert [e["message"]["seq"] for e in received[1:3]] == [frames[1]["seq"], frames[2]["seq"]]
    assert received[3] == {"action": "delete", "id": new["id"], "message": None}
    await events.quiet(0.3)
    await events.close()
    await chat.close()


async def test_cookie_authentication_and_the_path_without_slash(api, gateways):  # noqa: F811
    room = make_room(api, members=1)
    member = room.members[0]
    events = await Subscriptions.open(gateways[0], cookie=member["token"], path="/graphql")
    await ready(events, room, member, gateways[1])
    await events.close()


async def test_subscribe_errors(api, gateways):  # noqa: F811
    room = make_room(api, members=1)
    outsider = api.new_user()
    anonymous = await Subscriptions.open(gateways[0])
    await anonymous.subscribe("1", room.host_name, room.slug)
    assert await anonymous.error() == LOGIN_REQUIRED
    await anonymous.close()

    garbage = await Subscriptions.open(gateways[0], token="garbage")
    await garbage.subscribe("1", room.host_name, room.slug)
    assert await garbage.error() == {"message": "Error decoding signature", "extensions": {"code": "UNAUTHENTICATED"}}
    await garbage.close()

    events = await Subscriptions.open(gateways[1], token=outsider["token"])
    await events.subscribe("1", room.host_name, "no-such-room")
    assert await events.error("1") == ROOM_NOT_FOUND
    await events.subscribe("2", "nobody-" + uuid.uuid4().hex[:8], room.slug)
    assert await events.error("2") == ROOM_NOT_FOUND
    await events.subscribe("3", room.host_name, room.slug)
    assert await events.error("3") == PERMISSION_DENIED
    # the connection is still usable, and the id is free again
    join(api, outsider, {"id": room.id})
    await ready(events, room, outsider, gateways[0], "3")
    await events.close()


async def test_terminations_end_with_an_error(api, gateways):  # noqa: F811
    room = make_room(api, members=2)
    leaver, stayer = room.members
    leaving = await Subscriptions.open(gateways[1], token=leaver["token"])
    await ready(leaving, room, leaver, gateways[0])
    staying = await Subscriptions.open(gateways[0], token=stayer["token"])
    await ready(staying, room, stayer, gateways[1])
    await asyncio.to_thread(leave, api, leaver, {"id": room.id})
    assert await ending(leaving) == PERMISSION_DENIED
    await leaving.quiet(0.3)  # no `complete` after the `error`
    await gql(api, DELETE_ROOM, {"id": room.id}, room.host["token"])
    assert await ending(staying) == ROOM_NOT_FOUND

    other = make_room(api, members=1)
    member = other.members[0]
    gone = await Subscriptions.open(gateways[1], token=member["token"])
    await ready(gone, other, member, gateways[0])
    await gql(api, DELETE_ACCOUNT, {"p": member["password"]}, member["token"])
    assert await ending(gone) == LOGIN_REQUIRED
    for connection in (leaving, staying, gone):
        await connection.close()


async def test_200_character_host_and_slug(api, gateways):  # noqa: F811
    host_name = (unique("h") + "q" * 200)[:200]
    host = api.register(username=host_name, email=f"{unique()}@example.com")
    host["token"] = api.login(host["email"])
    record = create_room(api, host, name=("Room " + uuid.uuid4().hex + "z" * 200)[:200])
    room = Room(record["id"], record["slug"], host, [])
    assert len(host_name) == len(room.slug) == 200
    events = await Subscriptions.open(gateways[0], token=host["token"])
    await ready(events, room, host, gateways[1])
    await events.close()


async def test_origin_is_checked_and_queries_stay_on_http(api, gateways):  # noqa: F811
    member = api.new_user()
    for origin in ("http://evil.example", None):
        with pytest.raises(InvalidStatus) as refused:
            await Subscriptions.open(gateways[0], token=member["token"], origin=origin)
        assert refused.value.response.status_code == 403
    connection = await Subscriptions.open(gateways[0], token=member["token"], origin="http://127.0.0.1:3000")
    await connection.send({"id": "q", "type": "subscribe", "payload": {"query": "{ __typename }"}})
    assert await connection.error("q") == {
        "message": "Only subscriptions are available over WebSocket.", "extensions": {"code": "BAD_REQUEST"}}
    await connection.send({"id": "m", "type": "subscribe", "payload": {"query": "mutation { deleteToken { deleted } }"}})
    assert (await connection.error("m"))["extensions"] == {"code": "BAD_REQUEST"}
    await connection.close()


async def test_limits_apply_to_subscription_connections(api, gateways):  # noqa: F811
    member = api.new_user()
    connection = await Subscriptions.open(gateways[1], token=member["token"])
    for i in range(16):
        await connection.send({"id": f"q{i}", "type": "subscribe", "payload": {"query": "{ __typename }"}})
    answers = [await connection.error(f"q{i}") for i in range(16)]
    codes = [answer["extensions"]["code"] for answer in answers]
    # a burst of ten messages, connection_init included, then five a second
    assert codes.count("RATE_LIMITED") >= 4 and codes.count("BAD_REQUEST") >= 9
    assert {a["message"] for a in answers if a["extensions"]["code"] == "RATE_LIMITED"} == {"Rate limit exceeded."}
    await connection.ws.send(json.dumps({"type": "ping", "payload": {"pad": "x" * 17000}}))
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(connection.ws.recv(), TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_the_gateways_own_frame_cap_applies_to_subscriptions(api, tuned_gateway):  # noqa: F811
    member = api.new_user()
    connection = await Subscriptions.open(tuned_gateway, token=member["token"])  # SOCKET_MAX_FRAME_BYTES=4096
    await connection.send({"type": "ping", "payload": {"pad": "x" * 3000}})
    assert await connection.next() == {"type": "pong"}
    await connection.send({"type": "ping", "payload": {"pad": "x" * 5000}})
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(connection.ws.recv(), TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
