"""A real messages container on the run's own PostgreSQL database and RabbitMQ virtual host.

Every test makes its own rooms and users (uuid4 ids), so tests never see each other's messages. Rooms
and users belong to other contexts: a test seeds this service's membership copy directly (its own
table), dispatches the other contexts' events as they would, or runs :class:`RoomsStub`, a stand-in for
the one rooms RPC this service calls.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from functools import partialmethod
from typing import Any, ClassVar

import eventlet
import pytest
from kombu import Connection, Queue
from kombu.mixins import ConsumerMixin
from nameko.exceptions import get_module_path, registry
from nameko.messaging import QueueConsumer
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher, get_event_exchange
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from common import errors
from common.db import make_engine
from common.outbox import OutboxRelay
from services.messages.service import MessagesService


def new_id() -> str:
    return str(uuid.uuid4())


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
def reap_containers() -> Iterator[list[Any]]:
    """After ``container_factory`` has killed this test's containers, make sure no outbox relay loop
    lives on (it would publish later tests' rows) and no pooled connection stays open."""
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
def start_messages(reap_containers, container_factory, service_config) -> Callable[..., Any]:
    """Start a messages container; keyword arguments override config keys."""

    def start(**config: Any):
        container = container_factory(MessagesService, {"ROOMS_RPC_TIMEOUT": 3, **service_config, **config})
        reap_containers.append(container)
        container.start()
        return container

    return start


@pytest.fixture
def messages_container(start_messages):
    return start_messages()


@pytest.fixture
def rpc_proxy(service_config) -> Callable[[], ServiceRpcProxy]:
    """Open a proxy of one's own."""
    return lambda: ServiceRpcProxy("messages", service_config, timeout=30)


@pytest.fixture
def messages(messages_container, rpc_proxy) -> Iterator[Any]:
    with rpc_proxy() as proxy:
        yield proxy


# --- the rooms service's side ------------------------------------------------------------------------


class RoomsStub:
    """Stands in for the rooms service's ``is_participant``, answering from :attr:`participants`."""

    name = "rooms"
    participants: ClassVar[set[tuple[str, str]]] = set()
    asked: ClassVar[list[tuple[str, str]]] = []

    @rpc
    def is_participant(self, room_id: str, user_id: str) -> bool:
        RoomsStub.asked.append((room_id, user_id))
        return (room_id, user_id) in RoomsStub.participants


@pytest.fixture
def rooms_stub(container_factory, service_config) -> Iterator[type[RoomsStub]]:
    RoomsStub.participants = set()
    RoomsStub.asked = []
    container_factory(RoomsStub, service_config).start()
    yield RoomsStub


@pytest.fixture
def dispatch(service_config) -> Callable[[str, str, dict[str, Any]], None]:
    """Publish an event as another service would: ``dispatch("rooms", "room_deleted", {...})``."""
    return event_dispatcher(service_config)


# --- the database ------------------------------------------------------------------------------------


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


@pytest.fixture
def member(sql) -> Callable[[str, str], None]:
    """Seed the membership copy: ``member(room_id, user_id)``."""

    def add(room_id: str, user_id: str) -> None:
        sql(
            "INSERT INTO messages.memberships (room_id, user_id) VALUES (:room, :user) ON CONFLICT DO NOTHING",
            room=room_id,
            user=user_id,
        )

    return add


@pytest.fixture
def is_member(sql) -> Callable[[str, str], bool]:
    def check(room_id: str, user_id: str) -> bool:
        return bool(
            sql(
                "SELECT 1 FROM messages.memberships WHERE room_id = :room AND user_id = :user",
                room=room_id,
                user=user_id,
            )
        )

    return check


@pytest.fixture
def room_with_author(member) -> Callable[[], tuple[str, str]]:
    """A new room id and a participant of it."""

    def make() -> tuple[str, str]:
        room, author = new_id(), new_id()
        member(room, author)
        return room, author

    return make


# --- what the service publishes ----------------------------------------------------------------------


class PublishedEvents:
    """What the messages service publishes on ``messages.events``, as a queue of this test receives it."""

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

    def of_room(self, room_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(kind, payload) for kind, payload in self.received if payload.get("room_id") == room_id]

    def drain(self, quiet: float = 0.3) -> list[tuple[str, dict[str, Any]]]:
        """Everything received until the queue stays empty for ``quiet`` seconds."""
        while self._pull(quiet):
            pass
        return self.received


@pytest.fixture
def published(service_config) -> Iterator[PublishedEvents]:
    """A queue of this test's own bound to every messages event, declared before the test acts."""
    exchange = get_event_exchange("messages", service_config)
    queue = Queue(f"test-messages-events-{uuid.uuid4().hex}", exchange=exchange, routing_key="#", auto_delete=True)
    with Connection(service_config["AMQP_URI"]) as connection:
        simple = connection.SimpleQueue(queue)
        try:
            yield PublishedEvents(simple)
        finally:
            simple.close()
