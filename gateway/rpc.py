"""Asyncio RPC client for nameko services, speaking nameko 2.14's AMQP RPC wire format.

Wire format (see nameko/rpc.py, nameko/messaging.py, nameko/exceptions.py):

- request: published to the durable topic exchange ``nameko-rpc`` with routing key
  ``"{service}.{method}"``, JSON body ``{"args": [...], "kwargs": {...}}``, ``reply_to`` set to the
  routing key the caller's reply queue is bound with, a ``correlation_id``, and context data as
  headers prefixed ``nameko.`` (here ``nameko.call_id_stack``, a list of strings);
- reply: published by the service to the same exchange with routing key = our ``reply_to`` and the
  request's ``correlation_id``, body ``{"result": ..., "error": null | {"exc_type", "exc_path",
  "exc_args", "value"}}``, encoded with the request's content type;
- JSON is kombu's flavour: datetime, date, time, Decimal, UUID and bytes travel as
  ``{"__type__": ..., "__value__": ...}`` envelopes, which this module encodes and decodes alike.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import aio_pika
import aiormq
import orjson
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, DeliveryError, PublishError

log = logging.getLogger("gateway.rpc")

CALL_ID_STACK_HEADER = "nameko.call_id_stack"
REPLY_QUEUE_TEMPLATE = "rpc.reply-{}-{}"  # nameko's naming, so queues are recognisable in the broker
CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"
NOT_PERSISTENT = 1  # AMQP delivery mode: a request lives only as long as its caller waits


class RpcError(Exception):
    """An RPC call failed; ``service``, ``method`` and ``call_id`` say which call when known."""

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        method: str | None = None,
        call_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.method = method
        self.call_id = call_id


class RpcTimeout(RpcError):
    """No reply arrived within the call's timeout."""


class ServiceUnavailable(RpcError):
    """The broker could not route the request: no queue of that service is bound to the exchange."""


class BrokerUnavailable(RpcError):
    """The broker connection was lost during the call, is down, or the client is closed."""


class RemoteError(RpcError):
    """The remote method raised; attributes mirror nameko's serialised exception."""

    def __init__(
        self,
        exc_type: str,
        value: str,
        exc_args: list[Any],
        exc_path: str | None = None,
        *,
        service: str | None = None,
        method: str | None = None,
        call_id: str | None = None,
    ) -> None:
        super().__init__(f"{exc_type} {value}", service=service, method=method, call_id=call_id)
        self.exc_type = exc_type
        self.value = value
        self.exc_args = exc_args
        self.exc_path = exc_path


# --- kombu-compatible JSON ---------------------------------------------------------------------


def _envelope(kind: str, value: Any) -> dict[str, Any]:
    return {"__type__": kind, "__value__": value}


def _json_default(obj: Any) -> Any:
    # datetime before date: a datetime is also a date.
    if isinstance(obj, datetime):
        return _envelope("datetime", obj.isoformat())
    if isinstance(obj, date):
        return _envelope("date", obj.isoformat())
    if isinstance(obj, time):
        return _envelope("time", obj.isoformat())
    if isinstance(obj, Decimal):
        return _envelope("decimal", str(obj))
    if isinstance(obj, uuid.UUID):
        return _envelope("uuid", {"hex": obj.hex})
    if isinstance(obj, (bytes, bytearray)):
        try:
            return _envelope("bytes", bytes(obj).decode("utf-8"))
        except UnicodeDecodeError:
            return _envelope("base64", base64.b64encode(obj).decode("ascii"))
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": lambda v: datetime.fromisoformat(v).date(),
    "time": time.fromisoformat,
    "decimal": Decimal,
    "uuid": lambda v: uuid.UUID(**v),
    "bytes": lambda v: v.encode("utf-8"),
    "base64": lambda v: base64.b64decode(v.encode("ascii")),
}


def _json_object_hook(obj: dict[str, Any]) -> Any:
    if obj.keys() == {"__type__", "__value__"}:
        decoder = _DECODERS.get(obj["__type__"])
        if decoder is not None:
            return decoder(obj["__value__"])
    return obj


# Built once: json.dumps / json.loads with options construct a new encoder / decoder per call.
_ENCODER = json.JSONEncoder(default=_json_default, ensure_ascii=False)
_ENVELOPE_DECODER = json.JSONDecoder(object_hook=_json_object_hook)
_ENVELOPE_KEY = b'"__type__"'


def dumps(payload: Any) -> bytes:
    """Encode ``payload`` as kombu's JSON serializer would."""
    return _ENCODER.encode(payload).encode(CONTENT_ENCODING)


def loads(body: bytes) -> Any:
    """Decode a kombu JSON body, restoring the enveloped types."""
    # The services send plain JSON: only a body with an envelope key pays for a Python call per object.
    if _ENVELOPE_KEY in body:
        return _ENVELOPE_DECODER.decode(body.decode(CONTENT_ENCODING))
    try:
        return orjson.loads(body)  # a few times faster than json on the large list replies
    except orjson.JSONDecodeError:
        # What orjson refuses but Python's json accepts (NaN, Infinity, lone surrogate escapes) decodes
        # as before, and malformed bodies fail with json's own errors. (orjson reads integers beyond
        # 64 bits as floats; no service sends one: PostgreSQL's integers are 64-bit.)
        return json.loads(body.decode(CONTENT_ENCODING))


