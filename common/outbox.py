"""Transactional outbox: events are written in the same transaction as the change they describe, and
published after commit. Nothing is lost between commit and publication: rows stay until the broker has
confirmed them, and a relay loop retries whatever an interrupted worker left behind. Delivery is at
least once, so every event handler is idempotent.

The relay deletes a batch of rows, oldest first, returning them (one statement), publishes them in that
order on one channel in confirm mode without waiting between them, waits once for the broker's
confirms of the whole batch, and only then commits the deletion. A negative confirm, a lost connection
or a confirm that does not come in time rolls the batch back: its rows are published again, in the
same order, on the next pass.

Routing convention: an event whose payload names a room (``room_id``) carries that id as the message
header ``room_id`` as well, so a consumer can bind a headers exchange to just the rooms it serves (the
gateways' chat relay does) instead of receiving every room's traffic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import eventlet
import eventlet.event
from kombu import Connection, Producer
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    PERSISTENT,
)
from nameko.events import get_event_exchange
from nameko.extensions import SharedExtension
from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, cast, delete, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

CALL_ID_STACK_HEADER = "nameko.call_id_stack"
ROUTING_HEADERS = ("room_id",)


def _headers(row: Any) -> dict[str, Any]:
    """The headers of a row taken by :func:`take_batch_statement`: the call id stack, and each of
    ``ROUTING_HEADERS`` the payload has (see the module docstring)."""
    headers: dict[str, Any] = {CALL_ID_STACK_HEADER: list(row.call_id_stack)}
    for key in ROUTING_HEADERS:
        value = getattr(row, f"header_{key}")
        if value is not None:
            headers[key] = value
    return headers


def take_batch_statement(table: Table, batch_size: int) -> Any:
    """Delete the oldest ``batch_size`` rows, returning each with its payload as JSON text (published
    as it is: no decoding and encoding again) and the text of each of its ``ROUTING_HEADERS`` (``NULL``
    when the payload has none). One statement reads and deletes a batch: the deletion commits only once
    the broker has confirmed the batch, else rolls back."""
    oldest = select(table.c.id).order_by(table.c.id).limit(batch_size).scalar_subquery()
    headers = [table.c.payload.op("->>", return_type=Text)(key).label(f"header_{key}") for key in ROUTING_HEADERS]
    return (
        delete(table)
        .where(table.c.id.in_(oldest))
        .returning(
            table.c.id, table.c.event_type, cast(table.c.payload, Text).label("payload"), table.c.call_id_stack, *headers
        )
    )


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table in the metadata's schema."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_type", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("call_id_stack", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class EventsNotConfirmed(Exception):
    """The broker refused (nacked) an event of the batch, or did not confirm it in time."""


class BatchPublisher:
    """Publishes batches of events to one exchange, each batch confirmed as a whole.

    The channel is in confirm mode, so the broker numbers every publish on it (1, 2, ...) and confirms
    it with a ``basic.ack`` (``multiple`` covering every lower number too) once it has taken
    responsibility for it (persistent events: once written to disk), or refuses it with a
    ``basic.nack``. Any failure leaves the connection closed; the next batch opens a new one.
    """

    def __init__(self, connection: Connection, exchange: Any, confirm_timeout: float = 10.0) -> None:
        self.connection = connection
        self.exchange = exchange
        self.confirm_timeout = confirm_timeout
        self._producer: Producer | None = None
        self._published = 0  # the delivery tag of the last publish on the current channel
        self._unconfirmed: set[int] = set()
        self._nacked = False

    def publish(self, events: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Publish each ``(payload as JSON text, routing_key, headers)`` in order; return once the broker
        has confirmed all of them, else raise."""
        try:
            producer = self._producer or self._open()
            for payload, routing_key, headers in events:
                self._published += 1
                self._unconfirmed.add(self._published)
                producer.publish(
                    payload,
                    content_type="application/json",  # what nameko's json serializer labels an event
                    content_encoding="utf-8",
                    routing_key=routing_key,
                    headers=headers,
                    delivery_mode=PERSISTENT,
                )
            self._wait_for_confirms()
        except BaseException:
            self.close(graceful=False)
            raise

    def close(self, graceful: bool = True) -> None:
        self._producer = None
        if graceful:
            self.connection.release()
        else:
            self.connection.collect()  # the broker may not answer: do not wait for it

    def _open(self) -> Producer:
        self.connection = self.connection.clone()
        channel = self.connection.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._published, self._unconfirmed, self._nacked = 0, set(), False
        self._producer = Producer(channel, exchange=self.exchange, serializer="json")  # declares the exchange
        return self._producer

    def _wait_for_confirms(self) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        while self._unconfirmed and not self._nacked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                unconfirmed = len(self._unconfirmed)
                raise EventsNotConfirmed(f"{unconfirmed} event(s) unconfirmed after {self.confirm_timeout} s")
            self.connection.drain_events(timeout=remaining)
        if self._nacked:
            raise EventsNotConfirmed("the broker refused an event")

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True


