"""Who may follow a room (CONTRACT §10.2 checks 2 to 4, B6): shared by the chat socket and the
``roomEvents`` subscription.

A handshake reads three things: the user its token names (:func:`user_by_email`), the host's id
(:func:`host_id`), then the room and the participation together (``rooms.room_access``). The user is
the record the token lookup returned, not read again. The first two come from the gateway's user
directory (``gateway/users/directory.py``) when it knows them, so a warm handshake makes one RPC.

D12 still holds although the reads come before the subscriber exists: the relay's
:meth:`~gateway.chat.relay.ChatRelay.access_mark` is taken before the first of them. A change committed
after a read arrives as an event after the mark; if it comes once the subscriber is registered it ends
the subscriber, and if it comes earlier :meth:`~gateway.chat.relay.ChatRelay.access_changed` reports it
and the subscriber is re-checked by RPC, by reads made after its registration. Either way nothing slips
between the checks and the stream.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from gateway.chat.relay import AccessMark, ChatRelay, EndReason, RelayUnavailable, Subscriber
from gateway.rpc import RemoteError, RpcClient

SEGMENT = re.compile(r"[-a-zA-Z0-9_]+")
"""What a host username and a room slug look like in a socket path (§10.1)."""

Record = dict[str, Any]


class AccessDenied(Exception):
    """The room cannot be followed by this user; ``reason`` says which D12 close code applies."""

    def __init__(self, reason: EndReason) -> None:
        super().__init__(reason.name)
        self.reason = reason


class HandshakeRpc:
    """The RPC client as one handshake uses it: its calls carry one call id, so the services' logs show
    them together, and are counted for the handshake's log line."""

    def __init__(self, rpc: RpcClient, call_id_stack: list[str] | None = None) -> None:
        self.rpc = rpc
        self.call_id_stack = call_id_stack or [f"gateway.chat.{uuid.uuid4()}"]
        self.calls = 0

    @property
    def call_id(self) -> str:
        return self.call_id_stack[-1]

    async def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """:meth:`gateway.rpc.RpcClient.call`, with the handshake's call id."""
        self.calls += 1
        return await self.rpc.call(service, method, *args, call_id_stack=self.call_id_stack, **kwargs)


def _not_found(error: RemoteError) -> bool:
    return error.exc_type == "NotFound"


async def user_by_email(relay: ChatRelay, rpc: RpcClient | HandshakeRpc, email: str) -> Record | None:
    """The user a token names: the one with this email (case-insensitive, D1), ``None`` when none; from
    the gateway's user directory, which ``rpc`` fills on a miss."""
    return await relay.users.viewer_by_email(email, lambda: rpc.call("users", "get_by_email", email))


async def host_id(relay: ChatRelay, rpc: RpcClient | HandshakeRpc, username: str) -> str | None:
    """The id of the user with exactly this username, ``None`` when there is none; from the gateway's
    user directory, which ``rpc`` fills on a miss."""
    try:
        return await relay.users.id_by_username(username, lambda: rpc.call("users", "get_by_username", username))
    except RemoteError as exc:
        if _not_found(exc):
            return None
        raise


async def follow_room(
    relay: ChatRelay,
    rpc: RpcClient | HandshakeRpc,
    host_username: str,
    slug: str,
    user: Record,
    mark: AccessMark,
) -> Subscriber:
    """A subscriber of the room of the host with exactly this username and exactly this slug (lengths
    unlimited, C12), for ``user`` (the active user the token named, read after ``mark``), once the room
    is found (else :class:`AccessDenied` ``ROOM_GONE``) and the user participates in it, the host not
    exempt (else ``NOT_PARTICIPANT``). Service failures propagate (:class:`~gateway.rpc.RpcError`), as
    does :class:`~gateway.chat.relay.RelayUnavailable`."""
    user_id = str(user["id"])
    room_id = await _room_followed_by(relay, rpc, host_username, slug, user_id)
    subscriber = await relay.subscribe(room_id, user_id)
    try:
        subscriber.checked_at = mark.at
        if relay.access_changed(mark, room_id, user_id):
            await relay.recheck([subscriber])  # reads made now, after the registration
        if subscriber.end_reason is not None:  # an event came in while reading, or the broker went away
            if subscriber.end_reason.close_code is None:
                raise RelayUnavailable(subscriber.end_reason.value)
            raise AccessDenied(subscriber.end_reason)
    except BaseException:
        await relay.unsubscribe(subscriber)
        raise
    relay.users.learn(user)  # the author of whatever this socket sends
    return subscriber


async def _room_followed_by(
    relay: ChatRelay, rpc: RpcClient | HandshakeRpc, host_username: str, slug: str, user_id: str
) -> str:
    """The id of the room, checked to exist and to have ``user_id`` among its participants."""
    if not (SEGMENT.fullmatch(host_username) and SEGMENT.fullmatch(slug)):
        raise AccessDenied(EndReason.ROOM_GONE)
    host = await host_id(relay, rpc, host_username)
    if host is None:
        raise AccessDenied(EndReason.ROOM_GONE)
    try:
        access: Record = await rpc.call("rooms", "room_access", host, slug, user_id)
    except RemoteError as exc:
        if _not_found(exc):
            raise AccessDenied(EndReason.ROOM_GONE) from None
        raise
    if access["participant"] is not True:
        raise AccessDenied(EndReason.NOT_PARTICIPANT)
    return str(access["room"]["id"])
