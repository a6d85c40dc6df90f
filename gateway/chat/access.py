"""Who may follow a room (CONTRACT §10.2 checks 3 and 4, B6): shared by the chat socket and the
``roomEvents`` subscription.

The order matters for D12: the subscriber is registered with the relay first, and only then are
participation and the user read. A change committed before those reads shows in them; one committed
after arrives as an event and ends the subscriber. Either way nothing slips between the check and the
stream.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from gateway.chat.relay import ChatRelay, EndReason, RelayUnavailable, Subscriber
from gateway.rpc import RemoteError, RpcClient

SEGMENT = re.compile(r"[-a-zA-Z0-9_]+")
"""What a host username and a room slug look like in a socket path (§10.1)."""

Record = dict[str, Any]


class AccessDenied(Exception):
    """The room cannot be followed by this user; ``reason`` says which D12 close code applies."""

    def __init__(self, reason: EndReason) -> None:
        super().__init__(reason.name)
        self.reason = reason


def _not_found(error: RemoteError) -> bool:
    return error.exc_type == "NotFound"


async def find_room(rpc: RpcClient, host_username: str, slug: str) -> Record:
    """The room of the host with exactly this username and exactly this slug (lengths unlimited, C12);
    :class:`AccessDenied` (``ROOM_GONE``) when there is none."""
    if not (SEGMENT.fullmatch(host_username) and SEGMENT.fullmatch(slug)):
        raise AccessDenied(EndReason.ROOM_GONE)
    try:
        host = await rpc.call("users", "get_by_username", host_username)
        room: Record = await rpc.call("rooms", "get_room_by_host_slug", host["id"], slug)
    except RemoteError as exc:
        if _not_found(exc):
            raise AccessDenied(EndReason.ROOM_GONE) from None
        raise
    return room


async def follow_room(relay: ChatRelay, rpc: RpcClient, room: Record, user: Record) -> Subscriber:
    """A subscriber of ``room`` for ``user``, once the user is found still active and a participant
    (the host is not exempt, §10.2); :class:`AccessDenied` otherwise. Service failures propagate
    (:class:`~gateway.rpc.RpcError`), as does :class:`~gateway.chat.relay.RelayUnavailable`."""
    room_id, user_id = str(room["id"]), str(user["id"])
    subscriber = await relay.subscribe(room_id, user_id)
    try:
        subscriber.checked_at = asyncio.get_running_loop().time()
        participant, (current,) = await asyncio.gather(
            rpc.call("rooms", "is_participant", room_id, user_id),
            rpc.call("users", "get_many", [user_id]),
        )
        if current is None or not current.get("is_active"):
            raise AccessDenied(EndReason.USER_GONE)
        if participant is not True:
            raise AccessDenied(EndReason.NOT_PARTICIPANT)
        if subscriber.end_reason is not None:  # an event came in while reading, or the broker went away
            if subscriber.end_reason.close_code is None:
                raise RelayUnavailable(subscriber.end_reason.value)
            raise AccessDenied(subscriber.end_reason)
    except BaseException:
        await relay.unsubscribe(subscriber)
        raise
    relay.authors.learn(current)  # the author of whatever this socket sends
    return subscriber
