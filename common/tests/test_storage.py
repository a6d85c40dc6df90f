"""The storage provider on the real PostgreSQL and RabbitMQ: database calls cooperate with eventlet, and
events leave through the outbox only after commit, and are never lost."""

from __future__ import annotations

import json
import time
import uuid

import amqp
import eventlet
import kombu.messaging
import pytest
from kombu import Connection, Exchange, Queue
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import event, text

from common.db import Storage, StorageBase, make_engine, service_metadata
from common.outbox import OutboxRelay, outbox_table

probe_metadata = service_metadata("storage_probe")
probe_outbox = outbox_table(probe_metadata)


class ProbeStorage(StorageBase):
    def sleep(self, seconds: float) -> None:
        self.session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})

    def psycopg_implementation(self) -> str:
        import psycopg

        return f"{psycopg.pq.__impl__} {psycopg.waiting.wait.__name__}"


class ProbeService:
    name = "storage_probe"
    storage = Storage(ProbeStorage, probe_metadata)

    @rpc
    def sleep(self, seconds):
        self.storage.sleep(seconds)

    @rpc
    def psycopg_implementation(self):
        return self.storage.psycopg_implementation()

    @rpc
    def emit_for_room(self, room_id):
        with self.storage.transaction():
            self.storage.emit("room_probed", {"room_id": room_id})

    @rpc
    def emit(self, marker, fail=False):
        with self.storage.transaction():
            self.storage.emit("probed", {"marker": marker})
            if fail:
                raise ValueError("rolled back")


@pytest.fixture(scope="module")
def probe_schema(database_url):
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS storage_probe"))
    probe_metadata.create_all(engine)
    yield
    engine.dispose()


@pytest.fixture
def probe(container_factory, probe_schema, database_url, amqp_uri):
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": database_url, "OUTBOX_POLL_INTERVAL": 0.2}
    container = container_factory(ProbeService, config)
    container.start()
    with ServiceRpcProxy("storage_probe", config) as proxy:
        yield proxy, container


@pytest.fixture
def probed_events(amqp_uri):
    """Messages the probe service publishes on its events exchange."""
    with Connection(amqp_uri) as connection:
        queue = Queue(
            "probe-listener-" + uuid.uuid4().hex,
            Exchange("storage_probe.events", type="topic", durable=True),
            routing_key="probed",
            auto_delete=True,
        )
        queue = queue(connection.default_channel)
        queue.declare()

        def drain(timeout: float = 5.0) -> list[dict]:
            received, deadline = [], time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = queue.get(no_ack=True)
                if message is None:
                    if received:
                        break
                    eventlet.sleep(0.05)
                    continue
                received.append(json.loads(message.body))
            return received

        yield drain


def test_services_use_psycopgs_c_implementation_with_a_green_wait(probe):
    proxy, _ = probe
    assert proxy.psycopg_implementation() == "binary wait_select"


def test_concurrent_slow_queries_overlap(probe):
    """Four 0.5 s queries take about 0.5 s together when database waits yield to other greenthreads,
    and 2 s when a blocking driver runs them one after the other."""
    proxy, _ = probe
    started = time.monotonic()
    calls = [proxy.sleep.call_async(0.5) for _ in range(4)]
    for call in calls:
        call.result()
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"4 concurrent pg_sleep(0.5) took {elapsed:.2f}s: database calls block eventlet"


def test_events_are_published_only_after_commit(probe, probed_events):
    proxy, _ = probe
    committed, rolled_back = uuid.uuid4().hex, uuid.uuid4().hex
    with pytest.raises(Exception):
        proxy.emit(rolled_back, fail=True)
    proxy.emit(committed)
    markers = [event["marker"] for event in probed_events()]
    assert committed in markers
    assert rolled_back not in markers


def test_events_left_in_the_outbox_are_relayed(probe, probed_events, database_url):
    """A row whose publication never happened (a crash between commit and publish) is still delivered."""
    marker = uuid.uuid4().hex
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(probe_outbox.insert().values(event_type="probed", payload={"marker": marker}))
    engine.dispose()
    markers = [event["marker"] for event in probed_events(timeout=10)]
    assert markers == [marker]


def test_room_events_carry_the_room_as_a_routing_header(probe, amqp_uri):
    """A headers exchange bound on ``room_id`` receives exactly the events of that room."""
    proxy, _ = probe
    room_a, room_b = str(uuid.uuid4()), str(uuid.uuid4())
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        rooms = Exchange("probe-rooms-" + uuid.uuid4().hex, type="headers", auto_delete=True)
        rooms(channel).declare()
        channel.exchange_bind(rooms.name, "storage_probe.events", routing_key="#")
        queue = Queue("probe-room-" + uuid.uuid4().hex, rooms, auto_delete=True,
                      binding_arguments={"x-match": "all", "room_id": room_a})(channel)
        queue.declare()
        proxy.emit_for_room(room_b)
        proxy.emit_for_room(room_a)
        received, deadline = [], time.monotonic() + 5
        while time.monotonic() < deadline and not received:
            message = queue.get(no_ack=True)
            if message is None:
                eventlet.sleep(0.05)
                continue
            received.append(message)
        eventlet.sleep(0.3)
        assert queue.get(no_ack=True) is None  # room_b's event did not come here
    (message,) = received
    assert json.loads(message.body)["room_id"] == room_a
    assert message.headers["room_id"] == room_a


