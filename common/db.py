"""The database dependency: each worker gets the service's storage object over its own session.

Services talk to PostgreSQL through psycopg 3's C implementation, but wait for the socket with psycopg's
``select()`` wait function, which eventlet's monkey-patching turns into a green wait. psycopg's default
for its C implementation (``wait_c``) polls inside C and would block the whole process for the length of
every query; ``common/tests/test_storage.py`` keeps that from coming back.
"""

from __future__ import annotations

import os

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")  # must precede the first psycopg import

import contextlib  # noqa: E402
from collections.abc import Callable, Iterator, Mapping  # noqa: E402
from typing import Any, Generic, TypeVar  # noqa: E402

import psycopg.waiting  # noqa: E402
from nameko.extensions import DependencyProvider  # noqa: E402
from sqlalchemy import MetaData, Table, create_engine, insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.exc import IntegrityError  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from common.outbox import OutboxRelay  # noqa: E402

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    """Metadata of one service's tables, all in that service's own PostgreSQL schema."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def sqlalchemy_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and pin the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def database_url_for(config: dict[str, Any], service_name: str) -> str:
    """A service's own ``<SERVICE>_DATABASE_URL`` when set, else the shared ``DATABASE_URL``."""
    url = config.get(f"{service_name.upper()}_DATABASE_URL") or config.get("DATABASE_URL")
    if not url:
        raise RuntimeError(f"{service_name}: set DATABASE_URL (or {service_name.upper()}_DATABASE_URL)")
    return sqlalchemy_url(url)


def ensure_green_waits() -> None:
    """Refuse to run with a wait function eventlet cannot switch away from (psycopg imported before this
    module, or ``PSYCOPG_WAIT_FUNC`` overridden)."""
    if getattr(psycopg.waiting, "wait_c", None) is psycopg.waiting.wait:
        raise RuntimeError("psycopg waits in C, which blocks eventlet: import common.db before psycopg")


def make_engine(url: str, **kwargs: Any) -> Engine:
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True, **kwargs)


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint an ``IntegrityError`` violated, from psycopg's diagnostics."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


@contextlib.contextmanager
def unique_violations(fields: Mapping[str, str], error: Callable[[str], Exception]) -> Iterator[None]:
    """Raise ``error(field)`` for an ``IntegrityError`` of a constraint in ``fields`` (constraint name ->
    field), e.g. an insert that lost a uniqueness race; any other ``IntegrityError`` goes on as it is.
    Either way the transaction must then be rolled back."""
    try:
        yield
    except IntegrityError as exc:
        field = fields.get(violated_constraint(exc) or "")
        if field is None:
            raise
        raise error(field) from exc


class StorageBase:
    """Domain verbs over one session. Subclasses add the queries of their context.

    Writes happen inside :meth:`transaction`; events emitted there are stored in the outbox in the same
    transaction and published once it has committed (the relay is woken on commit).
    """

    def __init__(self, session: Session, outbox: Table, relay: OutboxRelay, call_id_stack: list[str]) -> None:
        self.session = session
        self._outbox = outbox
        self._relay = relay
        self._call_id_stack = call_id_stack
        self._emitted = False

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        try:
            yield self.session
            self.session.commit()
        except BaseException:
            self.session.rollback()
            self._emitted = False
            raise
        if self._emitted:
            self._emitted = False
            self._relay.wake()

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        """Queue an event in the current transaction."""
        self.session.execute(
            insert(self._outbox).values(event_type=event_type, payload=payload, call_id_stack=self._call_id_stack)
        )
        self._emitted = True


StorageT = TypeVar("StorageT", bound=StorageBase)


class Storage(DependencyProvider, Generic[StorageT]):
    """``storage = Storage(UserStorage, metadata)``: one engine per container, one session per worker."""

    relay = OutboxRelay()

    def __init__(self, storage_class: type[StorageT], metadata: MetaData, **engine_options: Any) -> None:
        self.storage_class = storage_class
        self.metadata = metadata
        self.engine_options = {"pool_size": 10, "max_overflow": 20, **engine_options}
        self.sessions: dict[Any, Session] = {}

    def setup(self) -> None:
        ensure_green_waits()
        config = self.container.config
        self.engine = make_engine(database_url_for(config, self.container.service_name), **self.engine_options)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.outbox = self.metadata.tables[f"{self.metadata.schema}.outbox"]
        self.relay.bind_storage(self.engine, self.outbox)

    def stop(self) -> None:
        self.engine.dispose()

    def get_dependency(self, worker_ctx) -> StorageT:
        session = self.sessionmaker()
        self.sessions[worker_ctx] = session
        return self.storage_class(session, self.outbox, self.relay, list(worker_ctx.call_id_stack))

    def worker_teardown(self, worker_ctx) -> None:
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            session.close()
