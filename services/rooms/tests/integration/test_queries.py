"""Reads (CONTRACT §5): lookups, filters, orders with their tie-breakers (C10, C11), paging and the cap."""

from __future__ import annotations

import pytest

from common.errors import NotFound, ValidationFailed
from services.rooms.tests.integration.conftest import create, new_id, topic_name

pytestmark = pytest.mark.integration

NOT_NEGATIVE = ["Ensure this value is greater than or equal to 0."]


def ids(rooms_list):
    return [room["id"] for room in rooms_list]


# --- lookups ---------------------------------------------------------------------------------------


def test_get_room_and_get_many(rooms):
    first, second = create(rooms), create(rooms)
    assert rooms.get_room(first["id"].upper()) == first
    for room_id in (new_id(), "nope", None):
        with pytest.raises(NotFound) as failed:
            rooms.get_room(room_id)
        assert failed.value.message == "Room not found"
    assert rooms.get_many([second["id"], new_id(), "nope", first["id"], second["id"]]) == [
        second, None, None, first, second,
    ]
    assert rooms.get_many([]) == []


def test_get_room_by_host_slug(rooms):
    host = new_id()
    room = create(rooms, host, "Linear Algebra")
    assert rooms.get_room_by_host_slug(host.upper(), "linear-algebra") == room
    for host_id, slug in ((new_id(), "linear-algebra"), (host, "Linear-Algebra"), (host, "linear"),
                          ("nope", "linear-algebra"), (host, "linear\x00"), (host, None)):
        with pytest.raises(NotFound) as failed:
            rooms.get_room_by_host_slug(host_id, slug)
        assert failed.value.message == "Room not found"


# --- filters ---------------------------------------------------------------------------------------


def test_list_rooms_filters(rooms):
    host = new_id()
    topic, other_topic = topic_name("Maths"), topic_name("Art")
    algebra = create(rooms, host, "Algebra", topic, "groups and RINGS")
    rings = create(rooms, host, "Ring Theory", other_topic, "")
    drawing = create(rooms, host, "Drawing", other_topic, "pencils")
    elsewhere = create(rooms, new_id(), "Rings Elsewhere", topic, "")

    everything = {algebra["id"], rings["id"], drawing["id"]}
    assert set(ids(rooms.list_rooms(host_id=host))) == everything
    assert set(ids(rooms.list_rooms(host_id=host.upper(), search="", topics=[]))) == everything
    assert set(ids(rooms.list_rooms(host_id=host, search=None, topics=None))) == everything
    assert set(ids(rooms.list_rooms(host_id=host, search="ring"))) == {algebra["id"], rings["id"]}
    assert ids(rooms.list_rooms(host_id=host, search="PENCIL")) == [drawing["id"]]
    assert set(ids(rooms.list_rooms(host_id=host, topics=[other_topic]))) == {rings["id"], drawing["id"]}
    assert ids(rooms.list_rooms(host_id=host, topics=other_topic, search="ring")) == [rings["id"]]
    assert set(ids(rooms.list_rooms(topics=[topic]))) == {algebra["id"], elsewhere["id"]}
    assert set(ids(rooms.list_rooms(topics=[topic, other_topic], search="ring"))) == {
        algebra["id"], rings["id"], elsewhere["id"],
    }
    assert rooms.list_rooms(topics=[topic.lower()]) == []  # case-sensitive
    assert rooms.list_rooms(topics=[""]) == []
    assert rooms.list_rooms(topics=["\x00"]) == []
    assert rooms.list_rooms(host_id=new_id()) == []
    assert rooms.list_rooms(host_id="not-a-uuid") == []
    assert rooms.list_rooms(host_id=host, search="\x00") == []


def test_search_escapes_like_wildcards(rooms):
    host = new_id()
    percent = create(rooms, host, "Percent", description="100% sure")
    create(rooms, host, "Zeros", description="1000 sure")
    underscore = create(rooms, host, "Underscore", description="snake_case")
    create(rooms, host, "Camel", description="snakeXcase")
    assert ids(rooms.list_rooms(host_id=host, search="0%")) == [percent["id"]]
    assert ids(rooms.list_rooms(host_id=host, search="e_c")) == [underscore["id"]]
    assert rooms.list_rooms(host_id=host, search="\\") == []


# --- orders ----------------------------------------------------------------------------------------


def test_participant_count_beats_recency(rooms):
    """C10: an older room with 4 participants sorts before a newer one with 1, in every list."""
    topic = topic_name()
    user = new_id()
    busy = create(rooms, topic=topic, name="Busy")
    for member in (user, new_id(), new_id()):
        rooms.join_room(busy["id"], member)
    quiet = create(rooms, topic=topic, name="Quiet")
    rooms.leave_room(quiet["id"], quiet["host_id"])
    rooms.join_room(quiet["id"], user)
    assert [room["participant_count"] for room in rooms.get_many([busy["id"], quiet["id"]])] == [4, 1]

    assert ids(rooms.list_rooms(topics=[topic])) == [busy["id"], quiet["id"]]
    assert ids(rooms.rooms_participated_by(user)) == [busy["id"], quiet["id"]]
    stranger_sees = [room_id for room_id in ids(rooms.rooms_not_participated_by(new_id()))
                     if room_id in (busy["id"], quiet["id"])]
    assert stranger_sees == [busy["id"], quiet["id"]]


