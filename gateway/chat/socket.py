"""The chat socket ``/ws/chat/<hostUsername>/<roomSlug>`` (CONTRACT §10; A7, B7, B7a, B7b, C1–C5, C12,
C15, C16, D8, D9, D12).

Handshake, in the contract's order, every refusal an HTTP 403 before the accept (a close before the
accept, which uvicorn answers with 403): the ``Origin`` host name is allowed (D8); the ``JWT`` cookie
names an active user (any token failure is anonymous, refused); the room exists (host username and
slug, exact); the user participates (one ``rooms.room_access`` call answers both; how D12 holds, see
:mod:`gateway.chat.access`). When a service does not answer or the relay has no broker connection, the
handshake gets HTTP 503 instead: nothing was refused, the client may retry. Its log line says how many
RPCs it made (``rpc_calls``) and carries their call id.

Once accepted, two tasks run: the receiver handles client frames in order (size, rate, format, the D12
re-check, then the messages service), the sender writes the room's events. The sender sees its own
events only through the relay, like every other socket (C1): a handled frame is never echoed directly.

Closes: 4401/4403/4404 when the user, the participation or the room goes (D12, C15), 1009 for a frame
over the size cap (D9), 1011 for anything unexpected (C16, no exception text). A client that does not
read fast enough (its send queue fills) or a relay that lost the broker ends the socket *without* a
close frame: the reference web client reconnects only after an unclean close, and then catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.auth import credentials
from gateway.chat import frames
from gateway.chat.access import AccessDenied, HandshakeRpc, follow_room, user_by_email
from gateway.chat.catchup import CatchUp
from gateway.chat.events import NEW, ChatEvent, canonical_id
from gateway.chat.limits import RateLimiter, frame_size, origin_allowed
from gateway.chat.relay import (
    ChatRelay,
    EndReason,
    RelayUnavailable,
    Subscriber,
    SubscriptionEnded,
)
from gateway.rpc import (
    BrokerUnavailable,
    RemoteError,
    RpcClient,
    RpcError,
    RpcTimeout,
    ServiceUnavailable,
)
from gateway.settings import Settings
from gateway.users.directory import UserDirectory

log = logging.getLogger("gateway.chat")

CLOSE_TIMEOUT = 5.0
"""Seconds a clean close may wait for a client that does not read; then the connection is dropped."""
MAX_SEQ = 2**63 - 1
SINCE = re.compile(r"[0-9]+")

UNAVAILABLE_ERRORS = (RpcTimeout, ServiceUnavailable, BrokerUnavailable)
UNAVAILABLE_REMOTE = {"MembershipUnknown"}  # the messages service could not ask the rooms service


class Refused(Exception):
    """The handshake is refused (HTTP 403); the message says why, for the log only."""


async def chat_socket(websocket: WebSocket) -> None:
    """The endpoint of ``WebSocketRoute("/ws/chat/{host}/{slug}")``."""
    state = websocket.app.state
    settings: Settings = state.settings
    rpc: RpcClient | None = getattr(state, "rpc", None)
    relay: ChatRelay | None = getattr(state, "chat_relay", None)
    host, slug = websocket.path_params["host"], websocket.path_params["slug"]
    handshake: HandshakeRpc | None = None
    try:
        if rpc is None or relay is None:
            raise RelayUnavailable("the gateway is not started")
        handshake = HandshakeRpc(rpc)
        user, subscriber = await _admit(websocket, settings, handshake, relay, host, slug)
    except (Refused, AccessDenied) as exc:
        extra = {"host": host[:200], "slug": slug[:200], **_calls_of(handshake)}
        log.info("chat socket refused (%s)", exc, extra=extra)
        await websocket.close()  # before the accept: HTTP 403
        return
    except RemoteError as exc:  # a service failed in a way it should not
        log.error("chat socket handshake failed: %s", exc)
        await _deny(websocket, 500, "Internal server error")
        return
    except (RpcError, RelayUnavailable) as exc:  # a service or the broker is away: the client may retry
        log.warning("chat socket handshake failed: %s", exc)
        await _deny(websocket, 503, "Service unavailable")
        return
    except Exception:
        log.exception("chat socket handshake failed")
        await _deny(websocket, 500, "Internal server error")
        return
    session = ChatSession(websocket, settings, rpc, relay, user, subscriber)
    try:
        await session.run(_calls_of(handshake))
    finally:
        await relay.unsubscribe(subscriber)


async def _admit(
    websocket: WebSocket, settings: Settings, rpc: HandshakeRpc, relay: ChatRelay, host: str, slug: str
) -> tuple[credentials.UserRecord, Subscriber]:
    """§10.2 checks 1–4, in order."""
    if not origin_allowed(websocket.headers.get("origin"), settings.socket_origin_hosts):
        raise Refused("origin not allowed")
    mark = relay.access_mark()  # before the first read (D12)

    async def find_user(email: str) -> credentials.UserRecord | None:
        return await user_by_email(relay, rpc, email)

    authentication = await credentials.authenticate(
        credentials.cookie_token(websocket), secret=settings.jwt_secret, find_user=find_user
    )
    if authentication.user is None:
        raise Refused("anonymous")
    return authentication.user, await follow_room(relay, rpc, host, slug, authentication.user, mark)


def _calls_of(handshake: HandshakeRpc | None) -> dict[str, object]:
    """The log fields of a handshake's RPCs."""
    return {} if handshake is None else {"call_id": handshake.call_id, "rpc_calls": handshake.calls}


