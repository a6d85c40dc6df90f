"""The chat socket end to end: the real services and several gateway processes, spoken to with the
``websockets`` client as browsers speak to it (CONTRACT §10, §12.17; A7, B3, B7, B7a, B7b, C1–C5, C7, C12,
C15, C16, D8, D9, D12).

Gateways: the stack's own, a second one (``chat-second``) so every delivery test crosses processes, and a
``chat-tuned`` one with a generous rate limit, a small send queue, a short RPC timeout and a small frame cap,
for the tests that need those. Every wait is bounded; the only sleeps let a rate limit refill.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.rpc import RpcClient
from testing.services import wait_until
from tests.e2e.conftest import (
    Api,
    create_room,
    data,
    join,
    leave,
    log_record,
    make_token,
    now,
    unique,
)

ORIGIN = "http://localhost"
TIMEOUT = 10.0

NEW_KEYS = ["type", "action", "id", "user", "user_id", "body", "created", "edited", "updated", "userAvatar", "seq"]
UPDATE_KEYS = ["type", "action", "id", "body", "edited", "updated", "seq"]
DELETE_KEYS = ["type", "action", "id", "seq"]

INVALID = {"error": "Invalid message format."}
EMPTY = {"error": "Message cannot be empty."}
TOO_LONG = {"error": "Message exceeds 500 characters."}
NOT_FOUND = {"error": "Message not found."}
UNAVAILABLE = {"error": "Service unavailable."}

UPDATE_MESSAGE = "mutation($id: UUID!, $b: String!) { updateMessage(messageId: $id, body: $b) { message { body } } }"
DELETE_MESSAGE = "mutation($id: UUID!) { deleteMessage(messageId: $id) { success } }"
DELETE_ROOM = "mutation($id: UUID!) { deleteRoom(roomId: $id) { success } }"
DELETE_ACCOUNT = "mutation($p: String!) { deleteAccount(password: $p) { success } }"


# --- helpers ---------------------------------------------------------------------------------------------


def ws_base(base_url: str) -> str:
    return "ws://" + base_url.split("://", 1)[1]


class Chat:
    """One chat socket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def text(self, body: str) -> None:
        await self.send(type="text", message=body, timestamp=int(time.time() * 1000))

    async def next(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def take(self, count: int, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """The next ``count`` frames, all within ``timeout``."""
        async with asyncio.timeout(timeout):
            return [json.loads(await self.ws.recv()) for _ in range(count)]

    async def quiet(self, seconds: float = 0.5) -> None:
        """Nothing more arrives within ``seconds``."""
        try:
            frame = await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame}")

    async def close_code(self, timeout: float = TIMEOUT) -> int | None:
        """Wait for the server to end the connection; its close code, ``None`` without a close frame.
        Frames still arriving first are ignored."""
        async with asyncio.timeout(timeout):
            try:
                while True:
                    await self.ws.recv()
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd is not None else None

    async def close(self) -> None:
        await self.ws.close()


def chat_url(base_url: str, host: str, slug: str, query: str = "") -> str:
    return f"{ws_base(base_url)}/ws/chat/{host}/{slug}{query}"


async def open_chat(
    base_url: str,
    host: str,
    slug: str,
    token: str | None = None,
    *,
    query: str = "",
    origin: str | None = ORIGIN,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Chat:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Cookie"] = f"JWT={token}"
    ws = await connect(
        chat_url(base_url, host, slug, query),
        origin=origin,  # type: ignore[arg-type]
        additional_headers=all_headers,
        proxy=None,
        open_timeout=TIMEOUT,
        **kwargs,
    )
    return Chat(ws)


async def refusal(base_url: str, host: str, slug: str, token: str | None = None, **kwargs: Any) -> int:
    """The HTTP status of a refused handshake."""
    with pytest.raises(InvalidStatus) as refused:
        chat = await open_chat(base_url, host, slug, token, **kwargs)
        await chat.close()
    return refused.value.response.status_code


@dataclass
class Room:
    id: str
    slug: str
    host: dict[str, Any]
    members: list[dict[str, Any]]

    @property
    def host_name(self) -> str:
        return self.host["username"]

    async def open(self, base_url: str, user: dict[str, Any], **kwargs: Any) -> Chat:
        return await open_chat(base_url, self.host_name, self.slug, user["token"], **kwargs)


def make_room(api: Api, members: int = 2, **room: Any) -> Room:
    """A room with its host (a participant) and ``members`` more participants."""
    host = api.new_user()
    record = create_room(api, host, **room)
    users = [api.new_user() for _ in range(members)]
    for user in users:
        join(api, user, record)
    return Room(record["id"], record["slug"], host, users)


async def gql(api: Api, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    """A GraphQL call that does not block the event loop the sockets run on."""
    return await asyncio.to_thread(api.gql, query, variables, token=token)


async def posted(chat: Chat, body: str) -> dict[str, Any]:
    """Send a text frame and return its ``new`` frame (the sender's own echo)."""
    await chat.text(body)
    frame = await chat.next()
    assert frame["action"] == "new" and frame["body"] == body, frame
    return frame


@pytest.fixture(scope="module")
def gateways(stack) -> list[str]:
    """Two gateway processes on the same services and broker."""
    return [stack.gateway_url, stack.named_gateway("chat-second")]


@pytest.fixture(scope="module")
def tuned_gateway(stack) -> str:
    return stack.named_gateway(
        "chat-tuned",
        SOCKET_RATE="1000",
        SOCKET_BURST="1000",
        SOCKET_SEND_QUEUE="8",
        SOCKET_MAX_FRAME_BYTES="4096",
        RPC_TIMEOUT="2",
    )


# --- handshake (§10.1, §10.2, §12.17, D8, C12) ------------------------------------------------------------


async def test_handshake_refusals_are_http_403(api, gateways):
    room = make_room(api, members=1)
    member, outsider = room.members[0], api.new_user()
    expired = make_token({"email": member["email"], "exp": now() - 10, "origIat": now() - 700})
    for base in gateways:
        args = (base, room.host_name, room.slug)
        assert await refusal(*args, member["token"], origin="http://evil.example") == 403
        assert await refusal(*args, member["token"], origin="http://localhost.evil.example") == 403
        assert await refusal(*args, member["token"], origin=None) == 403
        assert await refusal(*args) == 403  # anonymous
        assert await refusal(*args, "garbage") == 403
        assert await refusal(*args, expired) == 403
        assert await refusal(*args, headers={"Authorization": f"JWT {member['token']}"}) == 403  # cookie only
        assert await refusal(base, room.host_name, "no-such-room", member["token"]) == 403
        assert await refusal(base, unique("nobody"), room.slug, member["token"]) == 403
        assert await refusal(base, room.host_name, "bad%20slug", member["token"]) == 403
        assert await refusal(*args, outsider["token"]) == 403  # not a participant
        # any scheme and port of an allowed host name
        for origin in ("http://localhost:5173", "https://127.0.0.1:8443"):
            chat = await open_chat(*args, member["token"], origin=origin)
            await chat.quiet(0.2)  # nothing is pushed on accept (A7)
            await chat.close()


async def test_the_host_is_not_exempt(api, gateways):
    room = make_room(api, members=1)
    chat = await room.open(gateways[0], room.host)
    await chat.close()
    leave(api, room.host, {"id": room.id})
    assert await refusal(gateways[1], room.host_name, room.slug, room.host["token"]) == 403


async def test_deactivated_or_deleted_users_are_refused(api, gateways, service_rpc):
    room = make_room(api, members=1)
    member = room.members[0]
    await asyncio.to_thread(service_rpc, "users", "set_active", member["id"], False)

    # The gateway hears of a change made straight at the service through its user_updated event; a socket
    # opened before that would be accepted and then closed with 4401 by the same event (D12).
    def disabled() -> bool:
        body = api.gql("{ me { username } }", token=member["token"])
        return body["data"] == {"me": None} and body["errors"][0]["message"] == "User is disabled"

    await asyncio.to_thread(wait_until, disabled, message="the gateway to learn of the deactivation")
    assert await refusal(gateways[0], room.host_name, room.slug, member["token"]) == 403


async def test_slash_form_and_200_character_names(api, gateways):
    """§10.1: the slash form is not a 5xx (it is served alike); C12: 200-character host and slug."""
    host_name = (unique("h") + "x" * 200)[:200]
    host = api.register(username=host_name, email=f"{unique()}@example.com")
    host["token"] = api.login(host["email"])
    assert host["username"] == host_name
    room_name = ("Room " + uuid.uuid4().hex + "y" * 200)[:200]
    record = create_room(api, host, name=room_name)
    assert len(record["slug"]) == 200
    member = api.new_user()
    join(api, member, record)
    room = Room(record["id"], record["slug"], host, [member])
    host_chat = await room.open(gateways[0], host)
    member_chat = await open_chat(gateways[1], host_name, room.slug + "/", member["token"])
    frame = await posted(member_chat, "long names work")
    assert (await host_chat.next())["id"] == frame["id"]
    await host_chat.close()
    await member_chat.close()


def socket_opened_log(stack, user_id: str) -> dict[str, Any]:
    """The first gateway's log line saying a chat socket of ``user_id`` opened."""
    return log_record(
        stack.gateways[0].log_path,
        lambda record: record.get("msg") == "chat socket opened" and record.get("user_id") == user_id,
        f"chat socket opened by {user_id}",
    )


async def test_a_handshake_costs_at_most_three_rpcs(api, stack):
    room = make_room(api, members=1)
    member = room.members[0]
    chat = await room.open(stack.gateway_url, member)
    await chat.close()
    record = await asyncio.to_thread(socket_opened_log, stack, member["id"])
    assert record["room_id"] == room.id
    # The token's user, the host's id, then the room and the participation in one rooms.room_access.
    assert record["rpc_calls"] <= 3, record
    assert record["call_id"].startswith("gateway.chat."), record


# --- delivery (C1, §10.4, A7, B7a) -----------------------------------------------------------------------


async def test_every_socket_gets_every_message_once_in_order_across_gateways(api, gateways):
    room = make_room(api, members=3)
    host, alice, bob, carol = room.host, *room.members
    g1, g2 = gateways
    sockets = {
        "host@1": await room.open(g1, host),
        "alice@1": await room.open(g1, alice),
        "alice@2": await room.open(g2, alice),  # one user, two sockets, two gateways
        "bob@2": await room.open(g2, bob),
        "carol@2": await room.open(g2, carol),
    }
    senders = {"host": (sockets["host@1"], host), "alice": (sockets["alice@1"], alice), "bob": (sockets["bob@2"], bob)}
    per_sender = 4
    total = per_sender * len(senders)

    async def talk(name: str) -> None:
        chat, _ = senders[name]
        for i in range(per_sender):
            await chat.text(f"{name}-{i}")

    received, *_ = await asyncio.gather(
        asyncio.gather(*(chat.take(total, timeout=30) for chat in sockets.values())),
        *(talk(name) for name in senders),
    )
    received = dict(zip(sockets, received, strict=True))
    order = [frame["id"] for frame in received["host@1"]]
    assert len(set(order)) == total
    for name, frames in received.items():
        assert [frame["id"] for frame in frames] == order, name  # same order everywhere, each once
        assert all(frame["action"] == "new" for frame in frames)
        seqs = [frame["seq"] for frame in frames]
        assert seqs == sorted(seqs) and len(set(seqs)) == total
    bodies = [frame["body"] for frame in received["carol@2"]]
    for sender in senders:  # the sender's own order is kept, and its echo came (C1)
        assert [b for b in bodies if b.startswith(sender + "-")] == [f"{sender}-{i}" for i in range(per_sender)]
    frame = received["bob@2"][0]
    author = senders[frame["body"].split("-")[0]][1]
    assert list(frame) == NEW_KEYS
    assert frame["type"] == "chat_message" and frame["id"] == str(uuid.UUID(frame["id"]))
    assert (frame["user"], frame["user_id"], frame["userAvatar"], frame["edited"]) == (
        author["username"], author["id"], None, False)
    assert frame["created"] == frame["updated"] and frame["created"].endswith("+00:00")
    for chat in sockets.values():
        await chat.quiet(0.5)
        await chat.close()


async def test_update_and_delete_frames_carry_stored_canonical_values(api, gateways):
    """C5, C6, C7: the canonical id whatever form the client used, the stored body, an identical edit
    re-announced with the same ``seq`` and ``updated``, GraphQL edits broadcast like socket ones."""
    room = make_room(api, members=1)
    author = room.members[0]
    mine, theirs = await room.open(gateways[0], author), await room.open(gateways[1], room.host)
    new = await posted(mine, "one")
    await theirs.next()
    await mine.send(type="update", messageId=new["id"].upper(), message="two ")
    changed = await mine.next()
    assert changed == await theirs.next()
    assert list(changed) == UPDATE_KEYS
    assert (changed["id"], changed["body"], changed["edited"]) == (new["id"], "two ", True)
    assert changed["seq"] > new["seq"] and changed["updated"] >= new["updated"]
    await mine.send(type="update", messageId=new["id"], message="two ")  # unchanged body (C6)
    same = await mine.next()
    assert same == await theirs.next() == changed
    await gql(api, UPDATE_MESSAGE, {"id": new["id"], "b": "three"}, author["token"])  # C7
    by_graphql = await theirs.next()
    assert by_graphql == await mine.next()
    assert (by_graphql["body"], by_graphql["seq"]) == ("three", changed["seq"] + 1)
    await mine.send(type="delete", messageId="{" + new["id"] + "}")
    gone = await mine.next()
    assert gone == await theirs.next() == {"type": "chat_message", "action": "delete", "id": new["id"],
                                           "seq": by_graphql["seq"] + 1}
    second = await posted(theirs, "four")
    await mine.next()
    await gql(api, DELETE_MESSAGE, {"id": second["id"]}, room.host["token"])
    assert (await mine.next())["action"] == (await theirs.next())["action"] == "delete"
    for chat in (mine, theirs):
        await chat.quiet(0.3)
        await chat.close()


async def test_editing_or_deleting_what_is_not_yours_or_not_here_is_refused(api, gateways):
    """C2, §10.3: errors go to the sender alone, nothing changes, nothing is broadcast."""
    room = make_room(api, members=1)
    author, other = room.members[0], room.host
    elsewhere = create_room(api, author)  # the author hosts another room
    mine, theirs = await room.open(gateways[0], author), await room.open(gateways[1], other)
    away = await open_chat(gateways[1], author["username"], elsewhere["slug"], author["token"])
    message = await posted(mine, "original")
    await theirs.next()

    for frame, expected in [
        ({"type": "update", "messageId": message["id"], "message": "hacked"}, "You can only edit your own messages."),
        ({"type": "update", "messageId": message["id"], "message": ""}, "You can only edit your own messages."),
        ({"type": "delete", "messageId": message["id"]}, "You can only delete your own messages."),
    ]:
        await theirs.send(**frame)
        assert await theirs.next() == {"error": expected}
    for frame in ({"type": "update", "messageId": message["id"], "message": "moved"},
                  {"type": "update", "messageId": message["id"], "message": ""},
                  {"type": "delete", "messageId": message["id"]}):
        await away.send(**frame)
        assert await away.next() == NOT_FOUND  # the author's own message, but of another room
    await mine.send(type="delete", messageId=str(uuid.uuid4()))
    assert await mine.next() == NOT_FOUND
    await mine.send(type="update", messageId=message["id"], message="  ")
    assert await mine.next() == EMPTY
    await mine.send(type="update", messageId=message["id"])
    assert await mine.next() == EMPTY
    await mine.send(type="update", messageId=message["id"], message="x" * 501)
    assert await mine.next() == TOO_LONG
    for chat in (mine, theirs, away):
        await chat.quiet(0.5)
    # still the original, unedited: a catch-up from the start shows it as created
    again = await room.open(gateways[0], other, query="?since=0")
    assert [(f["id"], f["body"], f["edited"]) for f in await again.take(1)] == [(message["id"], "original", False)]
    for chat in (mine, theirs, away, again):
        await chat.close()


# --- client frames (C3, C4, D9) ------------------------------------------------------------------------


async def test_malformed_frames_and_bad_bodies_keep_the_socket_open(api, tuned_gateway):
    room = make_room(api, members=1)
    chat = await room.open(tuned_gateway, room.members[0])
    other = await room.open(tuned_gateway, room.host)
    message_id = str(uuid.uuid4())
    malformed: list[str | bytes] = [
        b"\x00binary",
        "not json",
        "{",
        "[1, 2]",
        '"text"',
        "42",
        "null",
        '{"type": "send_message", "body": "hi"}',
        '{"type": null, "message": "hi"}',
        '{"type": "update", "message": "x"}',
        '{"type": "update", "messageId": "nope", "message": "x"}',
        '{"type": "delete"}',
        '{"type": "delete", "messageId": 42}',
        '{"type": "text", "message": 5}',
        '{"type": "text", "message": {"a": 1}}',
        '{"type": "text", "message": "\\ud800"}',
        f'{{"type": "update", "messageId": "{message_id}", "message": ["x"]}}',
    ]
    for frame in malformed:
        await chat.ws.send(frame)
        assert await chat.next() == INVALID, frame
    for frame in ({"type": "text"}, {"message": None}, {"message": ""}, {"type": "text", "message": " \n\t "}):
        await chat.send(**frame)
        assert await chat.next() == EMPTY, frame
    await chat.send(message="x" * 501)
    assert await chat.next() == TOO_LONG
    longest = await posted(chat, "é" * 500)  # 500 code points: the limit counts characters
    untrimmed = await posted(chat, "  spaced  ")
    assert (await other.take(2)) == [longest, untrimmed]
    await other.quiet(0.3)  # no error frame ever reaches another socket
    await chat.close()
    await other.close()


async def test_frames_over_the_cap_close_with_1009(api, gateways, tuned_gateway):
    room = make_room(api, members=1)
    member = room.members[0]
    for base, cap in ((gateways[0], 16384), (tuned_gateway, 4096)):  # uvicorn's cap, then the gateway's own
        chat = await room.open(base, member)
        await chat.ws.send("x" * cap)
        assert await chat.next() == INVALID
        await chat.ws.send("x" * (cap + 1))
        assert await chat.close_code() == 1009


async def test_over_the_rate_frames_are_answered_and_dropped(api, gateways):
    room = make_room(api, members=1)
    chat = await room.open(gateways[1], room.members[0])
    for _ in range(16):
        await chat.ws.send("not json")
    errors = [frame["error"] for frame in await chat.take(16)]
    assert set(errors) == {"Invalid message format.", "Rate limit exceeded."}
    assert errors.count("Invalid message format.") >= 10 and errors.count("Rate limit exceeded.") >= 4
    await asyncio.sleep(1.0)  # the bucket refills: five frames a second
    await posted(chat, "still open")
    await chat.close()


# --- catch-up (B7b, B7) ------------------------------------------------------------------------------------


async def test_reconnecting_with_since_gets_exactly_the_missed_changes_then_live(api, gateways):
    room = make_room(api, members=1)
    reader, writer = room.members[0], room.host
    g1, g2 = gateways
    away = await room.open(g1, reader)
    talk = await room.open(g2, writer)
    first = {body: await posted(talk, body) for body in ("m1", "m2", "m3")}
    seen = await away.take(3)
    since = seen[-1]["seq"]
    await away.close()

    m4 = await posted(talk, "m4")
    await talk.send(type="update", messageId=first["m1"]["id"], message="m1 edited")
    m1_edit = await talk.next()
    await talk.send(type="delete", messageId=first["m2"]["id"])
    m2_gone = await talk.next()
    m5 = await posted(talk, "m5")
    await talk.send(type="update", messageId=m5["id"], message="m5 edited")
    m5_edit = await talk.next()
    await talk.send(type="delete", messageId=m4["id"])
    m4_gone = await talk.next()

    expected = [
        ("update", first["m1"]["id"], m1_edit["seq"]),
        ("delete", first["m2"]["id"], m2_gone["seq"]),
        ("new", m5["id"], m5_edit["seq"]),  # created after since: new, with its current values
        ("delete", m4["id"], m4_gone["seq"]),  # created and deleted after since
    ]
    for base in (g1, g2):  # whichever gateway the client lands on
        back = await room.open(base, reader, query=f"?since={since}")
        frames = await back.take(len(expected))
        assert [(f["action"], f["id"], f["seq"]) for f in frames] == expected
        assert list(frames[0]) == UPDATE_KEYS and frames[0]["body"] == "m1 edited"
        assert list(frames[2]) == NEW_KEYS and (frames[2]["body"], frames[2]["edited"]) == ("m5 edited", True)
        await back.quiet(0.3)
        live = await posted(talk, f"live on {base}")
        assert await back.take(1) == [live]
        await back.quiet(0.3)
        await back.close()
        expected.append(("new", live["id"], live["seq"]))  # missed by the next reconnection too
    await talk.close()


async def test_since_catch_up_while_the_room_keeps_talking_has_no_gap_and_no_duplicate(api, gateways):
    room = make_room(api, members=1)
    reader, writer = room.members[0], room.host
    talk = await room.open(gateways[0], writer)
    since = (await posted(talk, "before"))["seq"]
    burst = 8  # with "before", within the rate limit's burst of ten
    sent: list[dict[str, Any]] = []
    reconnected = asyncio.Event()

    async def keep_talking() -> None:
        for i in range(burst):
            sent.append(await posted(talk, f"during {i}"))
            if i == 3:
                await asyncio.wait_for(reconnected.wait(), TIMEOUT)

    async def reconnect() -> list[dict[str, Any]]:
        while len(sent) < 3:
            await asyncio.sleep(0.01)  # bounded by the talker's own timeouts
        back = await room.open(gateways[1], reader, query=f"?since={since}")
        reconnected.set()
        frames = []
        async with asyncio.timeout(30):
            while len(frames) < burst:
                frames.append(await back.next())
        await back.quiet(0.5)
        await back.close()
        return frames

    frames, _ = await asyncio.gather(reconnect(), keep_talking())
    assert [f["id"] for f in frames] == [f["id"] for f in sent]
    assert [f["seq"] for f in frames] == sorted(f["seq"] for f in frames)
    await talk.close()


async def test_since_must_be_a_non_negative_integer(api, gateways):
    room = make_room(api, members=1)
    for raw in ("abc", "-1", "1.5", "", "%2B3"):
        chat = await room.open(gateways[0], room.members[0], query=f"?since={raw}")
        assert await chat.next() == INVALID
        assert (await posted(chat, f"live after since={raw}"))["action"] == "new"  # then live only
        await chat.close()
    chat = await room.open(gateways[1], room.members[0], query=f"?since={10**30}")
    await chat.quiet(0.3)  # beyond every seq: nothing to catch up
    await chat.close()


async def test_after_replays_later_messages_then_streams_live(api, gateways):
    room = make_room(api, members=1)
    reader, writer = room.members[0], room.host
    talk = await room.open(gateways[0], writer)
    m1, m2, m3 = [await posted(talk, body) for body in ("a1", "a2", "a3")]
    await talk.send(type="update", messageId=m2["id"], message="a2 edited")
    await talk.next()
    back = await room.open(gateways[1], reader, query=f"?after={m1['id'].upper()}")
    replayed = await back.take(2)
    assert [(f["action"], f["id"], f["body"], f["edited"]) for f in replayed] == [
        ("new", m2["id"], "a2 edited", True),  # current values
        ("new", m3["id"], "a3", False),
    ]
    assert all(list(frame) == NEW_KEYS for frame in replayed)
    await back.quiet(0.3)
    live = await posted(talk, "a4")
    assert await back.take(1) == [live]
    await back.close()

    elsewhere = create_room(api, writer)
    other_room = await open_chat(gateways[0], writer["username"], elsewhere["slug"], writer["token"])
    foreign = await posted(other_room, "another room")
    for after in (str(uuid.uuid4()), "not-a-uuid", foreign["id"]):
        chat = await room.open(gateways[0], reader, query=f"?after={after}")
        assert await chat.next() == NOT_FOUND
        live = await posted(talk, f"live after {after}")
        assert await chat.take(1) == [live]
        await chat.close()
    await talk.close()
    await other_room.close()


# --- state changes (D12, C15, B3) -------------------------------------------------------------------------


async def test_leaving_closes_the_leavers_sockets_with_4403(api, gateways):
    room = make_room(api, members=2)
    leaver, stayer = room.members
    leaving = [await room.open(gateways[0], leaver), await room.open(gateways[1], leaver)]
    staying = await room.open(gateways[1], stayer)
    await asyncio.to_thread(leave, api, leaver, {"id": room.id})
    assert await asyncio.gather(*(chat.close_code() for chat in leaving)) == [4403, 4403]
    await posted(staying, "still here")
    await staying.close()


async def test_deleting_the_room_closes_its_sockets_with_4404(api, gateways):
    room = make_room(api, members=1)
    sockets = [await room.open(gateways[0], room.host), await room.open(gateways[1], room.members[0])]
    other = make_room(api, members=0)
    bystander = await other.open(gateways[0], other.host)
    assert data(await gql(api, DELETE_ROOM, {"id": room.id}, room.host["token"]), "deleteRoom") == {"success": True}
    assert await asyncio.gather(*(chat.close_code() for chat in sockets)) == [4404, 4404]
    await posted(bystander, "other rooms are unaffected")
    await bystander.close()


async def test_deleting_the_account_closes_its_sockets_with_4401(api, gateways):
    room = make_room(api, members=1)  # hosted by someone else
    leaver = room.members[0]
    own = create_room(api, leaver)  # hosted by the leaver: deleted with the account
    guest = api.new_user()
    join(api, guest, own)
    in_room = await room.open(gateways[0], leaver)
    in_own = await open_chat(gateways[1], leaver["username"], own["slug"], leaver["token"])
    guest_chat = await open_chat(gateways[0], leaver["username"], own["slug"], guest["token"])
    host_chat = await room.open(gateways[1], room.host)
    bye = await posted(in_room, "bye")
    await host_chat.next()
    body = await gql(api, DELETE_ACCOUNT, {"p": leaver["password"]}, leaver["token"])
    assert data(body, "deleteAccount") == {"success": True}
    assert await asyncio.gather(in_room.close_code(), in_own.close_code(), guest_chat.close_code()) == [
        4401, 4401, 4404]
    # B3: the message is gone from the room that remains
    gone = await host_chat.next()
    assert (gone["action"], gone["id"]) == ("delete", bye["id"])
    await host_chat.close()


async def test_deactivation_closes_the_users_sockets_with_4401(api, gateways, service_rpc):
    room = make_room(api, members=1)
    member = room.members[0]
    chat = await room.open(gateways[1], member)
    host_chat = await room.open(gateways[0], room.host)
    await asyncio.to_thread(service_rpc, "users", "set_active", member["id"], False)
    assert await chat.close_code() == 4401
    await posted(host_chat, "the host stays")
    await host_chat.close()


# --- resilience ---------------------------------------------------------------------------------------------


async def test_a_slow_client_does_not_delay_the_others(api, stack, tuned_gateway):
    """A socket that stops reading fills its queue and is dropped without a close frame; the other sockets
    of the room, on the same gateway, keep receiving promptly. The dropped client then catches up."""
    room = make_room(api, members=2)
    slow_user, fast_user = room.members
    poster = room.host
    url = urlsplit(tuned_gateway)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader that takes little at a time
    raw.connect((url.hostname, url.port))
    # Uncompressed, so the frames really fill the buffers between the gateway and this client; no
    # keepalive pings, which a client that does not read could not answer.
    slow = await open_chat(
        tuned_gateway, room.host_name, room.slug, slow_user["token"],
        sock=raw, max_queue=1, compression=None, ping_interval=None,
    )
    fast = await room.open(tuned_gateway, fast_user)
    rpc = RpcClient(stack.amqp_uri, default_timeout=TIMEOUT)
    await rpc.start()
    filler = "😀" * 495  # twelve bytes a character once JSON-escaped: ~6 KB frames
    posted_at: dict[str, float] = {}
    lags: list[float] = []

    async def read_fast(count: int) -> list[dict[str, Any]]:
        frames = []
        async with asyncio.timeout(120):
            while len(frames) < count:
                frame = await fast.next(timeout=60)
                lags.append(max(0.0, time.monotonic() - posted_at.setdefault(frame["body"][:5], time.monotonic())))
                frames.append(frame)
        return frames

    gateway_log = stack.gateways[stack.gateway_urls.index(tuned_gateway)].log_path
    dropped_before = gateway_log.read_text(errors="replace").count("lagging")
    sent = 0
    reader = None
    try:
        # Post until the gateway reports the slow socket dropped (its buffers are of unknown size).
        while gateway_log.read_text(errors="replace").count("lagging") == dropped_before:
            assert sent < 3000, "the slow socket was never dropped"

            async def post(key: str) -> None:
                await rpc.call("messages", "post_message", room.id, poster["id"], key + filler)
                posted_at.setdefault(key, time.monotonic())  # stored (the frame may even come first)

            await asyncio.gather(*(post(f"{sent + i:05d}") for i in range(50)))
            sent += 50
            if reader is None:
                reader = asyncio.create_task(read_fast(10**9))
            await asyncio.sleep(0.2)  # let the log line be written (bounded by the loop's own limit)
        total = sent
        async with asyncio.timeout(60):
            while len(lags) < total:
                await asyncio.sleep(0.05)
    finally:
        if reader is not None:
            reader.cancel()
        await rpc.close()
    print(f"\nslow-client test: {total} messages; stored -> received by the fast socket: median "
          f"{statistics.median(lags) * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms")
    assert max(lags) < 5.0  # never held back by the slow socket

    received = []
    async with asyncio.timeout(60):
        try:
            while True:
                received.append(json.loads(await slow.ws.recv()))
        except ConnectionClosed as closed:
            assert closed.rcvd is None  # no close frame: the reference client reconnects
    assert len(received) < total
    since = received[-1]["seq"] if received else 0
    back = await room.open(tuned_gateway, slow_user, query=f"?since={since}")
    rest = await back.take(total - len(received), timeout=60)
    caught_up = received + rest
    assert sorted(f["body"][:5] for f in caught_up) == [f"{i:05d}" for i in range(total)]  # each once
    assert [f["seq"] for f in caught_up] == sorted(f["seq"] for f in caught_up)
    await back.quiet(0.3)
    await back.close()
    await fast.close()


async def test_messages_sent_while_the_messages_service_is_down_are_answered_or_delivered(
    api, stack, gateways, tuned_gateway
):
    room = make_room(api, members=1)
    sender, reader = room.members[0], room.host
    talk = await room.open(tuned_gateway, sender)  # RPC_TIMEOUT=2
    listen = await room.open(gateways[0], reader)
    messages = stack.services["messages"]
    down_bodies = ["while down 1", "while down 2"]
    answers = []
    messages.kill()
    try:
        for body in down_bodies:
            await talk.text(body)
            answers.append(await talk.next(timeout=30))  # never silence
    finally:
        messages.start()
        await asyncio.to_thread(stack.wait_ready, 90)
    after = await posted(talk, "after restart")
    frames = answers + [after]
    async with asyncio.timeout(30):  # anything still arriving
        try:
            while True:
                frames.append(await talk.next(timeout=2))
        except TimeoutError:
            pass
    delivered = [f["body"] for f in frames if f.get("action") == "new"]
    errors = [f for f in frames if "error" in f]
    assert all(error == UNAVAILABLE for error in errors)
    for body in down_bodies:  # each answered with an error or stored and delivered, never twice
        assert delivered.count(body) <= 1
    assert len(errors) + sum(delivered.count(body) for body in down_bodies) >= len(down_bodies)
    assert delivered.count("after restart") == 1
    heard = [f["body"] for f in await listen.take(len(delivered))]
    assert heard == delivered
    await listen.quiet(0.3)
    await talk.close()
    await listen.close()


# --- latency -------------------------------------------------------------------------------------------------


async def test_latency_of_one_message_in_a_ten_member_room(api, gateways, capsys):
    """Measured, not asserted: send → receipt at every member, members spread over two gateways."""
    room = make_room(api, members=9)
    members = [room.host, *room.members]
    chats = [await room.open(gateways[i % 2], member) for i, member in enumerate(members)]
    rounds = 30
    latencies = []
    for round_number in range(rounds):
        sender = chats[round_number % len(chats)]
        started = time.perf_counter()
        await sender.text(f"ping {round_number}")

        async def received(chat: Chat, body: str = f"ping {round_number}", started: float = started) -> float:
            frame = await chat.next()
            assert frame["body"] == body
            return time.perf_counter() - started

        latencies.append(max(await asyncio.gather(*(received(chat) for chat in chats))))
    for chat in chats:
        await chat.close()
    latencies.sort()
    with capsys.disabled():
        print(
            f"\nchat latency, 10-member room over 2 gateways, send -> received by all 10 ({rounds} messages): "
            f"median {statistics.median(latencies) * 1000:.1f} ms, "
            f"p90 {latencies[int(rounds * 0.9) - 1] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
