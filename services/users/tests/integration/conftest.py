"""A real users container on the run's own PostgreSQL database and RabbitMQ virtual host (the fixtures
every service's tests share are in ``services/conftest.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import eventlet
import eventlet.event
import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.users.service import UsersService
from testing.services import EventQueue

PASSWORD = "correct horse battery"


def unique() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def start_users(start_service):
    """Start a users container; keyword arguments override config keys."""
    return lambda **config: start_service(UsersService, **config)


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


@pytest.fixture
def user_events(events_of) -> EventQueue:
    """Every event of the users exchange, from before the test acts."""
    return events_of("users")


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
