"""The WebSocket side of ``/graphql/`` and ``/graphql``: subscriptions over ``graphql-transport-ws`` (B6),
behind the chat socket's limits (D8, D9).

:class:`SubscriptionEndpoint` wraps the GraphQL view for WebSocket upgrades:

* the ``Origin`` must be allowed (D8), else HTTP 403 before the accept;
* a client message over ``SOCKET_MAX_FRAME_BYTES`` closes the connection with 1009; over the rate
  (``SOCKET_RATE``, ``SOCKET_BURST``) a ``subscribe`` is answered with an ``error`` ``Rate limit
  exceeded.`` (``RATE_LIMITED``) and other messages are dropped, except ``complete``, which only ends
  an operation and always passes (D9);
* ``connection_init`` ``payload.Authorization = "JWT <token>"`` is kept for the subscriptions of the
  connection (B6); without it the upgrade request's ``JWT`` cookie counts.

:class:`RoomEventsProtocol` is the view's ``graphql-transport-ws`` handler: only subscriptions are run
(queries and mutations belong to HTTP, with its CSRF and status rules), every error carries a code (B1,
C16), and a stream that fails after it started ends with an ``error`` message rather than ``next`` +
``complete``: that is how B6 terminations (room deleted, participation lost, user gone) reach the client.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from graphql import OperationType as GraphQLOperationType
from starlette.requests import HTTPConnection
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    SubscribeMessage,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

from gateway.chat.frames import CLOSE_TOO_BIG, RATE_LIMITED
from gateway.chat.limits import RateLimiter, frame_size, origin_allowed
from gateway.graphql import errors
from gateway.graphql.limits import document_size_error
from gateway.graphql.parsing import operation_type, try_parse
from gateway.settings import Settings

if TYPE_CHECKING:  # the view imports the schema, which imports this package's subscription
    from gateway.graphql.view import GraphQLView

CONNECTION_TOKEN = "edusphere.connection_token"
"""Scope key of the token a ``connection_init`` carried."""

SUBSCRIPTIONS_ONLY = "Only subscriptions are available over WebSocket."


def connection_token(connection: HTTPConnection) -> str | None:
    """The token of the connection's ``connection_init`` ``Authorization: JWT <token>``, if any."""
    token = connection.scope.get(CONNECTION_TOKEN)
    return token if isinstance(token, str) else None


def _init_token(payload: Any) -> str | None:
    """``JWT <token>`` of a ``connection_init`` payload (the scheme compared case-insensitively, as the
    HTTP header is)."""
    if not isinstance(payload, dict):
        return None
    value = payload.get("Authorization", payload.get("authorization"))
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "jwt" else None


class SubscriptionEndpoint:
    """ASGI app for WebSocket upgrades of the GraphQL path (see the module docstring)."""

    def __init__(self, view: GraphQLView, settings: Settings) -> None:
        self.view = view
        self.settings = settings
        # The view's WebSocket side: this endpoint is the only way in, so it sets how it talks.
        view.protocols = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
        view.graphql_transport_ws_handler_class = RoomEventsProtocol
        # D8 is decided here, by host name (any scheme and port); strawberry's own check compares whole
        # origins with the Host header and would refuse e.g. http://localhost behind a proxy.
        view.allowed_origins = frozenset({"*"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        if not origin_allowed(websocket.headers.get("origin"), self.settings.socket_origin_hosts):
            await websocket.close()  # before the accept: HTTP 403
            return
        limiter = RateLimiter(self.settings.socket_rate, self.settings.socket_burst)
        max_bytes = self.settings.socket_max_frame_bytes
        closed = False

        async def guarded_send(message: Message) -> None:
            if closed and message["type"] in ("websocket.send", "websocket.close"):
                return  # already closed with 1009; the handler's last words go nowhere
            await send(message)

        async def guarded_receive() -> Message:
            nonlocal closed
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return message
                if frame_size(message) > max_bytes:
                    closed = True
                    await send({"type": "websocket.close", "code": CLOSE_TOO_BIG, "reason": ""})
                    return {"type": "websocket.disconnect", "code": CLOSE_TOO_BIG}
                data = _json(message)
                kind = data.get("type") if isinstance(data, dict) else None
                if kind != "complete" and not limiter.allow():
                    if kind == "subscribe" and isinstance(data.get("id"), str):
                        await send({"type": "websocket.send", "text": json.dumps(_rate_limited(data["id"]))})
                    continue
                if kind == "connection_init":
                    token = _init_token(data.get("payload"))
                    if token is not None:
                        scope[CONNECTION_TOKEN] = token
                return message

        await self.view(scope, guarded_receive, guarded_send)


def _json(message: Message) -> Any:
    text = message.get("text")
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None  # the handler answers malformed messages itself


def _rate_limited(operation_id: str) -> dict[str, Any]:
    return {
        "id": operation_id,
        "type": "error",
        "payload": [{"message": RATE_LIMITED, "extensions": {"code": errors.RATE_LIMITED}}],
    }


def coded(error: GraphQLError, *, before_execution: bool) -> GraphQLError:
    """``error`` with its contract code. Errors raised by us already carry one; graphql-core's own
    errors before execution are validation errors, or variable coercion errors (``Variable '$…``);
    anything else is masked (C16)."""
    if before_execution and error.original_error is None and error.path is None:
        phase = errors.PHASE_EXECUTE if error.message.startswith("Variable ") else errors.PHASE_VALIDATE
        return errors.with_code(error, phase)
    return errors.with_code(error, errors.PHASE_EXECUTE)


class RoomEventsProtocol(BaseGraphQLTransportWSHandler[Any, Any]):
    """The ``graphql-transport-ws`` handler of the gateway (see the module docstring)."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Refuse what is not a subscription, and documents over the D6 size, before strawberry runs
        anything."""
        payload = message.get("payload")
        query = payload.get("query") if isinstance(payload, dict) else None
        if isinstance(query, str) and self.connection_acknowledged and message.get("id") not in self.operations:
            settings: Settings = self.view.settings  # type: ignore[attr-defined]
            refusal = document_size_error(query, settings.max_document_bytes)
            if refusal is None:
                kind = operation_type(try_parse(query), payload.get("operationName"))  # type: ignore[union-attr]
                if kind is not None and kind is not GraphQLOperationType.SUBSCRIPTION:
                    refusal = GraphQLError(SUBSCRIPTIONS_ONLY, extensions={"code": errors.BAD_REQUEST})
            if refusal is not None:
                await self.send_message({"id": message["id"], "type": "error", "payload": [refusal.formatted]})
                return
        await super().handle_subscribe(message)

    async def _send_result_stream(self, operation: Operation[Any, Any], result_source: Any) -> None:
        is_first_result = True
        async for result in result_source:
            if isinstance(result, ExecutionResult) and result.errors:
                before = is_first_result and isinstance(result, PreExecutionError)
                result.errors = [coded(error, before_execution=before) for error in result.errors]
            if is_first_result and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            if not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            if result.errors and result.data is None:
                await operation.send_initial_errors(result.errors)  # the stream failed: end with `error`
                return
            await operation.send_next(result)
            is_first_result = False
