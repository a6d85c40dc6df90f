"""A real messages container on the run's own PostgreSQL database and RabbitMQ virtual host (the fixtures
every service's tests share are in ``services/conftest.py``).

Every test makes its own rooms and users (uuid4 ids), so tests never see each other's messages. Rooms
and users belong to other contexts: a test seeds this service's membership copy directly (its own
table), dispatches the other contexts' events as they would, or runs :class:`RoomsStub`, a stand-in for
the one rooms RPC this service calls.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import eventlet
import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import event

from common.db import Storage
from common.outbox import OutboxRelay
from services.messages.service import MessagesService
from testing.services import EventQueue


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def start_messages(start_service) -> Callable[..., Any]:
    """Start a messages container; keyword arguments override config keys."""
    return lambda **config: start_service(MessagesService, **{"ROOMS_RPC_TIMEOUT": 3, **config})


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
def rooms_stub(start_service) -> type[RoomsStub]:
    RoomsStub.participants = set()
    RoomsStub.asked = []
    start_service(RoomsStub)
    return RoomsStub


# --- the membership copy -----------------------------------------------------------------------------


@pytest.fixture
def member(sql) -> Callable[[str, str], None]:
    """Seed the membership copy: ``member(room_id, user_id)`` (unversioned, like one the rooms service's
    RPC taught)."""

    def add(room_id: str, user_id: str) -> None:
        sql(
            "INSERT INTO messages.memberships (room_id, user_id) VALUES (:room, :user) ON CONFLICT DO NOTHING",
            room=room_id,
            user=user_id,
        )

    return add


@pytest.fixture
def membership(sql) -> Callable[[str, str], tuple[bool, int] | None]:
    """What the copy holds of one membership: ``(member, version)``, or ``None`` when nothing."""

    def read(room_id: str, user_id: str) -> tuple[bool, int] | None:
        rows = sql(
            "SELECT member, version FROM messages.memberships WHERE room_id = :room AND user_id = :user",
            room=room_id,
            user=user_id,
        )
        return tuple(rows[0]) if rows else None

    return read


@pytest.fixture
def is_member(membership) -> Callable[[str, str], bool]:
    """Whether the copy says the user participates (a "left" row does not)."""
    return lambda room_id, user_id: (membership(room_id, user_id) or (False, 0))[0]


@pytest.fixture
def room_with_author(member) -> Callable[[], tuple[str, str]]:
    """A new room id and a participant of it."""

    def make() -> tuple[str, str]:
        room, author = new_id(), new_id()
        member(room, author)
        return room, author

    return make


# --- what the service publishes ----------------------------------------------------------------------


@pytest.fixture
def published(events_of) -> EventQueue:
    """Every event the messages service publishes, from before the test acts."""
    return events_of("messages")


def of_room(events: EventQueue, room_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The events received so far that concern one room, in order."""
    return [(kind, payload) for kind, payload in events.received if payload.get("room_id") == room_id]


# --- what the service sends to the database ----------------------------------------------------------


class Recorded:
    """The statements and transaction ends one stretch of a container's work sent to the database."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.commits = 0
        self.rollbacks = 0

    def verbs(self) -> list[str]:
        """Each statement's first word: ``["WITH", "INSERT"]``."""
        return [statement.split()[0] for statement in self.statements]


class DatabaseTraffic:
    """Records what the workers of a container send through its engine (its outbox relay's passes,
    which run on their own schedule, left out): statements as SQLAlchemy sends them, commits and
    rollbacks. Each of them is one round trip to PostgreSQL, as is the BEGIN psycopg sends before a
    transaction's first statement."""

    def __init__(self, container) -> None:
        storage = next(dep for dep in container.dependencies if isinstance(dep, Storage))
        self._relays = [ext for ext in container.subextensions if isinstance(ext, OutboxRelay)]
        self._engine = storage.engine
        self._current: Recorded | None = None
        event.listen(self._engine, "before_cursor_execute", self._statement)
        event.listen(self._engine, "commit", self._commit)
        event.listen(self._engine, "rollback", self._rollback)

    def _of_a_worker(self) -> bool:
        return self._current is not None and not any(
            eventlet.getcurrent() is relay._loop for relay in self._relays
        )

    def _statement(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self._of_a_worker():
            self._current.statements.append(statement)

    def _commit(self, conn) -> None:
        if self._of_a_worker():
            self._current.commits += 1

    def _rollback(self, conn) -> None:
        if self._of_a_worker():
            self._current.rollbacks += 1

    @contextlib.contextmanager
    def recording(self) -> Iterator[Recorded]:
        self._current = Recorded()
        try:
            yield self._current
        finally:
            self._current = None


@pytest.fixture
def database_traffic(messages_container) -> DatabaseTraffic:
    return DatabaseTraffic(messages_container)