class OutboxRelay(SharedExtension):
    """Publishes committed outbox rows to the service's nameko events exchange, oldest first.

    One relay per service container. Workers :meth:`wake` it right after their commit, so a reply never
    waits for publication and one pass publishes whatever several workers committed meanwhile; the same
    loop sweeps every ``poll_interval`` for rows a failed publish or a crash left behind.
    """

    poll_interval = 1.0
    batch_size = 200

    def __init__(self) -> None:
        super().__init__()
        self.engine: Engine | None = None
        self.table: Table | None = None
        self._take_batch: Any = None
        self._lock: Any = None
        self._loop = None
        self._stopped = False
        self._wakeup = eventlet.event.Event()

    def bind_storage(self, engine: Engine, table: Table) -> None:
        self.engine, self.table = engine, table
        self._take_batch = take_batch_statement(table, self.batch_size)  # built once: no per-pass compiling
        # One relay at a time per service keeps events in commit order across workers. The table's name
        # is written into the statement, so a filter on "outbox" tells the relay's statements apart.
        self._lock = text(f"SELECT pg_advisory_xact_lock(hashtext('{table}'))")

    def setup(self) -> None:
        config = self.container.config
        exchange = get_event_exchange(self.container.service_name, config)
        connection = Connection(
            config[AMQP_URI_CONFIG_KEY],
            # Confirms are taken by the batch (BatchPublisher), not waited for one publish at a time.
            transport_options={**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False},
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        self.publisher = BatchPublisher(connection, exchange)
        self.poll_interval = float(config.get("OUTBOX_POLL_INTERVAL", self.poll_interval))

    def start(self) -> None:
        self._stopped = False
        self._loop = self.container.spawn_managed_thread(self._relay_forever)

    def stop(self, graceful: bool = True) -> None:
        self._stopped = True
        if self._loop is not None:
            self._loop.kill()
        publisher = getattr(self, "publisher", None)
        if publisher is not None:
            publisher.close(graceful)

    def kill(self) -> None:
        self.stop(graceful=False)

    def wake(self) -> None:
        """Ask the loop for a pass now (rows were just committed)."""
        if not self._wakeup.ready():
            self._wakeup.send()

    def relay(self) -> int:
        """Publish every pending row; returns how many were published. Never raises: a failure leaves
        the rows for the next attempt."""
        if self.engine is None:
            return 0
        published = 0
        try:
            while True:
                count = self._relay_batch()
                published += count
                if count < self.batch_size:
                    return published
        except Exception:
            log.warning("outbox relay failed; pending events stay queued", exc_info=True)
            return published

    def _relay_batch(self) -> int:
        with self.engine.begin() as conn:
            conn.execute(self._lock)
            rows = sorted(conn.execute(self._take_batch).all(), key=lambda row: row.id)  # RETURNING has no order
            if rows:
                self.publisher.publish((row.payload, row.event_type, _headers(row)) for row in rows)
        return len(rows)

    def _relay_forever(self) -> None:
        # A kill landing inside a query can surface as an ordinary database error that relay()
        # swallows, so the loop also watches the flag.
        while not self._stopped:
            with eventlet.Timeout(self.poll_interval, False):
                self._wakeup.wait()
            # A fresh event before the pass: a wake during the pass schedules the next one.
            self._wakeup = eventlet.event.Event()
            self.relay()