@pytest.fixture
def amqp_traffic(monkeypatch) -> list[tuple[str, int, str | None]]:
    """``("publish", connection, routing key)`` and ``("wait", connection, None)`` (a wait for incoming
    frames, e.g. confirms) on every py-amqp connection opened from now on, in order. (py-amqp also polls
    for a ``connection.blocked`` notice before each publish, without waiting: not listed.)"""
    traffic: list[tuple[str, int, str | None]] = []
    plain, confirmed = amqp.Channel.basic_publish, amqp.Channel.basic_publish_confirm
    drain = amqp.Connection.drain_events

    def routing_key_of(args, kwargs):
        return kwargs["routing_key"] if "routing_key" in kwargs else args[2]

    def publish(self, *args, **kwargs):
        traffic.append(("publish", id(self.connection), routing_key_of(args, kwargs)))
        return plain(self, *args, **kwargs)

    def publish_confirm(self, *args, **kwargs):
        traffic.append(("publish", id(self.connection), routing_key_of(args, kwargs)))
        return confirmed(self, *args, **kwargs)

    def drain_events(self, timeout=None, *args, **kwargs):
        if timeout != 0:
            traffic.append(("wait", id(self), None))
        return drain(self, timeout, *args, **kwargs)

    monkeypatch.setattr(amqp.Channel, "basic_publish", publish)
    monkeypatch.setattr(amqp.Channel, "basic_publish_confirm", publish_confirm)
    monkeypatch.setattr(amqp.Connection, "drain_events", drain_events)
    return traffic


def insert_outbox_rows(database_url, markers: list[str]) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(probe_outbox.insert(), [{"event_type": "probed", "payload": {"marker": m}} for m in markers])
    engine.dispose()


def pending_outbox_rows(database_url) -> int:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM storage_probe.outbox")).scalar_one()
    engine.dispose()
    return count


def test_the_relay_publishes_a_batch_then_waits_once_for_its_confirms(amqp_traffic, probe, probed_events, database_url):
    markers = [uuid.uuid4().hex for _ in range(30)]
    insert_outbox_rows(database_url, markers)  # one commit: the relay's next pass takes them as one batch
    received: list[str] = []
    deadline = time.monotonic() + 10
    while len(received) < len(markers) and time.monotonic() < deadline:
        received += [event["marker"] for event in probed_events(timeout=1)]
    assert received == markers  # all of them, in outbox order

    (relay_connection,) = {connection for kind, connection, key in amqp_traffic if key == "probed"}
    on_it = [kind for kind, connection, _ in amqp_traffic if connection == relay_connection]
    batch = on_it[on_it.index("publish") :]  # (opening the channel waits for the broker's answers too)
    # nameko's publisher waited for each event's confirm before the next: publish, wait, publish, ...
    assert batch[: len(markers) + 1] == ["publish"] * len(markers) + ["wait"]


def test_a_batch_the_broker_refuses_stays_in_the_outbox_until_it_is_confirmed(probe, amqp_uri, database_url):
    with Connection(amqp_uri) as connection:
        # A queue that refuses everything: the broker nacks each event routed to it.
        full = Queue(
            "probe-full-" + uuid.uuid4().hex,
            Exchange("storage_probe.events", type="topic", durable=True),
            routing_key="probed",
            queue_arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
        )(connection.default_channel)
        full.declare()
        try:
            insert_outbox_rows(database_url, [uuid.uuid4().hex])
            eventlet.sleep(1.0)  # several passes of the relay (every 0.2 s), each refused
            assert pending_outbox_rows(database_url) == 1
        finally:
            full.delete()
    deadline = time.monotonic() + 10
    while pending_outbox_rows(database_url) and time.monotonic() < deadline:
        eventlet.sleep(0.1)
    assert pending_outbox_rows(database_url) == 0


@pytest.fixture
def relay_passes(probe):
    """The statements of each pass of the probe's outbox relay, one list per transaction."""
    _, container = probe
    relay = next(ext for ext in container.subextensions if isinstance(ext, OutboxRelay))
    passes: list[list[str]] = [[]]

    def statement(conn, cursor, statement, parameters, context, executemany):
        if eventlet.getcurrent() is relay._loop:
            passes[-1].append(statement)

    def commit(conn):
        if eventlet.getcurrent() is relay._loop and passes[-1]:
            passes.append([])

    event.listen(relay.engine, "before_cursor_execute", statement)
    event.listen(relay.engine, "commit", commit)
    yield passes
    event.remove(relay.engine, "before_cursor_execute", statement)
    event.remove(relay.engine, "commit", commit)


def test_a_relay_pass_is_two_statements_and_encodes_nothing(relay_passes, probed_events, database_url, monkeypatch):
    """The lock and one statement that takes (deletes and returns) the batch, whose payloads are
    published as PostgreSQL wrote them: no statement per row, no JSON encoding of the events."""
    encoded = []
    plain_dumps = kombu.messaging.dumps

    def counted_dumps(*args, **kwargs):
        encoded.append(args)
        return plain_dumps(*args, **kwargs)

    monkeypatch.setattr(kombu.messaging, "dumps", counted_dumps)
    markers = [uuid.uuid4().hex for _ in range(30)]
    insert_outbox_rows(database_url, markers)
    received: list[str] = []
    deadline = time.monotonic() + 10
    while len(received) < len(markers) and time.monotonic() < deadline:
        received += [event["marker"] for event in probed_events(timeout=1)]
    assert received == markers

    passes = [statements for statements in relay_passes if statements]
    assert passes
    for statements in passes:
        assert [statement.split()[0] for statement in statements] == ["SELECT", "DELETE"], statements
        assert "pg_advisory_xact_lock" in statements[0]
    assert encoded == []
