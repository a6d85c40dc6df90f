"""joinRoom and leaveRoom (CONTRACT §6.2, B3): idempotent, counted, ``updated`` untouched; and the
membership reads other services use."""

from __future__ import annotations

import pytest

from common.errors import NotFound
from services.rooms.tests.integration.conftest import create, new_id, version

pytestmark = pytest.mark.integration


def test_join_and_leave(rooms, published):
    host = new_id()
    room = create(rooms, host)
    member = new_id()

    joined = rooms.join_room(room["id"].upper(), member.upper())
    assert joined["participant_count"] == 2
    assert joined["updated"] == room["updated"]
    assert rooms.is_participant(room["id"], member) is True
    assert rooms.members(room["id"]) == [host, member]
    [joined_event] = published.wait_for("participant_joined", room_id=room["id"], user_id=member)
    assert joined_event == {"room_id": room["id"], "user_id": member, "membership_version": version(joined_event)}

    left = rooms.leave_room(room["id"], member)
    assert left["participant_count"] == 1
    assert left["updated"] == room["updated"]
    assert rooms.is_participant(room["id"], member) is False
    [left_event] = published.wait_for("participant_left", room_id=room["id"], user_id=member)
    assert left_event == {"room_id": room["id"], "user_id": member, "membership_version": version(left_event)}
    assert version(left_event) > version(joined_event)


def test_each_change_of_a_membership_has_a_higher_version(rooms, published, sql):
    """A consumer ordering one membership's events by version sees them in the order they happened,
    whatever order they arrive in; a join's version is stored with the participant."""
    room = create(rooms)
    member = new_id()
    for _ in range(2):
        rooms.join_room(room["id"], member)
        rooms.leave_room(room["id"], member)
    rooms.join_room(room["id"], member)
    joins = published.wait_for("participant_joined", count=3, room_id=room["id"], user_id=member)
    leaves = published.wait_for("participant_left", count=2, room_id=room["id"], user_id=member)
    versions = [version(event) for pair in zip(joins, [*leaves, None]) for event in pair if event]
    assert versions == sorted(versions) and len(set(versions)) == 5
    stored = "SELECT version FROM rooms.participants WHERE room_id = :room AND user_id = :user"
    assert sql(stored, room=room["id"], user=member) == [(versions[-1],)]
    [host_joined] = published.wait_for("participant_joined", room_id=room["id"], user_id=room["host_id"])
    assert version(host_joined) < versions[0]


def test_join_and_leave_are_idempotent(rooms, published):
    host = new_id()
    room = create(rooms, host)
    member = new_id()
    assert rooms.join_room(room["id"], host)["participant_count"] == 1  # the host is already in
    rooms.join_room(room["id"], member)
    assert rooms.join_room(room["id"], member)["participant_count"] == 2
    rooms.leave_room(room["id"], member)
    assert rooms.leave_room(room["id"], member)["participant_count"] == 1
    assert rooms.leave_room(room["id"], new_id())["participant_count"] == 1

    # A marker event: everything emitted before it has arrived once it has.
    rooms.join_room(room["id"], marker := new_id())
    published.wait_for("participant_joined", room_id=room["id"], user_id=marker)
    assert len(published.matching("participant_joined", room_id=room["id"])) == 3  # host, member, marker
    assert len(published.matching("participant_left", room_id=room["id"])) == 1


def test_the_host_may_leave(rooms):
    host = new_id()
    room = create(rooms, host)
    left = rooms.leave_room(room["id"], host)
    assert left["participant_count"] == 0 and left["host_id"] == host
    assert rooms.members(room["id"]) == []
    assert rooms.get_room(room["id"])["participant_count"] == 0
    assert rooms.join_room(room["id"], host)["participant_count"] == 1


def test_unknown_rooms(rooms):
    for call in (rooms.join_room, rooms.leave_room):
        for room_id in (new_id(), "not-a-uuid", None):
            with pytest.raises(NotFound) as failed:
                call(room_id, new_id())
            assert failed.value.message == "Room not found"


def test_malformed_user_id(rooms):
    room = create(rooms)
    with pytest.raises(NotFound) as failed:
        rooms.join_room(room["id"], "not-a-uuid")
    assert failed.value.message == "User not found"


def test_membership_reads(rooms):
    first, second = create(rooms), create(rooms)
    member = new_id()
    rooms.join_room(second["id"], member)
    unknown = new_id()
    assert rooms.participants_of([first["id"], second["id"].upper(), unknown, "nope"]) == {
        first["id"]: [first["host_id"]],
        second["id"].upper(): [second["host_id"], member],
        unknown: [],
        "nope": [],
    }
    assert rooms.participants_of([]) == {}
    assert rooms.members(unknown) == [] and rooms.members("nope") == []
    assert rooms.is_participant(first["id"], member) is False
    assert rooms.is_participant("nope", member) is False
    assert rooms.is_participant(second["id"], "nope") is False
