"""createRoom (CONTRACT §6.2): checks in order with the exact strings, slugs with suffixes, topics got
or created in the room's transaction (C9), and the events."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest

from common.errors import NotFound, ValidationFailed
from services.rooms.tests.integration.conftest import create, new_id, topic_name, version

pytestmark = pytest.mark.integration

ROOM_NAME_TAKEN = {"__all__": ["You already have a room with this name."]}
LETTERS_ONLY = {"__all__": ["Topic name must consist of letters only."]}


def failure(call, *args):
    with pytest.raises(ValidationFailed) as failed:
        call(*args)
    return failed.value.errors, failed.value.raw


def topic_count(sql, name: str) -> int:
    return sql("SELECT count(*) FROM rooms.topics WHERE name = :name", name=name)[0][0]


def test_create_returns_the_room_with_the_host_as_participant(rooms, published):
    host = uuid.uuid4()
    topic = topic_name()
    room = rooms.create_room(str(host).upper(), "  My   First  Room ", topic, "A place to study")

    assert set(room) == {
        "id", "name", "slug", "host_id", "topic_id", "description", "created", "updated", "participant_count",
    }
    assert room["id"] == str(uuid.UUID(room["id"]))  # lowercase, hyphenated
    assert room["host_id"] == str(host)
    assert (room["name"], room["slug"]) == ("My First Room", "my-first-room")
    assert room["description"] == "A place to study"
    assert room["participant_count"] == 1
    assert room["created"] == room["updated"]
    assert re.search(r"\+00:00$", room["created"]) and datetime.fromisoformat(room["created"]).utcoffset().seconds == 0
    assert isinstance(room["topic_id"], int)
    assert rooms.get_topics([room["topic_id"]]) == [{"id": room["topic_id"], "name": topic, "room_count": 1}]
    assert rooms.members(room["id"]) == [str(host)]
    assert rooms.get_room(room["id"]) == room

    assert published.wait_for("room_created", id=room["id"]) == [room]
    [joined] = published.wait_for("participant_joined", room_id=room["id"])
    assert joined == {"room_id": room["id"], "user_id": str(host), "membership_version": version(joined)}


def test_description_may_be_empty(rooms):
    assert create(rooms, description="")["description"] == ""


def test_malformed_host_id(rooms):
    with pytest.raises(NotFound) as failed:
        rooms.create_room("not-a-uuid", "Room", topic_name(), "")
    assert failed.value.message == "User not found"


# --- the topic name comes first, as a raw error ----------------------------------------------------


@pytest.mark.parametrize("topic", ["Py thon", "Python3", "Pythön", "C++", " Go"])
def test_topic_name_must_be_letters_only(rooms, sql, topic):
    # The room name is bad too: the topic is checked first.
    assert failure(rooms.create_room, new_id(), "Bad-Name", topic, "") == (LETTERS_ONLY, True)
    assert topic_count(sql, topic) == 0


def test_blank_and_long_topic_names(rooms):
    assert failure(rooms.create_room, new_id(), "Room", "", "") == ({"name": ["This field cannot be blank."]}, True)
    assert failure(rooms.create_room, new_id(), "Room", "a" * 201, "") == (
        {"name": ["Ensure this value has at most 200 characters (it has 201)."]},
        True,
    )


# --- then the form: name and description -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "messages"),
    [
        ("", ["This field is required."]),
        ("   ", ["This field is required."]),
        ("Tab\tRoom", ["Room name can only contain letters and numbers."]),
        ("Dash-Room", ["Room name can only contain letters and numbers."]),
        ("Room!", ["Room name can only contain letters and numbers."]),
        ("Café", ["Room name can only contain letters and numbers."]),
        ("a" * 201, ["Ensure this value has at most 200 characters (it has 201)."]),
    ],
)
def test_room_name_form_errors(rooms, sql, name, messages):
    topic = topic_name()
    assert failure(rooms.create_room, new_id(), name, topic, "") == ({"name": messages}, False)
    assert topic_count(sql, topic) == 0  # C9: nothing persists


def test_description_over_500(rooms):
    assert failure(rooms.create_room, new_id(), "Room", topic_name(), "x" * 501) == (
        {"description": ["Ensure this value has at most 500 characters (it has 501)."]},
        False,
    )
    assert create(rooms, description="x" * 500)["description"] == "x" * 500


# --- then (host, name) uniqueness ------------------------------------------------------------------


def test_same_host_same_name_is_a_raw_error_and_leaves_no_topic(rooms, sql):
    host = new_id()
    create(rooms, host, "Algebra Club")
    new_topic = topic_name()
    assert failure(rooms.create_room, host, "  Algebra   Club ", new_topic, "") == (ROOM_NAME_TAKEN, True)
    assert topic_count(sql, new_topic) == 0  # C9: no orphan topic
    # The form is checked before uniqueness.
    assert failure(rooms.create_room, host, "Algebra Club", new_topic, "x" * 501)[1] is False


def test_other_hosts_may_reuse_name_and_slug(rooms):
    first, second = create(rooms, new_id(), "Chess"), create(rooms, new_id(), "Chess")
    assert first["slug"] == second["slug"] == "chess"


def test_names_that_slugify_alike_get_the_first_free_suffix(rooms):
    host = new_id()
    assert create(rooms, host, "My First Room")["slug"] == "my-first-room"
    second = create(rooms, host, "my first room")
    assert second["slug"] == "my-first-room-2"
    assert create(rooms, host, "MY FIRST ROOM")["slug"] == "my-first-room-3"
    rooms.delete_room(second["id"], host)
    assert create(rooms, host, "My first Room")["slug"] == "my-first-room-2"
    # A name whose own slug is a suffixed one is just another taken slug.
    assert create(rooms, host, "My First Room 4")["slug"] == "my-first-room-4"
    assert create(rooms, host, "my FIRST room")["slug"] == "my-first-room-5"


def test_suffixed_slugs_stay_within_200_characters(rooms):
    host = new_id()
    assert create(rooms, host, "a" * 200)["slug"] == "a" * 200
    assert create(rooms, host, "A" * 200)["slug"] == "a" * 198 + "-2"
    third = create(rooms, host, "aA" * 100)
    assert third["slug"] == "a" * 198 + "-3" and len(third["slug"]) == 200


# --- topics ----------------------------------------------------------------------------------------


def test_topics_are_created_once_and_matched_exactly(rooms):
    topic = topic_name("Python")
    first = create(rooms, topic=topic)
    second = create(rooms, topic=topic)
    other_case = create(rooms, topic=topic.lower())
    assert first["topic_id"] == second["topic_id"] != other_case["topic_id"]
    assert rooms.get_topics([first["topic_id"], other_case["topic_id"]]) == [
        {"id": first["topic_id"], "name": topic, "room_count": 2},
        {"id": other_case["topic_id"], "name": topic.lower(), "room_count": 1},
    ]
