"""One chat socket's session against a fake connection and fake services: how service answers become
error frames (§10.3, §10.4, C2, C4), closes (D9, D12, C16), and that the socket's own events come only
through the relay (C1)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.datastructures import QueryParams
from starlette.websockets import WebSocketDisconnect

from gateway.chat.relay import EndReason
from gateway.chat.socket import ChatSession
from gateway.rpc import RemoteError, RpcTimeout
from gateway.settings import Settings
from gateway.tests.test_chat_relay import ALICE, ROOM_A, connected_relay, created, uid

MESSAGE = "4a96f149-e353-471e-9137-8ea62fb13466"


class FakeWebSocket:
    """What the session uses of a Starlette WebSocket."""

    def __init__(self, query: str = "") -> None:
        self.query_params = QueryParams(query)
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.gone = False

    async def accept(self) -> None:
        pass

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send_text(self, text: str) -> None:
        if self.gone:
            raise WebSocketDisconnect(1006)
        self.sent.append(json.loads(text))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        assert not reason  # C16: nothing but the code
        self.close_code = code

    def frame(self, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        self.incoming.put_nowait({"type": "websocket.receive", "text": text})

    def leave(self) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})

    async def wait_sent(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(5):
            while len(self.sent) < count:
                await asyncio.sleep(0.001)
        return self.sent


class FakeServices:
    """Answers RPC calls with what the test scripted per ``service.method``."""

    def __init__(self, **answers: Any) -> None:
        self.answers = {name.replace("__", "."): answer for name, answer in answers.items()}
        self.calls: list[str] = []

    async def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        name = f"{service}.{method}"
        self.calls.append(name)
        answer = self.answers[name]
        if isinstance(answer, BaseException):
            raise answer
        return answer(*args, **kwargs) if callable(answer) else answer


def remote(kind: str, *args: Any) -> RemoteError:
    return RemoteError(kind, f"{kind} {args}", list(args), service="messages", method="m")


async def session_with(services: FakeServices, query: str = "", **settings: Any):
    relay, _ = connected_relay(rpc=services, **settings)
    subscriber = await relay.subscribe(ROOM_A, ALICE)
    websocket = FakeWebSocket(query)
    session = ChatSession(websocket, Settings(env="test", **settings), services, relay, {"id": ALICE}, subscriber)  # type: ignore[arg-type]
    task = asyncio.create_task(session.run())
    return relay, subscriber, websocket, task


async def finish(websocket: FakeWebSocket, task: asyncio.Task[None]) -> None:
    websocket.leave()
    await asyncio.wait_for(task, 5)


async def test_a_posted_message_comes_back_only_through_the_relay():
    services = FakeServices(messages__post_message={"id": uid(1)})
    relay, _, websocket, task = await session_with(services)
    relay.users.learn({"id": ALICE, "username": "alice", "avatar": ""})
    websocket.frame({"type": "text", "message": "hi"})
    async with asyncio.timeout(5):
        while services.calls != ["messages.post_message"]:
            await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)
    assert websocket.sent == []  # no direct echo (C1)
    await relay._on_message(created(ROOM_A, 1, uid(1)))
    (frame,) = await websocket.wait_sent(1)
    assert (frame["action"], frame["user"], frame["seq"]) == ("new", "alice", 1)
    await finish(websocket, task)
    assert websocket.close_code is None


@pytest.mark.parametrize(
    "frame, failure, expected",
    [
        ({"type": "update", "messageId": MESSAGE, "message": "x"}, remote("NotFound", "Message not found"),
         "Message not found."),
        ({"type": "delete", "messageId": MESSAGE}, remote("NotFound", "Message not found"), "Message not found."),
        ({"type": "update", "messageId": MESSAGE, "message": "x"}, remote("PermissionDenied", "Permission denied"),
         "You can only edit your own messages."),
        ({"type": "delete", "messageId": MESSAGE}, remote("PermissionDenied", "Permission denied"),
         "You can only delete your own messages."),
        ({"type": "update", "messageId": MESSAGE, "message": ""},
         remote("ValidationFailed", {"body": ["This field cannot be blank."]}, "True"), "Message cannot be empty."),
        ({"type": "update", "messageId": MESSAGE, "message": "x" * 501},
         remote("ValidationFailed", {"body": ["Ensure this value has at most 500 characters (it has 501)."]}, "True"),
         "Message exceeds 500 characters."),
        ({"type": "text", "message": "hi"}, remote("MembershipUnknown", "rooms did not answer"), "Service unavailable."),
        ({"type": "text", "message": "hi"}, RpcTimeout("messages.post_message timed out"), "Service unavailable."),
        ({"type": "delete", "messageId": MESSAGE}, RpcTimeout("timed out"), "Service unavailable."),
    ],
)
async def test_service_answers_become_the_contract_error_frames(frame, failure, expected):
    services = FakeServices(
        messages__post_message=failure, messages__edit_message=failure, messages__delete_message=failure
    )
    _, _, websocket, task = await session_with(services)
    websocket.frame(frame)
    assert await websocket.wait_sent(1) == [{"error": expected}]
    websocket.frame("not json")  # and the socket goes on
    assert (await websocket.wait_sent(2))[1] == {"error": "Invalid message format."}
    await finish(websocket, task)


async def test_bad_bodies_cost_no_rpc():
    services = FakeServices()
    _, _, websocket, task = await session_with(services)
    for frame in ({"type": "text"}, {"message": "   "}, {"message": "x" * 501}, {"message": "a\x00b"}):
        websocket.frame(frame)
    assert [f["error"] for f in await websocket.wait_sent(4)] == [
        "Message cannot be empty.", "Message cannot be empty.", "Message exceeds 500 characters.",
        "Invalid message format."]
    await finish(websocket, task)
    assert services.calls == []


async def test_an_unexpected_failure_closes_1011_without_its_text():
    services = FakeServices(messages__edit_message=remote("KeyError", "secret detail"))
    _, _, websocket, task = await session_with(services)
    websocket.frame({"type": "update", "messageId": MESSAGE, "message": "x"})
    await asyncio.wait_for(task, 5)
    assert websocket.close_code == 1011
    assert "secret" not in json.dumps(websocket.sent)


async def test_a_refused_post_asks_the_services_and_closes_when_participation_is_gone():
    services = FakeServices(
        messages__post_message=remote("PermissionDenied", "Permission denied"),
        rooms__get_many=lambda ids: [{"id": i} for i in ids],
        rooms__participants_of=lambda ids: {i: [] for i in ids},
        users__get_many=lambda ids: [{"id": i, "is_active": True} for i in ids],
    )
    _, subscriber, websocket, task = await session_with(services)
    subscriber.checked_at = 0.0
    websocket.frame({"message": "hi"})
    await asyncio.wait_for(task, 5)
    assert websocket.close_code == 4403


@pytest.mark.parametrize(
    "reason, code", [(EndReason.USER_GONE, 4401), (EndReason.NOT_PARTICIPANT, 4403), (EndReason.ROOM_GONE, 4404)]
)
async def test_d12_ends_close_with_their_code_and_no_frame_is_handled_after(reason, code):
    services = FakeServices()
    _, subscriber, websocket, task = await session_with(services)
    subscriber.end(reason)
    websocket.frame({"message": "too late"})
    await asyncio.wait_for(task, 5)
    assert websocket.close_code == code
    assert services.calls == []


@pytest.mark.parametrize("reason", [EndReason.LAGGING, EndReason.RELAY_LOST, EndReason.UNDELIVERABLE])
async def test_lost_events_drop_the_connection_without_a_close_frame(reason):
    _, subscriber, websocket, task = await session_with(FakeServices())
    subscriber.end(reason)
    await asyncio.wait_for(task, 5)
    assert websocket.close_code is None  # the reference client reconnects only after an unclean close


async def test_a_frame_over_the_cap_closes_1009():
    _, _, websocket, task = await session_with(FakeServices(), socket_max_frame_bytes=100)
    websocket.frame("x" * 100)
    assert await websocket.wait_sent(1) == [{"error": "Invalid message format."}]
    websocket.frame("x" * 101)
    await asyncio.wait_for(task, 5)
    assert websocket.close_code == 1009


async def test_frames_over_the_rate_are_answered_and_dropped():
    services = FakeServices()
    _, _, websocket, task = await session_with(services, socket_rate=0.001, socket_burst=2)
    for _ in range(4):
        websocket.frame("[]")
    assert [f["error"] for f in await websocket.wait_sent(4)] == [
        "Invalid message format.", "Invalid message format.", "Rate limit exceeded.", "Rate limit exceeded."]
    await finish(websocket, task)


async def test_catch_up_failure_drops_the_connection_so_the_client_retries():
    services = FakeServices(messages__changes_since=RpcTimeout("timed out"))
    _, _, websocket, task = await session_with(services, query="since=3")
    await asyncio.wait_for(task, 5)
    assert websocket.close_code is None and websocket.sent == []
