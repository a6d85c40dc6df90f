"""A real users container on the run's own PostgreSQL database and RabbitMQ virtual host."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from functools import partialmethod
from typing import Any

import eventlet
import eventlet.event
import pytest
from kombu import Connection, Queue
from kombu.mixins import ConsumerMixin
from nameko.exceptions import get_module_path, registry
from nameko.messaging import QueueConsumer
from nameko.standalone.events import get_event_exchange
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from common import errors
from common.db import make_engine
from common.outbox import OutboxRelay
from services.users.service import UsersService

PASSWORD = "correct horse battery"


def unique() -> str:
    return uuid.uuid4().hex[:12]


def _with_raw_flag(error_class):
    # nameko's safe_for_serialization() turns every non-str scalar in exc_args into a string, so the
    # ``raw`` flag arrives as "True" / "False"; read it back as the boolean it was.
    def rebuild(errors, raw=False):
        return error_class(errors, raw=raw is True or raw == "True")

    return rebuild


@pytest.fixture(autouse=True)
def domain_errors(monkeypatch):
    """Let the standalone proxy raise the domain errors themselves rather than ``RemoteError``, for
    these tests only."""
    for error in errors.EXPECTED:
        rebuild = _with_raw_flag(error) if error in (errors.ValidationFailed, errors.Conflict) else error
        monkeypatch.setitem(registry, get_module_path(error), rebuild)


@pytest.fixture(autouse=True)
def prompt_container_kill(monkeypatch):
    """nameko's queue consumer notices a kill only between its 1 s polls of the broker (kombu's
    ``safety_interval``), which would cost every test a second; poll every 50 ms in these tests."""
    monkeypatch.setattr(QueueConsumer, "consume", partialmethod(ConsumerMixin.consume, safety_interval=0.05))


@pytest.fixture
def reap_containers() -> Iterator[list[Any]]:
    """After ``container_factory`` has killed this test's containers, finish what a kill leaves behind.

    ``OutboxRelay`` (common/outbox.py) has no ``kill()``, and a kill that lands while its loop is inside
    a query can have psycopg replace the ``GreenletExit`` with a ``ProgrammingError``, which
    ``relay()`` catches: the loop then lives on and would publish later tests' outbox rows. Engines are
    disposed too: a kill, unlike a stop, leaves their pooled connections open.
    """
    containers: list[Any] = []
    yield containers
    for container in containers:
        for relay in (ext for ext in container.subextensions if isinstance(ext, OutboxRelay)):
            for _ in range(50):
                if relay._loop is None or relay._loop.dead:
                    break
                relay._loop.kill()
                eventlet.sleep(0.01)
            if relay.engine is not None:
                relay.engine.dispose()


@pytest.fixture
def start_users(reap_containers, container_factory, service_config):
    """Start a users container; keyword arguments override config keys."""

    def start(**config: Any):
        container = container_factory(UsersService, {**service_config, **config})
        reap_containers.append(container)
        container.start()
        return container

    return start


@pytest.fixture
def users_container(start_users):
    return start_users()


@pytest.fixture
def users(users_container, service_config) -> Iterator[Any]:
    with ServiceRpcProxy("users", service_config, timeout=30) as proxy:
        yield proxy


@pytest.fixture
def rpc_proxy(service_config):
    """Open more proxies, e.g. one per concurrent caller."""

    def open_proxy():
        return ServiceRpcProxy("users", service_config, timeout=30)

    return open_proxy


@pytest.fixture(scope="session")
def db(migrated_database_url):
    engine = make_engine(migrated_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sql(db):
    """Run one SQL statement in its own transaction; returns the rows (or the row count)."""

    def run(statement: str, **params: Any):
        with db.begin() as conn:
            result = conn.execute(text(statement), params)
            return result.all() if result.returns_rows else result.rowcount

    return run


def register(proxy, **fields: Any) -> dict[str, Any]:
    suffix = unique()
    values = dict(
        username=f"user_{suffix}",
        name="Test User",
        email=f"user.{suffix}@example.com",
        password1=PASSWORD,
        password2=PASSWORD,
    )
    values.update(fields)
    return proxy.register(**values)


class EventStream:
    """Events of the ``users.events`` exchange, as a bound queue of this test receives them."""

    def __init__(self, queue) -> None:
        self.queue = queue
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def wait_for(self, event_type: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        for seen_type, payload in self.seen:
            if seen_type == event_type and all(payload.get(key) == value for key, value in match.items()):
                return payload
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event_type} event matching {match}; saw {self.seen}")
            try:
                message = self.queue.get(block=True, timeout=remaining)
            except self.queue.Empty:
                continue
            message.ack()
            seen = (message.delivery_info["routing_key"], message.payload)
            self.seen.append(seen)
            if seen[0] == event_type and all(seen[1].get(key) == value for key, value in match.items()):
                return seen[1]


@pytest.fixture
def user_events(service_config) -> Iterator[EventStream]:
    """A queue of this test's own, bound to every event of the users exchange (declared before the
    test acts, so nothing published afterwards is missed)."""
    exchange = get_event_exchange("users", service_config)
    queue = Queue(f"test-users-events-{unique()}", exchange=exchange, routing_key="#", auto_delete=True)
    with Connection(service_config["AMQP_URI"]) as connection:
        simple = connection.SimpleQueue(queue)
        try:
            yield EventStream(simple)
        finally:
            simple.close()


class Rendezvous:
    """Holds each arriving greenthread until ``parties`` have arrived (or ``timeout`` passes)."""

    def __init__(self, parties: int, timeout: float = 10) -> None:
        self.parties = parties
        self.timeout = timeout
        self.arrived = 0
        self.event = eventlet.event.Event()

    def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties and not self.event.ready():
            self.event.send(True)
        with eventlet.Timeout(self.timeout, False):
            self.event.wait()
