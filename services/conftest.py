"""Fixtures of every service's tests. Service tests run nameko containers in this process, so eventlet
must patch first (nameko's pytest plugin no longer does it)."""

import eventlet

eventlet.monkey_patch()

import contextlib  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from functools import partialmethod  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from kombu.mixins import ConsumerMixin  # noqa: E402
from nameko.exceptions import get_module_path, registry  # noqa: E402
from nameko.messaging import QueueConsumer  # noqa: E402
from nameko.standalone.events import event_dispatcher  # noqa: E402
from sqlalchemy import text  # noqa: E402

from common import errors  # noqa: E402
from common.db import make_engine  # noqa: E402
from common.migrations import upgrade  # noqa: E402
from common.outbox import OutboxRelay  # noqa: E402
from testing.services import EventQueue, observe_events  # noqa: E402

SERVICES = ("users", "rooms", "messages")


@pytest.fixture(scope="session")
def migrated_database_url(database_url):
    """The run's database with every existing service's migrations applied."""
    here = os.path.dirname(__file__)
    for service in SERVICES:
        if os.path.isdir(os.path.join(here, service, "migrations")):
            upgrade(service, database_url)
    return database_url


@pytest.fixture
def service_config(migrated_database_url, amqp_uri):
    """nameko config for a container under test: the run's own database and virtual host."""
    return {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": migrated_database_url,
        "OUTBOX_POLL_INTERVAL": 0.2,
        "max_workers": 10,
    }


# --- nameko in tests ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def domain_errors(monkeypatch):
    """Standalone proxies raise the domain errors themselves rather than ``RemoteError`` (what the
    gateway gets), so tests compare their exact payloads. ``common.errors`` reads ``raw`` back."""
    for error in errors.EXPECTED:
        monkeypatch.setitem(registry, get_module_path(error), error)


@pytest.fixture(autouse=True)
def prompt_container_kill(monkeypatch):
    """nameko's queue consumer notices a stop or kill only between 1 s polls of the broker (kombu's
    ``safety_interval``); poll every 50 ms, so container teardown does not cost every test a second."""
    monkeypatch.setattr(QueueConsumer, "consume", partialmethod(ConsumerMixin.consume, safety_interval=0.05))


@pytest.fixture
def reap_containers() -> Iterator[list[Any]]:
    """After ``container_factory`` has killed this test's containers, finish what a kill leaves behind.

    A kill that lands while an ``OutboxRelay`` loop is inside a query can have psycopg replace the
    ``GreenletExit`` with a ``ProgrammingError``, which ``relay()`` catches: the loop then lives on and
    would publish later tests' outbox rows. Engines are disposed too: a kill, unlike a stop, leaves
    their pooled connections open.
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
def start_service(reap_containers, container_factory, service_config) -> Callable[..., Any]:
    """``start_service(UsersService, KEY=value)``: start a container of that service on the run's
    config, keyword arguments overriding config keys; it is killed (and reaped) after the test."""

    def start(service_class: type, **config: Any):
        container = container_factory(service_class, {**service_config, **config})
        reap_containers.append(container)
        container.start()
        return container

    return start


@pytest.fixture
def events_of(service_config) -> Iterator[Callable[[str], EventQueue]]:
    """``events_of("rooms")``: what that service publishes, on a queue of this test's own declared
    at the call, so ask for it before the test acts."""
    with contextlib.ExitStack() as stack:
        yield lambda service_name: stack.enter_context(observe_events(service_name, service_config))


@pytest.fixture
def dispatch(service_config) -> Callable[[str, str, dict[str, Any]], None]:
    """Publish an event as another service would: ``dispatch("users", "user_deleted", {...})``."""
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
