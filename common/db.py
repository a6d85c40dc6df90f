"""The database dependency: each worker gets the service's storage object over its own session.

Services talk to PostgreSQL through psycopg 3's C implementation, but wait for the socket with psycopg's
``select()`` wait function, which eventlet's monkey-patching turns into a green wait. psycopg's default
for its C implementation (``wait_c``) polls inside C and would block the whole process for the length of
every query; ``common/tests/test_storage.py`` keeps that from coming back.

What a database call costs in round trips (``common/tests/test_round_trips.py`` counts them):

* a read outside :meth:`StorageBase.transaction` runs on an autocommit connection: the statement alone,
  no ``BEGIN`` before it and no ``ROLLBACK`` when the worker ends;
* a transaction is ``BEGIN``, its statements, ``COMMIT``;
* checking a connection out of the pool costs nothing, unless it sat idle longer than
  ``DATABASE_IDLE_PING_SECONDS``: then it is pinged first (see :func:`ping_after_idle`).
"""

from __future__ import annotations

import os

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")  # must precede the first psycopg import

import contextlib  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Mapping  # noqa: E402
from typing import Any, Generic, TypeVar  # noqa: E402

import psycopg.waiting  # noqa: E402
from nameko.extensions import DependencyProvider  # noqa: E402
from sqlalchemy import MetaData, Table, Text, create_engine, event, func, insert, literal_column  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.exc import IntegrityError, InvalidatePoolError  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402
from sqlalchemy.sql.elements import ColumnElement  # noqa: E402

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


# A pooled connection unused for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 5.0

_CHECKED_IN_AT = "edusphere.checked_in_at"


def make_engine(url: str, *, idle_ping_seconds: float | None = IDLE_PING_SECONDS, **kwargs: Any) -> Engine:
    """An engine whose pool hands out the most recently used connection first (so a busy service keeps
    reusing warm connections and leaves the rest idle) and pings only connections that sat idle for
    ``idle_ping_seconds`` (``None``: never)."""
    engine = create_engine(sqlalchemy_url(url), **{"pool_use_lifo": True, **kwargs})
    if idle_ping_seconds is not None:
        ping_after_idle(engine, idle_ping_seconds)
    return engine


def ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a connection at checkout only when it was checked in more than ``idle_seconds`` ago.

    ``pool_pre_ping`` would cost every checkout a round trip. A connection that fails the ping (closed
    by a database restart or an idle timeout during a quiet spell) makes the pool drop it and every
    connection checked in before it, and the checkout continues on a new one, so the caller sees
    nothing. A connection used again within the window is not checked: if the database dropped it
    meanwhile, that one call fails with the disconnect error, SQLAlchemy invalidates the whole pool on
    it, and the next calls get new connections.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def remember_checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in_at = record.info.pop(_CHECKED_IN_AT, None)
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise InvalidatePoolError(f"idle connection failed its ping: {exc}") from exc


def iso_utc(moment: ColumnElement[Any]) -> ColumnElement[str]:
    """A timestamp column spelled as replies spell times, Python's ``isoformat()`` of its UTC value
    (CONTRACT §2.3): microseconds only when not 0, then ``+00:00``. PostgreSQL formats it, so a reply
    costs Python no datetime per row. Constants are SQL literals: nothing to bind per call."""
    utc = func.timezone(literal_column("'UTC'"), moment)
    with_fraction = func.to_char(utc, literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.US'"""), type_=Text)
    without_zero_fraction = func.replace(with_fraction, literal_column("'.000000'"), literal_column("''"), type_=Text)
    return without_zero_fraction.op("||")(literal_column("'+00:00'"))


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


_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}
_READ_ONLY_SNAPSHOT = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


class StorageBase:
    """Domain verbs over one session. Subclasses add the queries of their context.

    Writes happen inside :meth:`transaction`; events emitted there are stored in the outbox in the same
    transaction and published once it has committed (the relay is woken on commit).

    Outside :meth:`transaction` the session reads in autocommit mode. A read loses nothing by it: at
    READ COMMITTED each statement of a transaction takes its own snapshot anyway. Reads that must share
    one snapshot take :meth:`snapshot`; row locks (``FOR UPDATE``) need :meth:`transaction`, since
    outside one a lock ends with its statement.
    """

    def __init__(self, session: Session, outbox: Table, relay: OutboxRelay, call_id_stack: list[str]) -> None:
        self._session = session
        self._in_transaction = False
        self._outbox = outbox
        self._relay = relay
        self._call_id_stack = call_id_stack
        self._emitted = False

    @property
    def session(self) -> Session:
        """The worker's session: in the current transaction, or else in autocommit mode."""
        session = self._session
        if not self._in_transaction and not session.in_transaction():
            session.connection(execution_options=_AUTOCOMMIT)
        return session

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A transaction, committed when the block ends, rolled back if it raises. Nested in another,
        it is part of that one."""
        if self._in_transaction:
            yield self._session
            return
        with self._transaction():
            yield self._session
        if self._emitted:
            self._emitted = False
            self._relay.wake()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Session]:
        """Reads that must see one state of the database, however many statements they take: a
        read-only REPEATABLE READ transaction."""
        if self._in_transaction:
            raise RuntimeError("snapshot() must begin its own transaction")
        with self._transaction(_READ_ONLY_SNAPSHOT):
            yield self._session

    @contextlib.contextmanager
    def _transaction(self, execution_options: dict[str, Any] | None = None) -> Iterator[None]:
        session = self._session
        if session.in_transaction():
            # End the autocommit reads: nothing to roll back, so no round trip; the connection goes
            # back to the pool, and the transaction checks one out in transactional mode.
            session.rollback()
        if execution_options:
            session.connection(execution_options=execution_options)
        self._in_transaction = True
        try:
            yield
            session.commit()
        except BaseException:
            session.rollback()
            self._emitted = False
            raise
        finally:
            self._in_transaction = False

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
        idle_ping = config.get("DATABASE_IDLE_PING_SECONDS")
        engine_options = {"idle_ping_seconds": IDLE_PING_SECONDS if idle_ping in (None, "") else float(idle_ping)}
        engine_options.update(self.engine_options)
        self.engine = make_engine(database_url_for(config, self.container.service_name), **engine_options)
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
