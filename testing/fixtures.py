"""Session fixtures: one isolated database and one isolated virtual host per test run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing import infra
from testing.stack import Stack, existing_services

# The gateway of the end-to-end tests trusts the loopback proxy, so each test can present its own client
# address (X-Forwarded-For) and login rate limits per address never leak from one test into another.
E2E_GATEWAY_ENV = {
    "EDUSPHERE_ENV": "development",
    "JWT_SECRET": "end-to-end-test-secret-of-at-least-32-bytes",
    "TRUSTED_PROXIES": "127.0.0.1",
}


@pytest.fixture(scope="session")
def test_run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    try:
        with infra.postgres_server() as url:
            yield url
    except infra.ServerUnavailable as exc:
        pytest.exit(str(exc), returncode=3)


@pytest.fixture(scope="session")
def rabbit_server() -> Iterator[tuple[str, str | None]]:
    try:
        with infra.rabbit_server() as server:
            yield server
    except infra.ServerUnavailable as exc:
        pytest.exit(str(exc), returncode=3)


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str, test_run_id: str) -> Iterator[str]:
    """URL of a database made for this run alone (no schema yet; migrations create them)."""
    with infra.isolated_database(postgres_admin_url, test_run_id) as url:
        yield url


@pytest.fixture(scope="session")
def vhost_name(test_run_id: str) -> str:
    return test_run_id


@pytest.fixture(scope="session")
def amqp_uri(rabbit_server: tuple[str, str | None], vhost_name: str) -> Iterator[str]:
    """AMQP URI on a virtual host made for this run alone."""
    uri, management_url = rabbit_server
    with infra.isolated_vhost(uri, management_url, vhost_name) as vhost_uri:
        yield vhost_uri


@pytest.fixture(scope="session")
def stack(database_url: str, amqp_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every service and one gateway as real processes, migrated and ready."""
    services = existing_services()
    stack = Stack(database_url, amqp_uri, tmp_path_factory.mktemp("stack"), gateway_env=dict(E2E_GATEWAY_ENV))
    try:
        stack.migrate(services)
        for service in services:
            stack.start_service(service)
        stack.start_gateway()
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()
