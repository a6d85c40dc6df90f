"""What one database call of a worker costs in round trips to PostgreSQL, counted from libpq's protocol
trace of a real nameko container's connections, and how the pool deals with connections the database
dropped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import Column, Integer, Table, Text, func, insert, select, text

from common.db import Storage, StorageBase, make_engine, service_metadata
from common.outbox import outbox_table
from common.rpc import rpc
from common.tests.pg_trace import PgTrace

pytestmark = pytest.mark.integration

IDLE_PING_SECONDS = 1.0

metadata = service_metadata("round_trip_probe")
outbox_table(metadata)
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("body", Text, nullable=False))

# Another connection than the worker's, for changes the worker must not see (set by the fixture).
outside_engine = None


class NoteStorage(StorageBase):
    def count(self) -> int:
        return self.session.execute(select(func.count()).select_from(notes)).scalar_one()

    def add(self, body: str) -> None:
        self.session.execute(insert(notes).values(body=body))

    def backend(self) -> int:
        return self.session.execute(select(func.pg_backend_pid())).scalar_one()


class RoundTripProbe:
    name = "round_trip_probe"
    storage = Storage(NoteStorage, metadata)

    @rpc
    def count(self):
        return self.storage.count()

    @rpc
    def add(self, body):
        with self.storage.transaction():
            self.storage.add(body)

    @rpc
    def add_nested(self, body, fail=False):
        with self.storage.transaction():
            self.storage.add(body)
            with self.storage.transaction():
                self.storage.add(body)
            self.storage.add(body)
            if fail:
                raise ValueError("rolled back")

    @rpc
    def count_add_count(self, body):
        before = self.storage.count()
        with self.storage.transaction():
            self.storage.add(body)
        return before, self.storage.count()

    @rpc
    def count_twice_in_a_snapshot(self, body_added_between):
        with self.storage.snapshot() as session:
            first = self.storage.count()
            with outside_engine.begin() as conn:
                conn.execute(insert(notes).values(body=body_added_between))
            second = self.storage.count()
            read_only = session.execute(text("SHOW transaction_read_only")).scalar_one()
        return first, second, read_only

    @rpc
    def backend(self):
        return self.storage.backend()


@pytest.fixture(scope="module")
def probe_schema(database_url) -> Iterator[None]:
    global outside_engine
    outside_engine = make_engine(database_url)
    with outside_engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS round_trip_probe"))
    metadata.create_all(outside_engine)
    yield
    outside_engine.dispose()


@pytest.fixture
def probe(probe_schema, container_factory, database_url, amqp_uri, tmp_path):
    config = {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": database_url,
        "DATABASE_IDLE_PING_SECONDS": IDLE_PING_SECONDS,
        "OUTBOX_POLL_INTERVAL": 3600,  # the relay stays off these connections
        "max_workers": 1,
    }
    container = container_factory(RoundTripProbe, config)
    container.start()
    (storage,) = [dep for dep in container.dependencies if isinstance(dep, Storage)]
    trace = PgTrace(storage.engine, tmp_path)
    with ServiceRpcProxy("round_trip_probe", config, timeout=10) as proxy:
        yield proxy, container, trace


def settled(container, trace: PgTrace) -> list[str]:
    """The round trips since the last look, once the workers have finished (a reply goes out before
    the worker's teardown)."""
    deadline = time.monotonic() + 5
    while container._worker_threads and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    return trace.round_trips()


def test_a_read_outside_a_transaction_is_one_round_trip(probe):
    proxy, container, trace = probe
    proxy.count()  # opens the connection
    settled(container, trace)
    for _ in range(3):
        proxy.count()
        # Before: a pre-ping, BEGIN, the query, and ROLLBACK when the worker ended.
        assert settled(container, trace) == ["SELECT count(*) AS count_1 \nFROM round_trip_probe.notes"]


def test_a_transaction_is_begin_its_statements_and_commit(probe):
    proxy, container, trace = probe
    proxy.count()
    settled(container, trace)
    proxy.add("one")
    begin, statement, commit = settled(container, trace)
    assert begin.startswith("BEGIN")
    assert statement.startswith("INSERT INTO round_trip_probe.notes")
    assert commit == "COMMIT"


def test_reads_around_a_transaction_stay_out_of_it(probe):
    proxy, container, trace = probe
    proxy.count()
    settled(container, trace)
    before, after = proxy.count_add_count("two")
    assert after == before + 1
    trips = settled(container, trace)
    assert [trip.split()[0] for trip in trips] == ["SELECT", "BEGIN", "INSERT", "COMMIT", "SELECT"]


def test_a_transaction_inside_another_is_part_of_it(probe):
    proxy, container, trace = probe
    before = proxy.count()
    settled(container, trace)
    proxy.add_nested("nested")
    assert [trip.split()[0] for trip in settled(container, trace)] == ["BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"]
    with pytest.raises(RemoteError):
        proxy.add_nested("nested", fail=True)
    assert proxy.count() == before + 3  # nothing of the failed call stayed, the inner block's rows neither


def test_a_snapshot_reads_one_state_read_only(probe):
    proxy, container, trace = probe
    first, second, read_only = proxy.count_twice_in_a_snapshot("committed meanwhile")
    assert first == second
    assert read_only == "on"
    assert proxy.count() == first + 1
    trips = settled(container, trace)
    assert trips[0] == "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    assert trips[4] == "COMMIT"


def test_a_busy_connection_is_not_pinged_and_an_idle_one_is(probe):
    proxy, container, trace = probe
    proxy.count()
    settled(container, trace)
    proxy.count()
    proxy.count()
    assert ";" not in settled(container, trace)
    eventlet.sleep(IDLE_PING_SECONDS + 0.2)
    proxy.count()
    trips = settled(container, trace)
    assert trips[0] == ";"  # the dialect's ping
    assert len(trips) == 2


def terminate(pid: int) -> None:
    with outside_engine.begin() as conn:
        assert conn.execute(select(func.pg_terminate_backend(pid))).scalar_one()


def test_a_connection_the_database_dropped_during_an_idle_spell_is_replaced_unnoticed(probe):
    proxy, _, _ = probe
    pid = proxy.backend()
    terminate(pid)  # as a database restart or an idle timeout would
    eventlet.sleep(IDLE_PING_SECONDS + 0.2)
    assert proxy.backend() != pid
    assert proxy.count() >= 0


def test_a_call_within_the_idle_window_on_a_dropped_connection_fails_once(probe):
    """The documented price of not pinging busy connections: that one call fails, the pool is
    invalidated, and the next call gets a new connection."""
    proxy, _, _ = probe
    pid = proxy.backend()
    terminate(pid)
    with pytest.raises(RemoteError) as raised:
        proxy.backend()
    assert raised.value.exc_type == "OperationalError"
    assert proxy.backend() != pid