# --- client --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[bytes]
    service: str
    method: str
    call_id: str


class RpcClient:
    """One per gateway process: ``await start()``, then ``await call(...)`` from any task, ``await close()``."""

    def __init__(
        self,
        amqp_uri: str,
        default_timeout: float = 5.0,
        exchange: str = "nameko-rpc",
        *,
        name: str = "gateway",
        reconnect_interval: float = 1.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.amqp_uri = amqp_uri
        self.default_timeout = default_timeout
        self.exchange_name = exchange
        self.name = name
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout

        # nameko replies to the exchange with routing key = reply_to, so that key is all a service sees.
        self.reply_to = str(uuid.uuid4())
        self.reply_queue_name = REPLY_QUEUE_TEMPLATE.format(name, self.reply_to)

        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        # Correlation ids only have to be unique among this client's calls (its reply queue is its own).
        self._correlation_ids = map(str, itertools.count(1))
        self._pending: dict[str, _Pending] = {}
        self._ready = asyncio.Event()
        self._closing = False

    @property
    def connected(self) -> bool:
        """True while requests can be sent (connected, reply queue consuming)."""
        return self._ready.is_set() and not self._closing

    @property
    def pending_calls(self) -> int:
        """Calls published and still waiting for their reply."""
        return len(self._pending)

    async def start(self) -> None:
        """Connect, declare the RPC exchange and the reply queue, start consuming replies."""
        if self._connection is not None:
            raise RuntimeError("RpcClient already started")
        try:
            connection = await aio_pika.connect_robust(
                self.amqp_uri,
                timeout=self.connect_timeout,
                reconnect_interval=self.reconnect_interval,
                client_properties={"connection_name": f"{self.name}-rpc"},
            )
        except (AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"cannot connect to the broker: {exc}") from exc
        connection.close_callbacks.add(self._on_connection_closed)
        connection.reconnect_callbacks.add(self._on_reconnected)
        try:
            await self._declare(connection)
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        self._ready.set()
        log.info("RPC client connected; reply queue %s", self.reply_queue_name)

    async def close(self) -> None:
        """Fail pending calls and close the connection; idempotent."""
        if self._closing:
            return
        self._closing = True
        self._ready.set()  # wakes calls waiting for a reconnection; they see _closing and fail
        self._fail_pending(lambda p: BrokerUnavailable("RPC client closed", **_ids(p)))
        if self._connection is not None:
            await self._connection.close()

    async def call(
        self,
        service: str,
        method: str,
        *args: Any,
        timeout: float | None = None,
        call_id_stack: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``service.method(*args, **kwargs)`` and return its result.

        ``call_id_stack`` is sent as-is in the ``nameko.call_id_stack`` header (the caller's own stack,
        e.g. a request id); without it the stack is a fresh ``["gateway.<method>.<uuid>"]``.
        Raises RpcTimeout, RemoteError, ServiceUnavailable or BrokerUnavailable (all RpcError).
        """
        if timeout is None:
            timeout = self.default_timeout
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        stack = [str(i) for i in call_id_stack] if call_id_stack else [f"gateway.{method}.{uuid.uuid4()}"]
        call_id = stack[-1]
        routing_key = f"{service}.{method}"
        body = dumps({"args": list(args), "kwargs": kwargs})

        correlation_id = next(self._correlation_ids)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        pending = _Pending(future, service, method, call_id)
        sent = False
        try:
            async with asyncio.timeout(timeout):
                if not self.connected:
                    await self._wait_ready(pending)
                # Registered only once connected, so a connection loss fails exactly the calls in flight.
                self._pending[correlation_id] = pending
                # The AMQP properties directly, not an aio_pika.Message converted into them per call.
                properties = aiormq.spec.Basic.Properties(
                    content_type=CONTENT_TYPE,
                    content_encoding=CONTENT_ENCODING,
                    correlation_id=correlation_id,
                    message_id=correlation_id,
                    reply_to=self.reply_to,
                    headers={CALL_ID_STACK_HEADER: stack},
                    delivery_mode=NOT_PERSISTENT,
                    # A request still queued when its caller has given up is dropped, not executed.
                    expiration=str(int(max(timeout, 0.001) * 1000)),
                )
                assert self._channel is not None
                # Confirmed and mandatory, so a request no queue is bound for comes back (basic.return)
                # and fails at once as ServiceUnavailable; aiormq reports returns only on a channel in
                # confirm mode, and without them such a call would hang until its timeout.
                try:
                    channel = await self._channel.get_underlay_channel()
                    await channel.basic_publish(
                        body,
                        exchange=self.exchange_name,
                        routing_key=routing_key,
                        properties=properties,
                        mandatory=True,
                    )
                except PublishError:
                    raise ServiceUnavailable(f"no service listens for {routing_key}", **_ids(pending)) from None
                except DeliveryError as exc:
                    raise RpcError(f"broker refused {routing_key}: {exc}", **_ids(pending)) from exc
                except (AMQPError, OSError, RuntimeError) as exc:
                    raise BrokerUnavailable(
                        f"broker connection lost while sending {routing_key}", **_ids(pending)
                    ) from exc
                sent = True
                reply = await future
        except TimeoutError:
            if not sent and not self._ready.is_set():
                log.warning("RPC %s not sent: broker unavailable for %ss (call id %s)", routing_key, timeout, call_id)
                raise BrokerUnavailable(
                    f"broker unavailable: {routing_key} not sent within {timeout} s", **_ids(pending)
                ) from None
            log.warning("RPC %s timed out after %ss (call id %s)", routing_key, timeout, call_id)
            raise RpcTimeout(f"RPC {routing_key} timed out after {timeout} s", **_ids(pending)) from None
        except RpcError as exc:
            log.warning("RPC %s failed: %s (call id %s)", routing_key, exc, call_id)
            raise
        finally:
            self._pending.pop(correlation_id, None)
            if future.done():
                if not future.cancelled():
                    future.exception()  # retrieved, so asyncio does not warn about an unawaited failure
            else:
                future.cancel()
        return self._result(reply, pending)

    async def ping(self, service: str, timeout: float = 2.0) -> bool:
        """True when ``service.health()`` answers "ok" within ``timeout``; False on any RpcError."""
        try:
            return await self.call(service, "health", timeout=timeout) == "ok"
        except RpcError:
            return False

    # --- internals ------------------------------------------------------------------------------

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        # on_return_raises: an unroutable mandatory publish raises PublishError once the broker's
        # basic.return (always sent before the confirm) has arrived, like nameko's UnknownService.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._channel = channel  # the robust connection holds its channels only weakly
        self._exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # Robust queue: aio-pika re-declares it, re-binds it (the binding is recorded by bind()) and
        # re-consumes after a reconnection, before reconnect_callbacks run.
        queue = await channel.declare_queue(self.reply_queue_name, exclusive=True, auto_delete=True)
        await queue.bind(self._exchange, routing_key=self.reply_to)
        await queue.consume(self._on_reply, no_ack=True)

    async def _wait_ready(self, pending: _Pending) -> None:
        if self._connection is None:
            raise RpcError("RpcClient.start() was not awaited", **_ids(pending))
        while True:
            if self._closing:
                raise BrokerUnavailable("RPC client closed", **_ids(pending))
            if self._ready.is_set():
                return
            await self._ready.wait()

    def _result(self, body: bytes, pending: _Pending) -> Any:
        ids = _ids(pending)
        routing_key = f"{pending.service}.{pending.method}"
        try:
            payload = loads(body)
            error = payload.get("error")
        except (ValueError, AttributeError, TypeError) as exc:
            log.error("RPC %s: malformed reply (call id %s): %r", routing_key, pending.call_id, body[:200])
            raise RpcError(f"malformed reply from {routing_key}", **ids) from exc
        if error:
            remote = RemoteError(
                str(error.get("exc_type")),
                str(error.get("value", "")),
                list(error.get("exc_args") or []),
                error.get("exc_path"),
                **ids,
            )
            log.info("RPC %s raised %s: %s (call id %s)", routing_key, remote.exc_type, remote.value, pending.call_id)
            raise remote
        return payload.get("result")

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        pending = self._pending.pop(message.correlation_id or "", None)
        if pending is None:
            log.debug("dropping reply for unknown correlation id %s (late or foreign)", message.correlation_id)
            return
        if not pending.future.done():
            pending.future.set_result(message.body)

    def _on_connection_closed(self, _sender: Any, exc: BaseException | None = None) -> None:
        if self._closing:
            return
        was_ready = self._ready.is_set()
        self._ready.clear()
        # Failed reconnection attempts land here too; only the first loss is worth a warning.
        log.log(
            logging.WARNING if was_ready else logging.DEBUG,
            "broker connection lost (%s); failing %d pending call(s), reconnecting",
            exc or "closed",
            len(self._pending),
        )
        # Replies to these calls cannot arrive: the exclusive reply queue died with the connection.
        self._fail_pending(
            lambda p: BrokerUnavailable(f"broker connection lost during {p.service}.{p.method}", **_ids(p))
        )

    def _on_reconnected(self, _sender: Any) -> None:
        if self._closing:
            return
        log.info("broker connection restored; reply queue %s re-declared", self.reply_queue_name)
        self._ready.set()

    def _fail_pending(self, make_error: Callable[[_Pending], RpcError]) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(make_error(p))


def _ids(pending: _Pending) -> dict[str, str]:
    return {"service": pending.service, "method": pending.method, "call_id": pending.call_id}
