"""The read replies: PostgreSQL writes their ids and times as text, so these pin the wire format (lowercase
ids, ``isoformat()`` in UTC with ``+00:00``, no fraction when the microseconds are 0; CONTRACT §2.3) to be
exactly what ``schemas.room`` makes of the stored row, and check that each read runs one statement that
is built once, whatever the values (so SQLAlchemy reuses its cache key instead of walking it per call).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta

import eventlet
import pytest
from sqlalchemy import event

from common.db import Storage
from common.outbox import OutboxRelay
from services.rooms import schemas
from testing.times import TIMES
from services.rooms.tests.integration.conftest import create, new_id, topic_name

pytestmark = pytest.mark.integration



@pytest.fixture
def room_pair(rooms, sql):
    """Two rooms of one host and topic, with two participants each and times of every shape."""
    host, topic = new_id(), topic_name()
    pair = [create(rooms, host, "Alpha", topic), create(rooms, host, "Beta", topic)]
    guest = new_id()
    for room in pair:
        rooms.join_room(room["id"], guest)
    stored = list(TIMES)
    sql("UPDATE rooms.rooms SET created = :created, updated = :updated WHERE id = :id",
        id=pair[0]["id"], created=stored[0], updated=stored[1])
    sql("UPDATE rooms.rooms SET created = :created, updated = :updated WHERE id = :id",
        id=pair[1]["id"], created=stored[2], updated=stored[3])
    return host, topic, guest, pair


def python_reply(sql, room_id: str, details=()) -> dict:
    """The room as ``schemas.room`` spells it from the stored row: the reference of the wire format."""
    row = sql("SELECT * FROM rooms.rooms WHERE id = :id", id=room_id)[0]
    members = sql("SELECT user_id FROM rooms.participants WHERE room_id = :id ORDER BY joined, user_id", id=room_id)
    topic = sql("SELECT name FROM rooms.topics WHERE id = :id", id=row.topic_id)[0]
    full = type("Row", (), {**row._asdict(), "participant_ids": [member.user_id for member in members],
                            "topic_name": topic.name})
    return schemas.room(full, details)


def test_every_room_read_replies_exactly_as_schemas_room(rooms, room_pair, sql):
    host, topic, guest, (alpha, beta) = room_pair
    details = ["participant_ids", "topic"]
    plain = {room["id"]: python_reply(sql, room["id"]) for room in (alpha, beta)}
    full = {room["id"]: python_reply(sql, room["id"], details) for room in (alpha, beta)}
    assert plain[alpha["id"]]["created"] == "2025-08-20T12:01:11+00:00"
    assert plain[beta["id"]]["updated"] == "2026-03-29T01:30:00.500000+00:00"
    assert full[alpha["id"]]["participant_ids"] == [host, guest]

    assert rooms.get_room(alpha["id"]) == plain[alpha["id"]]
    assert rooms.get_room_by_host_slug(host, "beta") == plain[beta["id"]]
    assert rooms.get_room_by_host_slug(host, "beta", include=details) == full[beta["id"]]
    assert rooms.get_many([beta["id"], alpha["id"]], include=details) == [full[beta["id"]], full[alpha["id"]]]
    for reply in (
        rooms.list_rooms(host_id=host, include=details),
        rooms.list_rooms(topics=[topic], include=details),
        rooms.list_rooms(host_id=host, search="a", topics=topic, include=details),
        rooms.rooms_participated_by(guest, include=details),
    ):
        assert sorted(reply, key=lambda room: room["id"]) == sorted(full.values(), key=lambda room: room["id"])
    assert {room["id"]: room for room in rooms.list_rooms(host_id=host)} == plain
    assert alpha["id"] not in {room["id"] for room in rooms.rooms_not_participated_by(guest, first=10_000)}
    assert rooms.room_access(host, "alpha", guest) == {"room": plain[alpha["id"]], "participant": True}
    assert rooms.room_access(host, "alpha", new_id()) == {"room": plain[alpha["id"]], "participant": False}
    assert rooms.members(alpha["id"]) == [host, guest]
    assert rooms.participants_of([alpha["id"], beta["id"].upper(), "nope"]) == {
        alpha["id"]: [host, guest], beta["id"].upper(): [host, guest], "nope": []
    }


def test_a_room_without_participants_includes_an_empty_list(rooms, sql):
    host = new_id()
    room = create(rooms, host)
    rooms.leave_room(room["id"], host)
    [reply] = rooms.list_rooms(host_id=host, include=["participant_ids"])
    assert reply["participant_ids"] == [] and reply["participant_count"] == 0


# --- statements built once ------------------------------------------------------------------------


class ExecutedStatements:
    """The statement objects a container's workers hand SQLAlchemy (its outbox relay left out)."""

    def __init__(self, container) -> None:
        self._engine = next(dep for dep in container.dependencies if isinstance(dep, Storage)).engine
        self._relays = [ext for ext in container.subextensions if isinstance(ext, OutboxRelay)]
        self._current: list | None = None
        event.listen(self._engine, "before_execute", self._record)

    def _record(self, conn, statement, multiparams, params, execution_options) -> None:
        if self._current is not None and not any(eventlet.getcurrent() is relay._loop for relay in self._relays):
            self._current.append(statement)

    def close(self) -> None:
        event.remove(self._engine, "before_execute", self._record)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list]:
        self._current = []
        try:
            yield self._current
        finally:
            self._current = None


@pytest.fixture
def executed(rooms_container) -> Iterator[ExecutedStatements]:
    recorder = ExecutedStatements(rooms_container)
    yield recorder
    recorder.close()


def test_each_read_runs_one_statement_built_once(rooms, room_pair, executed):
    host, topic, guest, (alpha, beta) = room_pair
    other_host, other_topic = new_id(), topic_name()
    create(rooms, other_host, "Gamma", other_topic)
    details = ["participant_ids", "topic"]
    reads = {  # each called with two different sets of values
        "get_room": [(alpha["id"],), (beta["id"],)],
        "get_many": [([alpha["id"]], details), ([beta["id"], alpha["id"]], details)],
        "get_room_by_host_slug": [(host, "alpha", details), (other_host, "gamma", details)],
        "list_rooms": [(host, "alp", [topic], 5, 0, details), (other_host, "gam", [other_topic], 7, 1, details)],
        "rooms_participated_by": [(guest, 5, 0, details), (host, 7, 1, details)],
        "rooms_not_participated_by": [(guest, 5, 0, details), (host, 7, 1, details)],
        "room_access": [(host, "alpha", guest), (other_host, "gamma", None)],
        "participants_of": [([alpha["id"]],), ([alpha["id"], beta["id"]],)],
        "members": [(alpha["id"],), (beta["id"],)],
        "is_participant": [(alpha["id"], guest), (beta["id"], host)],
        "list_topics": [(topic[:-1], 1, 5, 0), (other_topic[:-1], 1, 7, 1)],
        "get_topics": [([1],), ([1, 2],)],
    }
    for method, arguments in reads.items():
        statements = []
        for args in arguments:
            with executed.recording() as recorded:
                getattr(rooms, method)(*args)
            assert len(recorded) == 1, (method, recorded)
            statements.append(recorded[0])
        assert statements[0] is statements[1], method


def test_later_times_keep_their_spelling(rooms, sql):
    """A write's reply (spelled by Python) and a read's (spelled by PostgreSQL) agree on a fresh room."""
    room = create(rooms, new_id(), "Now")
    assert rooms.get_room(room["id"]) == room
    created = datetime.fromisoformat(room["created"])
    assert created.utcoffset() == timedelta(0) and room["created"].endswith("+00:00")
