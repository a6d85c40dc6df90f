"""A real rooms container on the run's own PostgreSQL database and RabbitMQ virtual host.

Every test makes its own hosts and users (uuid4 ids) and its own topic names, so tests never see each
other's rooms through the filters they assert on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from functools import partialmethod
from typing import Any

import pytest
from kombu import Connection, Queue
from kombu.mixins import ConsumerMixin
from nameko.exceptions import get_module_path, registry
from nameko.messaging import QueueConsumer
from nameko.standalone.events import event_dispatcher, get_event_exchange
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from common import errors
from common.db import make_engine
from services.rooms.service import RoomsService

_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def new_id() -> str:
    return str(uuid.uuid4())


def topic_name(prefix: str = "T") -> str:
    """A topic name no other test uses: ASCII letters only."""
    return prefix + uuid.uuid4().hex.translate(_LETTERS)


def wait_until(condition: Callable[[], Any], timeout: float = 10, message: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def domain_errors(monkeypatch):
    """The standalone proxy raises the domain errors themselves (not ``RemoteError``), so tests compare
    their exact payloads. nameko stringifies non-str arguments on the wire, so ``raw`` comes back as
    ``"True"``/``"False"``."""

    def with_raw_flag(error_class):
        return lambda errors_map, raw=False: error_class(errors_map, raw=raw in (True, "True"))

    for error in errors.EXPECTED:
        rebuild = with_raw_flag(error) if error in (errors.ValidationFailed, errors.Conflict) else error
        monkeypatch.setitem(registry, get_module_path(error), rebuild)


@pytest.fixture(autouse=True)
def prompt_container_kill(monkeypatch):
    """nameko's queue consumer notices a stop or kill only between 1 s polls of the broker; poll every
    50 ms here, so container teardown does not cost every test a second."""
    monkeypatch.setattr(QueueConsumer, "consume", partialmethod(ConsumerMixin.consume, safety_interval=0.05))


@pytest.fixture
def start_rooms(container_factory, service_config) -> Callable[..., Any]:
    """Start a rooms container; keyword arguments override config keys."""

    def start(**config: Any):
        container = container_factory(RoomsService, {**service_config, **config})
        container.start()
        return container

    return start


@pytest.fixture
def rooms_container(start_rooms):
    return start_rooms()


@pytest.fixture
def rpc_proxy(service_config) -> Callable[[], ServiceRpcProxy]:
    """Open a proxy of one's own, e.g. one per concurrent caller."""
    return lambda: ServiceRpcProxy("rooms", service_config, timeout=30)


@pytest.fixture
def rooms(rooms_container, rpc_proxy) -> Iterator[Any]:
    with rpc_proxy() as proxy:
        yield proxy


@pytest.fixture
def dispatch(service_config) -> Callable[[str, str, dict[str, Any]], None]:
    """Publish an event as another service would: ``dispatch("users", "user_deleted", {...})``."""
    return event_dispatcher(service_config)


@pytest.fixture(scope="session")
def db(migrated_database_url):
    engine = make_engine(migrated_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sql(db) -> Callable[..., Any]:
    """Run one SQL statement in its own transaction; returns the rows (or the row count)."""

    def run(statement: str, **params: Any):
        with db.begin() as conn:
            result = conn.execute(text(statement), params)
            return result.all() if result.returns_rows else result.rowcount

    return run


class PublishedEvents:
    """What the rooms service publishes on ``rooms.events``, as a queue of this test receives it."""

    def __init__(self, queue) -> None:
        self.queue = queue
        self.received: list[tuple[str, dict[str, Any]]] = []

    def _pull(self, timeout: float) -> bool:
        try:
            message = self.queue.get(block=True, timeout=timeout)
        except self.queue.Empty:
            return False
        message.ack()
        self.received.append((message.delivery_info["routing_key"], message.payload))
        return True

    def matching(self, event_type: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            payload
            for kind, payload in self.received
            if kind == event_type and all(payload.get(key) == value for key, value in fields.items())
        ]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 10, **fields: Any) -> list[dict[str, Any]]:
        """The first ``count`` events of this type whose payload has ``fields``, waiting at most
        ``timeout`` seconds for them to arrive."""
        deadline = time.monotonic() + timeout
        while len(self.matching(event_type, **fields)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} {event_type} {fields}; received {self.received}")
            self._pull(min(remaining, 0.5))
        return self.matching(event_type, **fields)[:count]

    def drain(self, quiet: float = 0.3) -> list[tuple[str, dict[str, Any]]]:
        """Everything received until the queue stays empty for ``quiet`` seconds."""
        while self._pull(quiet):
            pass
        return self.received


@pytest.fixture
def published(service_config) -> Iterator[PublishedEvents]:
    """A queue of this test's own bound to every rooms event, declared before the test acts."""
    exchange = get_event_exchange("rooms", service_config)
    queue = Queue(f"test-rooms-events-{uuid.uuid4().hex}", exchange=exchange, routing_key="#", auto_delete=True)
    with Connection(service_config["AMQP_URI"]) as connection:
        simple = connection.SimpleQueue(queue)
        try:
            yield PublishedEvents(simple)
        finally:
            simple.close()


def create(proxy, host_id: str | None = None, name: str = "Study Room", topic: str | None = None, description=""):
    """Create a room with sensible defaults; returns it."""
    return proxy.create_room(host_id or new_id(), name, topic or topic_name(), description)
