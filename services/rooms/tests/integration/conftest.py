"""A real rooms container on the run's own PostgreSQL database and RabbitMQ virtual host (the fixtures
every service's tests share are in ``services/conftest.py``).

Every test makes its own hosts and users (uuid4 ids) and its own topic names, so tests never see each
other's rooms through the filters they assert on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.rooms.service import RoomsService
from testing.services import EventQueue

_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def new_id() -> str:
    return str(uuid.uuid4())


def topic_name(prefix: str = "T") -> str:
    """A topic name no other test uses: ASCII letters only."""
    return prefix + uuid.uuid4().hex.translate(_LETTERS)


@pytest.fixture
def start_rooms(start_service) -> Callable[..., Any]:
    """Start a rooms container; keyword arguments override config keys."""
    return lambda **config: start_service(RoomsService, **config)


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
def published(events_of) -> EventQueue:
    """Every event the rooms service publishes, from before the test acts."""
    return events_of("rooms")


def create(proxy, host_id: str | None = None, name: str = "Study Room", topic: str | None = None, description=""):
    """Create a room with sensible defaults; returns it."""
    return proxy.create_room(host_id or new_id(), name, topic or topic_name(), description)


def version(event: dict[str, Any]) -> int:
    """The ``membership_version`` of a ``participant_joined`` / ``participant_left`` payload, checked to be
    a positive integer."""
    number = event["membership_version"]
    assert isinstance(number, int) and not isinstance(number, bool) and number > 0, event
    return number