def test_ties_break_on_newest_then_id(rooms, sql):
    """C11: same count, newest first; same count and same creation time, id ascending."""
    topic = topic_name()
    rooms_made = [create(rooms, topic=topic, name=f"Room {number}") for number in range(4)]
    newest_first = list(reversed(ids(rooms_made)))
    assert ids(rooms.list_rooms(topics=[topic])) == newest_first

    same = ids(rooms_made[:3])
    sql("UPDATE rooms.rooms SET created = '2024-01-01T00:00:00+00' WHERE id = ANY(CAST(:ids AS uuid[]))", ids=same)
    assert ids(rooms.list_rooms(topics=[topic])) == [rooms_made[3]["id"]] + sorted(same)
    assert ids(rooms.list_rooms(topics=[topic])) == ids(rooms.list_rooms(topics=[topic]))  # deterministic


def test_rooms_participated_and_not(rooms):
    user = new_id()
    hosted = create(rooms, user)
    joined = create(rooms)
    rooms.join_room(joined["id"], user)
    other = create(rooms)
    assert set(ids(rooms.rooms_participated_by(user.upper()))) == {hosted["id"], joined["id"]}
    not_in = set(ids(rooms.rooms_not_participated_by(user)))
    assert other["id"] in not_in and not not_in & {hosted["id"], joined["id"]}
    assert rooms.rooms_participated_by(new_id()) == []
    assert rooms.rooms_participated_by("nope") == []
    assert other["id"] in ids(rooms.rooms_not_participated_by("nope"))


# --- paging ----------------------------------------------------------------------------------------


def test_first_and_offset(rooms):
    host = new_id()
    made = [create(rooms, host, f"Room {number}") for number in range(5)]
    order = list(reversed(ids(made)))
    assert ids(rooms.list_rooms(host_id=host, first=2)) == order[:2]
    assert ids(rooms.list_rooms(host_id=host, first=2, offset=2)) == order[2:4]
    assert ids(rooms.list_rooms(host_id=host, offset=4)) == order[4:]
    assert rooms.list_rooms(host_id=host, first=0) == []
    assert ids(rooms.rooms_participated_by(host, first=1, offset=1)) == order[1:2]
    assert len(rooms.rooms_not_participated_by(host, first=3)) == 3

    with pytest.raises(ValidationFailed) as failed:
        rooms.list_rooms(host_id=host, first=-1, offset=-1)
    assert (failed.value.errors, failed.value.raw) == ({"first": NOT_NEGATIVE, "offset": NOT_NEGATIVE}, False)
    with pytest.raises(ValidationFailed):
        rooms.list_topics(offset=-1)


def test_lists_stop_at_the_configured_cap(start_rooms, rpc_proxy):
    start_rooms(ROOMS_LIST_CAP=2)
    with rpc_proxy() as capped:
        host = new_id()
        for number in range(3):
            create(capped, host, f"Room {number}")
        assert len(capped.list_rooms(host_id=host)) == 2
        assert len(capped.list_rooms(host_id=host, first=50)) == 2
        assert len(capped.rooms_participated_by(host)) == 2
        assert len(capped.list_topics()) == 2


# --- topics ----------------------------------------------------------------------------------------


def test_list_topics(rooms):
    token = topic_name("")
    names = {key: key + token for key in ("c", "A", "b", "B", "d")}
    for key, count in (("c", 2), ("A", 1), ("b", 1), ("B", 1), ("d", 1)):
        for _ in range(count):
            room = create(rooms, topic=names[key])
    rooms.delete_room(room["id"], room["host_id"])  # "d" keeps its topic with no room

    listed = rooms.list_topics(search=token)
    assert [(topic["name"], topic["room_count"]) for topic in listed] == [
        (names["c"], 2), (names["A"], 1), (names["B"], 1), (names["b"], 1), (names["d"], 0),
    ]
    assert all(isinstance(topic["id"], int) and set(topic) == {"id", "name", "room_count"} for topic in listed)
    assert rooms.list_topics(search=token.upper()) == listed
    assert rooms.list_topics(search=token, min_rooms=0) == listed
    assert rooms.list_topics(search=token, min_rooms=None) == listed
    assert [topic["name"] for topic in rooms.list_topics(search=token, min_rooms=2)] == [names["c"]]
    assert rooms.list_topics(search=token, min_rooms=3) == []
    assert rooms.list_topics(search=token, first=2, offset=1) == listed[1:3]
    assert rooms.list_topics(search="%" + token) == []
    assert rooms.list_topics(search="\x00") == []
    assert names["d"] in [topic["name"] for topic in rooms.list_topics(search="")]


def test_get_topics(rooms):
    room = create(rooms)
    topic = rooms.get_topics([room["topic_id"]])[0]
    assert rooms.get_topics([str(room["topic_id"]), 10**15, "x", None, room["topic_id"]]) == [
        topic, None, None, None, topic,
    ]
    assert rooms.get_topics([]) == []
