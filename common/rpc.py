"""The services' RPC entrypoint: nameko's ``@rpc`` with a cheaper reply.

nameko's responder serialises every result twice (once to check it can be, once to send it), builds a
new kombu connection object per reply and waits for the broker's publisher confirm before the worker
may finish. Here the reply is serialised once and published without a confirm, through producers the
container keeps. A confirm would only tell the service that the broker took the reply; the caller,
the one party that cares, learns of a lost reply by its own timeout either way, and nothing else in the
service depends on it.

Every ``@rpc`` of one service must come from here: the service's queue is consumed by one shared
consumer per consumer class, and nameko's consumer would take (and answer "method not found" to) the
calls addressed to entrypoints it does not know.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import kombu.serialization
from kombu import Connection, Producer
from nameko import rpc as nameko_rpc
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
)
from nameko.exceptions import UnserializableValueError, serialize

# Replies go to short-lived reply queues whose consumer is waiting right now; writing them to disk
# (nameko's default, persistent) would only cost the broker work.
REPLY_DELIVERY_MODE = 1  # transient


class ReplyProducers:
    """Producers for replies, each on its own broker connection (greenthreads must not interleave
    frames on one socket): one per reply being sent at once, so at most one per worker, kept for the
    next replies and closed with the container."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._idle: list[Producer] = []

    @contextlib.contextmanager
    def acquire(self) -> Iterator[Producer]:
        producer = self._idle.pop() if self._idle else Producer(self._connection.clone())
        try:
            yield producer
        except BaseException:
            producer.connection.close()  # in an unknown state: the next reply gets a new one
            raise
        self._idle.append(producer)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().connection.close()


class Responder:
    """Sends one worker's result (or error) to the caller's reply queue."""

    def __init__(self, producers: ReplyProducers, exchange: Any, message: Any) -> None:
        self.producers = producers
        self.exchange = exchange
        self.message = message

    def send_response(self, result: Any, exc_info: Any) -> tuple[Any, Any]:
        """Publish the reply; returns ``(result, exc_info)`` as nameko's responder does, with a result
        that cannot be serialised turned into an ``UnserializableValueError`` reply, so a reply always
        goes out."""
        error = serialize(exc_info[1]) if exc_info is not None else None
        # Reply in the encoding of the request, like nameko.
        properties = self.message.properties
        serializer = kombu.serialization.registry.type_to_name[properties["content_type"]]
        try:
            content_type, content_encoding, body = kombu.serialization.dumps(
                {"result": result, "error": error}, serializer
            )
        except Exception:
            exc_info = sys.exc_info()
            # serialize() makes every field of an error serialisable, so this cannot fail again.
            error = serialize(UnserializableValueError(result))
            result = None
            content_type, content_encoding, body = kombu.serialization.dumps(
                {"result": None, "error": error}, serializer
            )

        with self.producers.acquire() as producer:
            producer.publish(
                body,
                content_type=content_type,
                content_encoding=content_encoding,
                exchange=self.exchange,
                routing_key=properties["reply_to"],
                correlation_id=properties.get("correlation_id"),
                delivery_mode=REPLY_DELIVERY_MODE,
                retry=True,
                retry_policy=DEFAULT_RETRY_POLICY,
            )
        return result, exc_info


class RpcConsumer(nameko_rpc.RpcConsumer):
    """nameko's consumer of the service's RPC queue, answering through :class:`Responder`."""

    def __init__(self) -> None:
        super().__init__()
        self.reply_producers: ReplyProducers | None = None

    def setup(self) -> None:
        if any(type(ext) is nameko_rpc.RpcConsumer for ext in self.container.subextensions):
            raise RuntimeError(
                f"{self.container.service_name}: every @rpc of a service must be common.rpc's, not nameko.rpc's"
            )
        super().setup()
        config = self.container.config
        self.exchange = nameko_rpc.get_rpc_exchange(config)
        connection = Connection(
            config[AMQP_URI_CONFIG_KEY],
            transport_options={**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False},
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        self.reply_producers = ReplyProducers(connection)

    def handle_result(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        assert self.reply_producers is not None
        result, exc_info = Responder(self.reply_producers, self.exchange, message).send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def stop(self) -> None:
        super().stop()
        self._close_reply_producers()

    def kill(self) -> None:
        self._close_reply_producers()

    def _close_reply_producers(self) -> None:
        # Subextensions stop after the container's workers are done, so no reply is in flight here.
        if self.reply_producers is not None:
            self.reply_producers.close()


class Rpc(nameko_rpc.Rpc):
    """``@rpc``, answering through :class:`RpcConsumer`."""

    rpc_consumer = RpcConsumer()


rpc = Rpc.decorator
