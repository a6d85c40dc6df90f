"""The ``roomEvents(hostSlug, roomSlug)`` subscription (B6): a room's chat events over GraphQL.

It follows a room exactly as the chat socket does (:mod:`gateway.chat.access`, one
:class:`~gateway.chat.relay.Subscriber`), so it gets every event the room's sockets get, once each and
in the same order. Its transport is :mod:`gateway.chat.graphql_ws`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from gateway.chat.access import AccessDenied, HandshakeRpc, follow_room
from gateway.chat.events import DELETE
from gateway.chat.graphql_ws import connection_token
from gateway.chat.relay import (
    ChatRelay,
    EndReason,
    RelayUnavailable,
    Subscriber,
    SubscriptionEnded,
)
from gateway.graphql import errors
from gateway.graphql.context import GraphQLContext
from gateway.messages.types import MessageType
from gateway.rooms.loaders import participant_ids_loader, room_loader, topic_loader
from gateway.rooms.types import ROOM_NOT_FOUND
from gateway.rpc import RpcClient, RpcError
from gateway.users.loaders import user_loader

PERMISSION_DENIED = "Permission denied"


@strawberry.type(name="RoomEventType", description="A change of a room's messages, as its chat socket gets it.")
class RoomEventType:
    """One ``new``, ``update`` or ``delete`` event (B6)."""

    action: str = strawberry.field(description='"new", "update" or "delete".')
    id: uuid.UUID = strawberry.field(description="The message's id.")
    message: MessageType | None = strawberry.field(description='The stored message; null for "delete".')


def ending_error(reason: EndReason) -> errors.GatewayError:
    """How a subscription that cannot (or can no longer) follow its room ends (B6, D12)."""
    if reason is EndReason.ROOM_GONE:
        return errors.GatewayError(ROOM_NOT_FOUND, errors.NOT_FOUND)
    if reason is EndReason.NOT_PARTICIPANT:
        return errors.GatewayError(PERMISSION_DENIED, errors.PERMISSION_DENIED)
    if reason is EndReason.USER_GONE:
        return errors.login_required()
    # Events may have been missed (a slow client, a lost broker): the client should subscribe again
    # and re-read the room's messages.
    return errors.GatewayError(errors.SERVICE_UNAVAILABLE, errors.INTERNAL_SERVER_ERROR)


@strawberry.type
class ChatSubscription:
    """Root subscription fields of the chat."""

    @strawberry.subscription(description="Every change of a room's messages, live (participants only).")
    async def room_events(
        self, info: Info[GraphQLContext, None], host_slug: str, room_slug: str
    ) -> AsyncGenerator[RoomEventType, None]:
        """Checks, each ending the operation with an ``error``: a logged-in user (the ``connection_init``
        ``Authorization``, else the upgrade's ``JWT`` cookie), else ``You do not have permission to
        perform this action``; the room (host username and slug, exact), else ``Room not found``; the
        user participates (the host is not exempt), else ``Permission denied``. Later the same errors
        end the stream when the room is deleted, the participation ends or the user goes (D12)."""
        context = info.context
        connection = context.request
        state = connection.app.state
        relay: ChatRelay | None = getattr(state, "chat_relay", None)
        rpc: RpcClient | None = getattr(state, "rpc", None)
        # The connection's context resolves the events; the caller is checked once per subscription.
        caller = GraphQLContext(
            settings=context.settings,
            rpc=rpc,
            connection=connection,
            avatar_store=context.avatar_store,
            token=connection_token(connection),
        )
        mark = relay.access_mark() if relay is not None else None  # before the first read (D12)
        user = await caller.require_user()
        if relay is None or rpc is None or mark is None:
            raise errors.GatewayError(errors.SERVICE_UNAVAILABLE, errors.INTERNAL_SERVER_ERROR)
        try:
            handshake = HandshakeRpc(rpc, caller.call_id_stack)
            subscriber = await follow_room(relay, handshake, host_slug, room_slug, user, mark)
        except AccessDenied as exc:
            raise ending_error(exc.reason) from None
        except RelayUnavailable:
            raise errors.GatewayError(errors.SERVICE_UNAVAILABLE, errors.INTERNAL_SERVER_ERROR) from None
        except RpcError as exc:
            raise errors.from_rpc_error(exc) from exc
        stream = _events(context, relay, subscriber)
        # The stream unsubscribes when it ends; one dropped before it ever started never runs that.
        weakref.finalize(stream, _forget, relay, subscriber)
        return stream


_cleanups: set[asyncio.Task[None]] = set()


def _forget(relay: ChatRelay, subscriber: Subscriber) -> None:
    with contextlib.suppress(RuntimeError):  # no running loop: the process is shutting down
        task = asyncio.get_running_loop().create_task(relay.unsubscribe(subscriber))
        _cleanups.add(task)  # held until done, as asyncio asks
        task.add_done_callback(_cleanups.discard)


async def _events(
    context: GraphQLContext, relay: ChatRelay, subscriber: Subscriber
) -> AsyncGenerator[RoomEventType, None]:
    try:
        while True:
            try:
                event = await subscriber.next()
            except SubscriptionEnded as ended:
                raise ending_error(ended.reason) from None
            message = None
            if event.action != DELETE and event.message is not None:
                try:
                    author = await asyncio.shield(relay.users.lookup(event.author_id or ""))  # shared lookup
                except RpcError as exc:
                    raise errors.from_rpc_error(exc) from exc
                if author is None:
                    continue  # the author's account is gone; its deletion follows
                _fresh_loaders(context, author)
                message = MessageType.from_record(event.message)
            yield RoomEventType(action=event.action, id=uuid.UUID(event.message_id), message=message)
    finally:
        await relay.unsubscribe(subscriber)


def _fresh_loaders(context: GraphQLContext, author: dict[str, object]) -> None:
    """A subscription's context lives as long as its connection: forget what earlier events loaded, so
    each event shows current values, and hand it the author the relay keeps current."""
    for factory in (user_loader, room_loader, participant_ids_loader, topic_loader):
        context.loader(factory).clear_all()
    context.loader(user_loader).prime(str(author["id"]), author, force=True)