async def _deny(websocket: WebSocket, status: int, text: str) -> None:
    """Answer the handshake with an HTTP error where the server can (uvicorn can), else 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(PlainTextResponse(text, status_code=status))
    else:
        await websocket.close()


async def socket_frame(event: ChatEvent, authors: UserDirectory) -> str:
    """``event``'s encoded frame, built once per event whatever the number of sockets; ``""`` when there
    is nothing to send (a ``new`` whose author's account is gone: its deletion follows). Raises
    :class:`~gateway.rpc.RpcError` when the author cannot be looked up."""
    if event.frame is None:
        author = None
        if event.action == NEW:
            if event.author is None:
                event.author = authors.lookup(event.author_id or "")
            author = await asyncio.shield(event.author)  # shared by every socket of the room
            if author is None:
                event.frame = ""
                return ""
        event.frame = frames.encode(frames.event_frame(event, author))
    return event.frame


class ChatSession:
    """One accepted chat socket."""

    def __init__(
        self,
        websocket: WebSocket,
        settings: Settings,
        rpc: RpcClient,
        relay: ChatRelay,
        user: credentials.UserRecord,
        subscriber: Subscriber,
    ) -> None:
        self.websocket = websocket
        self.settings = settings
        self.rpc = rpc
        self.relay = relay
        self.user_id = str(user["id"])
        self.room_id = subscriber.room_id
        self.subscriber = subscriber
        self.limiter = RateLimiter(settings.socket_rate, settings.socket_burst)

    async def run(self, handshake_log: dict[str, object] | None = None) -> None:
        """Accept, serve until either side ends, then close as the ending requires. ``handshake_log``:
        fields for the line that says the socket opened."""
        await self.websocket.accept()
        extra = {"room_id": self.room_id, "user_id": self.user_id, **(handshake_log or {})}
        log.info("chat socket opened", extra=extra)
        receiver = asyncio.create_task(self._receive())
        sender = asyncio.create_task(self._send())
        ended = asyncio.create_task(self._ended())  # the sender may be stuck writing to a slow client
        tasks = (receiver, sender, ended)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._finish(next(task for task in tasks if task in done))

    async def _ended(self) -> int | None:
        raise SubscriptionEnded(await self.subscriber.ended())

    async def _finish(self, task: asyncio.Task[int | None]) -> None:
        error = task.exception() if not task.cancelled() else None
        code: int | None
        if error is None:
            code = None if task.cancelled() else task.result()
        elif isinstance(error, SubscriptionEnded):
            code = error.reason.close_code
            if code is None:
                log.info(
                    "chat socket dropped without a close frame (%s)",
                    error.reason.value,
                    extra={"room_id": self.room_id, "user_id": self.user_id},
                )
                return  # returning without a close makes the server drop the connection (1006)
        elif isinstance(error, WebSocketDisconnect):
            code = None
        else:
            log.error("chat socket failed", exc_info=error, extra={"room_id": self.room_id})
            code = frames.CLOSE_SERVER_ERROR
        log.info("chat socket closed", extra={"room_id": self.room_id, "user_id": self.user_id, "code": code})
        if code is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.websocket.close(code), CLOSE_TIMEOUT)

    # --- client → server -----------------------------------------------------------------------------

    async def _receive(self) -> int | None:
        """Handle client frames until the client leaves (``None``) or a frame closes the socket (its
        code); raises :class:`SubscriptionEnded` when a D12 re-check fails before a frame."""
        max_bytes = self.settings.socket_max_frame_bytes
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            if frame_size(message) > max_bytes:
                return frames.CLOSE_TOO_BIG
            if not self.limiter.allow():
                await self._error(frames.RATE_LIMITED)
                continue
            try:
                frame = frames.parse_client_frame(message.get("text"))
            except frames.InvalidFrame:
                await self._error(frames.INVALID_FORMAT)
                continue
            if self.subscriber.end_reason is not None:  # D12: kept current by the relay's events
                raise SubscriptionEnded(self.subscriber.end_reason)
            await self._handle(frame)

    async def _handle(self, frame: frames.ClientFrame) -> None:
        try:
            if frame.type == frames.TEXT:
                problem = frames.body_error(frame.message)
                if problem is not None:
                    await self._error(problem)
                    return
                await self.rpc.call("messages", "post_message", self.room_id, self.user_id, frame.message)
            elif frame.type == frames.UPDATE:
                await self.rpc.call(
                    "messages", "edit_message", frame.message_id, self.user_id, frame.message, room_id=self.room_id
                )
            else:
                await self.rpc.call("messages", "delete_message", frame.message_id, self.user_id, room_id=self.room_id)
        except RemoteError as exc:
            await self._refused(frame, exc)
        except UNAVAILABLE_ERRORS:
            await self._error(frames.SERVICE_UNAVAILABLE)

    async def _refused(self, frame: frames.ClientFrame, error: RemoteError) -> None:
        """The messages service refused the frame: its error frame, or a close."""
        kind, args = error.exc_type, error.exc_args
        if kind == "NotFound":
            await self._error(frames.NOT_FOUND)
        elif kind == "PermissionDenied" and frame.type == frames.UPDATE:
            await self._error(frames.NOT_YOUR_EDIT)
        elif kind == "PermissionDenied" and frame.type == frames.DELETE:
            await self._error(frames.NOT_YOUR_DELETE)
        elif kind == "PermissionDenied":
            # Posting was refused although the relay's state says "participant": ask the services.
            try:
                await self.relay.recheck([self.subscriber])
            except RpcError:
                pass
            if self.subscriber.end_reason is not None:
                raise SubscriptionEnded(self.subscriber.end_reason)
            await self._error(frames.SERVICE_UNAVAILABLE)  # the two services disagree for a moment
        elif kind == "ValidationFailed" and args and isinstance(args[0], dict) and "body" in args[0]:
            await self._error(frames.service_body_error(args[0]["body"]))
        elif kind in UNAVAILABLE_REMOTE:
            await self._error(frames.SERVICE_UNAVAILABLE)
        else:
            raise error  # unexpected: 1011

    async def _error(self, text: str) -> None:
        await self.websocket.send_text(frames.error_frame(text))

    # --- server → client ------------------------------------------------------------------------------

    async def _send(self) -> int | None:
        """Catch up (``since``/``after``), then write live events until the subscriber ends."""
        catch_up = await self._catch_up()
        buffered = self.subscriber.pending if catch_up is not None else 0
        authors = self.relay.users
        while True:
            event = await self.subscriber.next()
            if catch_up is not None:
                admitted = catch_up.admits(event, buffered=buffered > 0)
                buffered = max(buffered - 1, 0)
                if not admitted:
                    continue
            try:
                text = await socket_frame(event, authors)
            except RpcError:
                self.subscriber.end(EndReason.UNDELIVERABLE)
                raise SubscriptionEnded(EndReason.UNDELIVERABLE) from None
            if text:
                await self.websocket.send_text(text)

    async def _catch_up(self) -> CatchUp | None:
        params = self.websocket.query_params
        since, after = params.get("since"), params.get("after")
        try:
            if since is not None:
                return await self._catch_up_since(since)
            if after is not None:
                return await self._catch_up_after(after)
        except UNAVAILABLE_ERRORS:
            # Without its catch-up the client would have a gap: drop it, so it reconnects and retries.
            self.subscriber.end(EndReason.UNDELIVERABLE)
            raise SubscriptionEnded(EndReason.UNDELIVERABLE) from None
        return None

    async def _catch_up_since(self, raw: str) -> CatchUp | None:
        if not SINCE.fullmatch(raw):
            await self._error(frames.INVALID_FORMAT)
            return None
        since = min(int(raw), MAX_SEQ)
        changes = await self.rpc.call("messages", "changes_since", self.room_id, since)
        events = [ChatEvent.from_change(self.room_id, change) for change in changes]
        await self._send_replay(events)
        return CatchUp.since(since, events)

    async def _catch_up_after(self, raw: str) -> CatchUp | None:
        after = canonical_id(raw)
        messages = None
        if after is not None:
            try:
                messages = await self.rpc.call("messages", "messages_after", self.room_id, after)
            except RemoteError as exc:
                if exc.exc_type != "NotFound":
                    raise
        if messages is None:
            await self._error(frames.NOT_FOUND)
            return None
        events = [ChatEvent.replayed(message) for message in messages]
        await self._send_replay(events)
        return CatchUp.after(events)

    async def _send_replay(self, events: list[ChatEvent]) -> None:
        authors = await self.relay.users.get_many(
            event.author_id for event in events if event.action == NEW and event.author_id
        )
        for event in events:
            author = authors.get(event.author_id or "") if event.action == NEW else None
            if event.action == NEW and author is None:
                continue  # the author's account is gone; its deletion follows
            await self.websocket.send_text(frames.encode(frames.event_frame(event, author)))
