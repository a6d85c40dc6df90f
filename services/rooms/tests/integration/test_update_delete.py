"""updateRoom and deleteRoom (CONTRACT §6.2): NotFound, then PermissionDenied, then the inputs; the
topic is got or created in the room write's transaction (C8, C9)."""

from __future__ import annotations

from datetime import datetime

import pytest

from common.errors import NotFound, PermissionDenied, ValidationFailed
from services.rooms.tests.integration.conftest import create, new_id, topic_name

pytestmark = pytest.mark.integration

LETTERS_ONLY = {"__all__": ["Topic name must consist of letters only."]}


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def topic_count(sql, name: str) -> int:
    return sql("SELECT count(*) FROM rooms.topics WHERE name = :name", name=name)[0][0]


def test_update_description_and_topic(rooms, sql, published):
    host = new_id()
    room = create(rooms, host, "Physics Lab", description="old")
    new_topic = topic_name()
    updated = rooms.update_room(room["id"], host.upper(), {"description": "new", "topic_name": new_topic})

    assert updated["description"] == "new"
    assert updated["topic_id"] != room["topic_id"]
    assert rooms.get_topics([updated["topic_id"]]) == [{"id": updated["topic_id"], "name": new_topic, "room_count": 1}]
    assert rooms.get_topics([room["topic_id"]])[0]["room_count"] == 0  # the old topic stays
    assert (updated["name"], updated["slug"], updated["created"]) == (room["name"], room["slug"], room["created"])
    assert moment(updated["updated"]) > moment(room["updated"])
    assert updated["participant_count"] == 1
    assert rooms.get_room(room["id"]) == updated
    assert published.wait_for("room_updated", id=room["id"]) == [updated]


def test_update_without_topic_keeps_it(rooms):
    host = new_id()
    room = create(rooms, host, description="something")
    kept = rooms.update_room(room["id"], host, {"topic_name": None})  # C8
    assert kept["topic_id"] == room["topic_id"] and kept["description"] == "something"
    assert moment(kept["updated"]) > moment(room["updated"])
    cleared = rooms.update_room(room["id"], host, {"description": None})
    assert (cleared["topic_id"], cleared["description"]) == (room["topic_id"], "")
    assert rooms.update_room(room["id"], host, {})["topic_id"] == room["topic_id"]


def test_update_to_an_existing_topic(rooms):
    host = new_id()
    topic = topic_name()
    other = create(rooms, topic=topic)
    room = create(rooms, host)
    assert rooms.update_room(room["id"], host, {"topic_name": topic})["topic_id"] == other["topic_id"]


def test_update_not_found_comes_first(rooms):
    for room_id in (new_id(), "not-a-uuid", ""):
        with pytest.raises(NotFound) as failed:
            rooms.update_room(room_id, new_id(), {"topic_name": "Bad Topic"})
        assert failed.value.message == "Room not found"


def test_update_by_someone_else_is_denied_before_inputs_are_checked(rooms, sql):
    room = create(rooms)
    new_topic = topic_name()
    for user in (new_id(), "not-a-uuid"):
        with pytest.raises(PermissionDenied) as failed:
            rooms.update_room(room["id"], user, {"topic_name": new_topic, "description": "x" * 501})
        assert failed.value.message == "Permission denied"
    assert topic_count(sql, new_topic) == 0
    assert rooms.get_room(room["id"]) == room


def test_rejected_updates_change_nothing(rooms, sql):
    host = new_id()
    room = create(rooms, host, description="kept")

    with pytest.raises(ValidationFailed) as failed:
        rooms.update_room(room["id"], host, {"description": "changed", "topic_name": "Bad Topic"})
    assert (failed.value.errors, failed.value.raw) == (LETTERS_ONLY, True)

    for topic, errors in (("", {"name": ["This field cannot be blank."]}),
                          ("a" * 201, {"name": ["Ensure this value has at most 200 characters (it has 201)."]})):
        with pytest.raises(ValidationFailed) as failed:
            rooms.update_room(room["id"], host, {"topic_name": topic})
        assert (failed.value.errors, failed.value.raw) == (errors, True)

    new_topic = topic_name()
    with pytest.raises(ValidationFailed) as failed:
        rooms.update_room(room["id"], host, {"description": "x" * 501, "topic_name": new_topic})
    assert (failed.value.errors, failed.value.raw) == (
        {"description": ["Ensure this value has at most 500 characters (it has 501)."]},
        False,
    )
    assert topic_count(sql, new_topic) == 0  # C9: no orphan topic
    assert rooms.get_room(room["id"]) == room


def test_delete_room(rooms, sql, published):
    host = new_id()
    room = create(rooms, host)
    member = new_id()
    rooms.join_room(room["id"], member)

    assert rooms.delete_room(room["id"], host) == {"id": room["id"]}

    with pytest.raises(NotFound):
        rooms.get_room(room["id"])
    assert rooms.participants_of([room["id"]]) == {room["id"]: []}
    assert sql("SELECT count(*) FROM rooms.participants WHERE room_id = :id", id=room["id"])[0][0] == 0
    assert rooms.get_topics([room["topic_id"]])[0]["room_count"] == 0  # the topic stays
    assert published.wait_for("room_deleted", id=room["id"]) == [{"id": room["id"], "host_id": host}]

    with pytest.raises(NotFound) as failed:
        rooms.delete_room(room["id"], host)
    assert failed.value.message == "Room not found"


def test_delete_errors(rooms):
    room = create(rooms)
    with pytest.raises(NotFound):
        rooms.delete_room("not-a-uuid", room["host_id"])
    member = new_id()
    rooms.join_room(room["id"], member)
    with pytest.raises(PermissionDenied) as failed:
        rooms.delete_room(room["id"], member)  # a participant, not the host
    assert failed.value.message == "Permission denied"
    assert rooms.get_room(room["id"])["participant_count"] == 2
