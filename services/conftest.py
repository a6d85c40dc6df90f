"""Service tests run nameko containers in this process, so eventlet must patch first (nameko's pytest
plugin no longer does it)."""

import eventlet

eventlet.monkey_patch()

import os  # noqa: E402

import pytest  # noqa: E402

from common.migrations import upgrade  # noqa: E402

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
