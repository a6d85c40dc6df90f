"""Isolated PostgreSQL databases and RabbitMQ virtual hosts for one test run.

Servers come from environment URLs when set (the Makefile sets them to the local servers); otherwise
testcontainers starts them where a Docker engine is reachable. Each run gets its own database and its
own virtual host, so a run never disturbs a running stack on the same servers, and two runs never collide.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

POSTGRES_ENV = "EDUSPHERE_TEST_DATABASE_URL"
RABBIT_ENV = "EDUSPHERE_TEST_AMQP_URI"
RABBIT_MANAGEMENT_ENV = "EDUSPHERE_TEST_RABBIT_MANAGEMENT_URL"


class ServerUnavailable(RuntimeError):
    pass


def run_id() -> str:
    return "edusphere_test_" + uuid.uuid4().hex[:10]


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path, parts.query, parts.fragment))


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield an admin URL of a PostgreSQL server (one that may create databases)."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        if not _reachable(url, 5432):
            raise ServerUnavailable(
                f"PostgreSQL does not answer at {url} ({POSTGRES_ENV}). Start it, e.g. "
                "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, "
                "or unset the variable to use testcontainers with Docker."
            )
        yield url
        return
    if not _docker_reachable():
        raise ServerUnavailable(
            f"No PostgreSQL for tests: set {POSTGRES_ENV} (make test sets it to the local server) "
            "or make a Docker engine reachable for testcontainers."
        )
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


@contextlib.contextmanager
def rabbit_server() -> Iterator[tuple[str, str | None]]:
    """Yield (AMQP URI, management URL or None) of a RabbitMQ server."""
    uri = os.environ.get(RABBIT_ENV)
    if uri:
        if not _reachable(uri, 5672):
            raise ServerUnavailable(
                f"RabbitMQ does not answer at {uri} ({RABBIT_ENV}). Start it, e.g. "
                "`rabbitmq-server -detached`, or unset the variable to use testcontainers with Docker."
            )
        yield uri, os.environ.get(RABBIT_MANAGEMENT_ENV)
        return
    if not _docker_reachable():
        raise ServerUnavailable(
            f"No RabbitMQ for tests: set {RABBIT_ENV} (make test sets it to the local server) "
            "or make a Docker engine reachable for testcontainers."
        )
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13-management-alpine") as container:
        host = container.get_container_host_ip()
        amqp = f"amqp://guest:guest@{host}:{container.get_exposed_port(5672)}/"
        management = f"http://guest:guest@{host}:{container.get_exposed_port(15672)}"
        yield amqp, management


@contextlib.contextmanager
def isolated_database(admin_url: str, name: str) -> Iterator[str]:
    """Create a fresh database, yield its URL, drop it afterwards."""
    import psycopg  # imported late: service tests monkey-patch with eventlet before it loads
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_path(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _management_request(management_url: str, method: str, path: str, body: bytes | None = None) -> None:
    import base64
    import urllib.request

    parts = urlsplit(management_url)
    base = urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port}", "", "", ""))
    request = urllib.request.Request(base + path, data=body, method=method)
    credentials = f"{parts.username or 'guest'}:{parts.password or 'guest'}".encode()
    request.add_header("Authorization", "Basic " + base64.b64encode(credentials).decode())
    request.add_header("Content-Type", "application/json")
    urllib.request.urlopen(request, timeout=10).read()


@contextlib.contextmanager
def isolated_vhost(amqp_uri: str, management_url: str | None, name: str) -> Iterator[str]:
    """Create a fresh virtual host, yield an AMQP URI on it, delete it afterwards."""
    user = urlsplit(amqp_uri).username or "guest"
    if management_url:
        _management_request(management_url, "PUT", f"/api/vhosts/{name}")
        _management_request(
            management_url, "PUT", f"/api/permissions/{name}/{user}",
            b'{"configure": ".*", "write": ".*", "read": ".*"}',
        )
    elif shutil.which("rabbitmqctl"):
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    else:
        raise ServerUnavailable(
            f"Cannot create a virtual host: set {RABBIT_MANAGEMENT_ENV} to the management API "
            "or run the tests where rabbitmqctl is available."
        )
    try:
        yield _with_path(amqp_uri, quote(name, safe=""))
    finally:
        if management_url:
            _management_request(management_url, "DELETE", f"/api/vhosts/{name}")
        else:
            _rabbitmqctl("delete_vhost", name)


def close_vhost_connections(management_url: str | None, vhost: str) -> None:
    """Drop every client connection of one virtual host, as a broker restart would."""
    if management_url:
        raise NotImplementedError("closing connections through the management API")
    _rabbitmqctl("close_all_connections", "-p", vhost, "closed by the test suite")
