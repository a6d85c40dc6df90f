"""``room_access``: a chat handshake's room and participation checks (CONTRACT §10.2, 3 and 4) in one
call and one query."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from common.errors import NotFound
from services.rooms.tests.integration.conftest import create, new_id

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements every engine of this process sends meanwhile, the outbox relay's polling
    left out (it runs on its own schedule; its lock is taken by the outbox table's name)."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if "outbox" not in statement and "outbox" not in repr(parameters):
            sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def test_the_room_and_whether_the_user_participates(rooms):
    host, member, outsider = new_id(), new_id(), new_id()
    room = create(rooms, host, "Linear Algebra")
    joined = rooms.join_room(room["id"], member)

    assert rooms.room_access(host, "linear-algebra", member) == {"room": joined, "participant": True}
    assert rooms.room_access(host.upper(), "linear-algebra", member.upper()) == {"room": joined, "participant": True}
    assert rooms.room_access(host, "linear-algebra", host)["participant"] is True
    for user_id in (outsider, "nope", None):
        assert rooms.room_access(host, "linear-algebra", user_id) == {"room": joined, "participant": False}

    rooms.leave_room(room["id"], host)  # the host is not exempt
    assert rooms.room_access(host, "linear-algebra", host)["participant"] is False


def test_no_such_room(rooms):
    host, member = new_id(), new_id()
    room = create(rooms, host, "Linear Algebra")
    rooms.join_room(room["id"], member)
    for host_id, slug in ((new_id(), "linear-algebra"), (host, "Linear-Algebra"), (host, "linear"),
                          ("nope", "linear-algebra"), (host, "linear\x00"), (host, None)):
        with pytest.raises(NotFound) as failed:
            rooms.room_access(host_id, slug, member)
        assert failed.value.message == "Room not found"

    rooms.delete_room(room["id"], host)
    with pytest.raises(NotFound):
        rooms.room_access(host, "linear-algebra", member)


def test_one_statement_where_the_two_reads_took_two(rooms):
    host, member = new_id(), new_id()
    room = create(rooms, host, "Linear Algebra")
    rooms.join_room(room["id"], member)

    with statements() as access:
        assert rooms.room_access(host, "linear-algebra", member)["participant"] is True
    with statements() as separate:
        found = rooms.get_room_by_host_slug(host, "linear-algebra")
        assert rooms.is_participant(found["id"], member) is True

    assert (len(access), len(separate)) == (1, 2), (access, separate)
