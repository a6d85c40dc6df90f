"""What a process sends to PostgreSQL, round trip by round trip, read from libpq's own protocol trace
(``PQtrace``): BEGIN, ROLLBACK and pings included, which SQLAlchemy's statement events never see."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine

# One traced message: direction, length, type, then its fields, which may span lines (a statement's
# text is printed as it is, newlines included).
_MESSAGE = re.compile(r"^([FB])\t\d+\t(\w+)(.*?)(?=^[FB]\t\d+\t\w+|\Z)", re.M | re.S)


class PgTrace:
    """Traces every connection of ``engine`` from its next checkout on.

    :meth:`round_trips` returns what was sent since the previous call: one entry per round trip (a
    simple ``Query``, or an extended-protocol exchange up to its ``Sync``), the statement's text, or
    ``"<prepared NAME>"`` for a statement psycopg prepared earlier.
    """

    def __init__(self, engine: Engine, directory: Path) -> None:
        self.directory = directory
        self._traced: dict[int, tuple[Any, Path]] = {}
        self._read: dict[Path, int] = {}
        # First among the checkout listeners, so the idle ping (another one) is traced too.
        event.listen(engine, "checkout", self._on_checkout, insert=True)

    def _on_checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        pgconn = dbapi_connection.pgconn
        if id(pgconn) not in self._traced:
            path = self.directory / f"pgconn-{len(self._traced)}.trace"
            self._traced[id(pgconn)] = (pgconn, path)
            self._start(pgconn, path)

    @staticmethod
    def _start(pgconn: Any, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        pgconn.trace(fd)
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)

    def round_trips(self) -> list[str]:
        trips: list[str] = []
        for pgconn, path in self._traced.values():
            live = pgconn.status == psycopg.pq.ConnStatus.OK
            if live:
                pgconn.untrace()  # flushes libpq's buffered trace output
            traced = path.read_text()
            trips.extend(_round_trips(traced[self._read.get(path, 0):]))
            self._read[path] = len(traced)
            if live:
                self._start(pgconn, path)
        return trips


def _round_trips(traced: str) -> list[str]:
    trips: list[str] = []
    statement: str | None = None
    for direction, kind, fields in _MESSAGE.findall(traced):
        if direction != "F":
            continue
        if kind == "Query":  # fields: "text"
            trips.append(fields[fields.index('"') + 1 : fields.rindex('"')])
        elif kind == "Parse":  # fields: "name" "text" parameter types
            text = fields[fields.index('"', fields.index('"') + 1) + 1 :]
            statement = text[text.index('"') + 1 : text.rindex('"')]
        elif kind == "Bind" and statement is None:  # fields: "portal" "statement" ...
            statement = "<prepared {}>".format(fields.split('"')[3])
        elif kind == "Sync":
            trips.append(statement or "")
            statement = None
    return trips
