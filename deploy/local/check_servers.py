"""Check that PostgreSQL and RabbitMQ answer, within seconds, and say how to start whichever does not.

    check_servers.py --postgres URL [--rabbit URI] [--create-database]
"""

from __future__ import annotations

import argparse
import sys
from urllib.parse import unquote, urlsplit, urlunsplit

TIMEOUT_SECONDS = 5

HOW_TO_START = {
    "postgres": (
        "Start PostgreSQL: `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
        "(Debian), `docker compose up -d postgres`, or set DATABASE_URL / POSTGRES_URL to a running server."
    ),
    "rabbit": (
        "Start RabbitMQ: `rabbitmq-server -detached`, `docker compose up -d rabbitmq`, "
        "or set AMQP_URI to a running broker."
    ),
}


def _server_url(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.split("+")[0], parts.netloc, "/" + database, parts.query, ""))


def check_postgres(url: str, create_database: bool) -> str | None:
    import psycopg

    database = urlsplit(url).path.lstrip("/") or "postgres"
    try:
        with psycopg.connect(_server_url(url, "postgres"), connect_timeout=TIMEOUT_SECONDS, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if create_database and not exists:
                conn.execute(f'CREATE DATABASE "{database}"')
                print(f"created database {database}")
    except psycopg.Error as exc:
        return f"PostgreSQL at {urlsplit(url).netloc} does not answer ({str(exc).strip().splitlines()[0]}).\n{HOW_TO_START['postgres']}"
    return None


def check_rabbit(uri: str) -> str | None:
    import amqp

    parts = urlsplit(uri)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    connection = amqp.Connection(
        host=f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=vhost,
        connect_timeout=TIMEOUT_SECONDS,
    )
    try:
        connection.connect()
    except Exception as exc:  # socket errors, auth failures, refused vhost alike
        return f"RabbitMQ at {parts.hostname}:{parts.port or 5672} does not answer ({exc or type(exc).__name__}).\n{HOW_TO_START['rabbit']}"
    finally:
        try:
            connection.close()
        except Exception:
            pass
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres")
    parser.add_argument("--rabbit")
    parser.add_argument("--create-database", action="store_true")
    args = parser.parse_args()
    problems = []
    if args.postgres:
        problems.append(check_postgres(args.postgres, args.create_database))
    if args.rabbit:
        problems.append(check_rabbit(args.rabbit))
    problems = [problem for problem in problems if problem]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
