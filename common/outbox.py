"""Transactional outbox: events are written in the same transaction as the change they describe, and
published after commit. Nothing is lost between commit and publication: rows stay until the broker has
confirmed them, and a relay loop retries whatever an interrupted worker left behind. Delivery is at
least once, so every event handler is idempotent.

Routing convention: an event whose payload names a room (``room_id``) carries that id as the message
header ``room_id`` as well, so a consumer can bind a headers exchange to just the rooms it serves (the
gateways' chat relay does) instead of receiving every room's traffic.
"""

from __future__ import annotations

import logging

import eventlet
import eventlet.event
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import get_event_exchange
from nameko.extensions import SharedExtension
from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, delete, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

CALL_ID_STACK_HEADER = "nameko.call_id_stack"
ROUTING_HEADERS = ("room_id",)


def routing_headers(payload: object) -> dict[str, str]:
    """Headers a consumer may bind on, taken from the payload (see the module docstring)."""
    if not isinstance(payload, dict):
        return {}
    return {key: str(payload[key]) for key in ROUTING_HEADERS if payload.get(key) is not None}


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
        self._loop = None
        self._stopped = False
        self._wakeup = eventlet.event.Event()

    def bind_storage(self, engine: Engine, table: Table) -> None:
        self.engine, self.table = engine, table

    def setup(self) -> None:
        config = self.container.config
        exchange = get_event_exchange(self.container.service_name, config)
        self.publisher = Publisher(config[AMQP_URI_CONFIG_KEY], exchange=exchange, declare=[exchange])
        self.poll_interval = float(config.get("OUTBOX_POLL_INTERVAL", self.poll_interval))

    def start(self) -> None:
        self._stopped = False
        self._loop = self.container.spawn_managed_thread(self._relay_forever)

    def stop(self) -> None:
        self._stopped = True
        if self._loop is not None:
            self._loop.kill()

    def kill(self) -> None:
        self.stop()

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
        table = self.table
        with self.engine.begin() as conn:
            # One relay at a time per service keeps events in commit order across workers.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": str(table)})
            rows = conn.execute(select(table).order_by(table.c.id).limit(self.batch_size)).all()
            for row in rows:
                self.publisher.publish(
                    row.payload,
                    routing_key=row.event_type,
                    extra_headers={CALL_ID_STACK_HEADER: list(row.call_id_stack), **routing_headers(row.payload)},
                )
            if rows:
                conn.execute(delete(table).where(table.c.id.in_([row.id for row in rows])))
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
