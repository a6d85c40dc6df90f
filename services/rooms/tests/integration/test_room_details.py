"""The room reads' ``include``: each room also carries its participant ids and its topic, read in the
read's own single statement, so the gateway needs no ``participants_of`` or ``get_topics`` after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nameko.exceptions import RemoteError
from sqlalchemy import event

from common.db import Storage
from services.rooms.tests.integration.conftest import create, new_id, topic_name

pytestmark = pytest.mark.integration

BOTH = ["participant_ids", "topic"]


@pytest.fixture
def statements(rooms_container) -> Iterator[list[str]]:
    """The SQL statements the rooms service runs while the test acts (the outbox relay's own polling
    left out)."""
    (storage,) = [dep for dep in rooms_container.dependencies if isinstance(dep, Storage)]
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "outbox" not in statement:
            seen.append(statement)

    event.listen(storage.engine, "before_cursor_execute", record)
    yield seen
    event.remove(storage.engine, "before_cursor_execute", record)


@pytest.fixture
def crowded(rooms) -> dict:
    """Three rooms of one host under one new topic, with 1, 3 and 2 participants (the host included)."""
    host, topic = new_id(), topic_name()
    made = [create(rooms, host, f"Room {number}", topic) for number in range(3)]
    members = {made[0]["id"]: [host], made[1]["id"]: [host, new_id(), new_id()], made[2]["id"]: [host, new_id()]}
    for room_id, users in members.items():
        for user in users[1:]:
            rooms.join_room(room_id, user)
    return {"host": host, "topic": topic, "topic_id": made[0]["topic_id"], "rooms": made, "members": members}


def details(room: dict) -> tuple:
    return room["participant_ids"], room["topic"]


def test_list_rooms_include_in_one_statement(rooms, crowded, statements):
    members, topic = crowded["members"], {"id": crowded["topic_id"], "name": crowded["topic"]}
    plain = rooms.list_rooms(topics=[crowded["topic"]])
    statements.clear()
    listed = rooms.list_rooms(topics=[crowded["topic"]], include=BOTH)
    assert len(statements) == 1, statements
    # The same rooms in the same order, each with its participants in joining order and its topic.
    assert [{k: v for k, v in room.items() if k not in BOTH} for room in listed] == plain
    assert [details(room) for room in listed] == [(members[room["id"]], topic) for room in plain]
    assert [len(room["participant_ids"]) for room in listed] == [3, 2, 1]


def test_every_room_read_takes_include(rooms, crowded):
    host, members = crowded["host"], crowded["members"]
    topic = {"id": crowded["topic_id"], "name": crowded["topic"]}
    first, second, _ = crowded["rooms"]
    found = rooms.get_room_by_host_slug(host, first["slug"], include=BOTH)
    assert details(found) == (members[first["id"]], topic)
    assert rooms.get_room_by_host_slug(host, first["slug"], include=["topic"])["topic"] == topic
    assert "topic" not in rooms.get_room_by_host_slug(host, first["slug"], include=["participant_ids"])
    many = rooms.get_many([second["id"], new_id(), first["id"]], include=BOTH)
    assert many[1] is None
    assert [details(room) for room in (many[0], many[2])] == [(members[second["id"]], topic),
                                                              (members[first["id"]], topic)]
    for listed in (rooms.rooms_participated_by(host, include=BOTH),
                   rooms.rooms_not_participated_by(new_id(), include=BOTH),
                   rooms.rooms_not_participated_by("nope", include=BOTH)):
        mine = [room for room in listed if room["id"] in members]
        assert [details(room) for room in mine] == [(members[room["id"]], topic) for room in mine]
    (joined,) = rooms.rooms_participated_by(members[second["id"]][1], include=["participant_ids"])
    assert joined["participant_ids"] == members[second["id"]] and "topic" not in joined


def test_a_room_without_participants_has_an_empty_list(rooms):
    room = create(rooms)
    rooms.leave_room(room["id"], room["host_id"])
    (found,) = rooms.get_many([room["id"]], include=["participant_ids"])
    assert found["participant_ids"] == []


def test_without_include_the_rooms_are_as_before(rooms, crowded):
    """Backwards compatible: no ``include`` (or an empty one) adds nothing."""
    first = crowded["rooms"][0]
    for include in ({}, {"include": None}, {"include": []}):
        assert set(rooms.get_many([first["id"]], **include)[0]) == set(first)
        assert set(rooms.list_rooms(topics=[crowded["topic"]], **include)[0]) == set(first)


def test_an_unknown_include_is_refused(rooms, crowded):
    with pytest.raises(RemoteError) as refused:
        rooms.list_rooms(include=["participants"])
    assert refused.value.exc_type == "ValueError"
