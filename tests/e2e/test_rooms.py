"""The rooms context through the gateway: creating, editing, deleting, joining and leaving rooms, the room
queries and their errors (CONTRACT §§3, 5, 6.2, 7, 8.4, 11, 12.1, 12.9, 12.10; A10, B3, C8, C9).

Lists, orders, paging, caps, topics, the RPC budget, races and the deleteAccount cascade are in
``test_rooms_lists.py``. The stack is shared by the whole run, so every test works on rooms and topics of
its own (unique names, descriptions and topic names) instead of assuming an empty database.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import (
    CREATE,
    JOIN,
    LEAVE,
    LOGIN_REQUIRED,
    NOT_FOUND,
    PERMISSION_DENIED,
    ROOM_FIELDS,
    create,
    create_room,
    data,
    error_of,
    failure,
    invalid,
    join,
    leave,
    letters,
    moment,
    public,
    raw,
    unique,
)

# §11 "room list", as the reference web client selects it (Apollo adds __typename).
ROOM_LIST = "id name slug description created topic { name __typename } host { username __typename } __typename"

UPDATE = f"""mutation($id: UUID!, $d: String, $t: String) {{
  updateRoom(roomId: $id, description: $d, topicName: $t) {{ room {{ {ROOM_FIELDS} }} }} }}"""
UPDATE_KEEPING_DESCRIPTION = f"""mutation($id: UUID!, $t: String) {{
  updateRoom(roomId: $id, topicName: $t) {{ room {{ {ROOM_FIELDS} }} }} }}"""
DELETE = "mutation($id: UUID!) { deleteRoom(roomId: $id) { success } }"
ROOM = f"query($h: String!, $r: String!) {{ room(hostSlug: $h, roomSlug: $r) {{ {ROOM_FIELDS} }} }}"
ROOMS = f"""query($h: String, $s: String, $t: [String], $f: Int, $o: Int) {{
  rooms(hostSlug: $h, search: $s, topic: $t, first: $f, offset: $o) {{ {ROOM_FIELDS} }} }}"""
TOPICS = """query($s: String, $m: Int, $f: Int, $o: Int) {
  topics(search: $s, minRooms: $m, first: $f, offset: $o) { id name } }"""
PARTICIPATED = f"""query($u: String!, $f: Int, $o: Int) {{
  roomsParticipatedByUser(userSlug: $u, first: $f, offset: $o) {{ {ROOM_FIELDS} }} }}"""
NOT_PARTICIPATED = f"""query($u: String!, $f: Int, $o: Int) {{
  roomsNotParticipatedByUser(userSlug: $u, first: $f, offset: $o) {{ {ROOM_FIELDS} }} }}"""


def rooms(api, **variables: Any) -> list[dict[str, Any]]:
    """``rooms`` with the given filters (``h``, ``s``, ``t``, ``f``, ``o``)."""
    return data(api.gql(ROOMS, variables), "rooms")


def topic_names(api, **variables: Any) -> list[str]:
    return [topic["name"] for topic in data(api.gql(TOPICS, variables), "topics")]


# --- createRoom -----------------------------------------------------------------------------------


def test_create_room_with_a_new_topic(api):
    """§12.9, A10: the caller hosts and participates; the topic is created on the fly."""
    user = api.new_user()
    topic = letters("NewTopic")
    assert topic_names(api, s=topic) == []
    room = create_room(api, user, name="New Room", topic=topic, description="")
    assert room["name"] == "New Room" and room["slug"] == "new-room" and room["description"] == ""
    assert room["host"] == public(user)
    assert room["participants"] == [public(user)]
    assert room["topic"]["name"] == topic and room["topic"]["id"].isdigit()
    assert room["created"].endswith("+00:00") and room["updated"].endswith("+00:00")
    assert room["id"] == str(uuid.UUID(room["id"]))
    assert data(api.gql(TOPICS, {"s": topic}), "topics") == [room["topic"]]
    assert data(api.gql(ROOM, {"h": user["username"], "r": "new-room"}), "room") == room
    # The literal names of the acceptance test work too (the topic may already exist).
    other = api.new_user()
    created = create_room(api, other, name="New Room", topic="NewTopic")
    assert (created["host"]["username"], created["topic"]["name"]) == (other["username"], "NewTopic")


def test_create_room_reuses_an_existing_topic_by_exact_name(api):
    user = api.new_user()
    topic = letters("Exact")
    first = create_room(api, user, topic=topic)
    second = create_room(api, user, topic=topic)
    third = create_room(api, user, topic=topic.lower())
    assert first["topic"] == second["topic"]
    assert third["topic"]["name"] == topic.lower() and third["topic"]["id"] != first["topic"]["id"]
    assert sorted(topic_names(api, s=topic)) == sorted([topic, topic.lower()])


@pytest.mark.parametrize(
    "topic, message",
    [
        ("Not Letters", "{'__all__': ['Topic name must consist of letters only.']}"),
        ("Pyth0n", "{'__all__': ['Topic name must consist of letters only.']}"),
        ("Café", "{'__all__': ['Topic name must consist of letters only.']}"),
        ("C++", "{'__all__': ['Topic name must consist of letters only.']}"),
        ("", "{'name': ['This field cannot be blank.']}"),
        ("A" * 201, "{'name': ['Ensure this value has at most 200 characters (it has 201).']}"),
    ],
)
def test_create_room_topic_errors_are_raw(api, topic, message):
    """§6.2 step 2, §7.3: checked first (before the name), raw, BAD_USER_INPUT, no extensions.errors."""
    user = api.new_user()
    tag = unique("d")
    body = create(api, user, name="bad-name!", topic=topic, description=tag)
    assert failure(body, "createRoom") == raw(message)
    assert rooms(api, s=tag) == []


@pytest.mark.parametrize(
    "name, description, errors",
    [
        ("", "", {"name": ["This field is required."]}),
        ("   ", "", {"name": ["This field is required."]}),
        ("my-room", "", {"name": ["Room name can only contain letters and numbers."]}),
        ("Hello!", "", {"name": ["Room name can only contain letters and numbers."]}),
        ("tab\there", "", {"name": ["Room name can only contain letters and numbers."]}),
        ("Café", "", {"name": ["Room name can only contain letters and numbers."]}),
        ("a" * 201, "", {"name": ["Ensure this value has at most 200 characters (it has 201)."]}),
        ("Fine", "d" * 501, {"description": ["Ensure this value has at most 500 characters (it has 501)."]}),
        ("x!", "d" * 501, {"name": ["Room name can only contain letters and numbers."],
                           "description": ["Ensure this value has at most 500 characters (it has 501)."]}),
    ],
)
def test_create_room_form_errors_leave_no_topic(api, name, description, errors):
    """§8.4 form errors; C9: the new topic of a rejected create does not persist."""
    user = api.new_user()
    topic = letters("Orphan")
    assert failure(create(api, user, name=name, topic=topic, description=description), "createRoom") == invalid(errors)
    assert topic_names(api, s=topic) == []


def test_room_names_are_normalised_unique_per_host_and_slugs_suffixed(api):
    """§6.2 step 4, §8.4: inner whitespace collapses; (host, name) is unique (raw error, and no orphan
    topic, C9); a slug collision gets -2, -3; other hosts reuse names and slugs freely."""
    host, other = api.new_user(), api.new_user()
    first = create_room(api, host, name="  My   First  Room ", description="x" * 500)
    assert (first["name"], first["slug"]) == ("My First Room", "my-first-room")
    assert len(first["description"]) == 500
    topic = letters("Dup")
    body = create(api, host, name="My First Room", topic=topic)
    assert failure(body, "createRoom") == raw("{'__all__': ['You already have a room with this name.']}")
    body = create(api, host, name=" My First   Room", topic=topic)
    assert failure(body, "createRoom") == raw("{'__all__': ['You already have a room with this name.']}")
    assert topic_names(api, s=topic) == []
    assert create_room(api, host, name="my first room")["slug"] == "my-first-room-2"
    assert create_room(api, host, name="MY FIRST ROOM")["slug"] == "my-first-room-3"
    elsewhere = create_room(api, other, name="My First Room")
    assert (elsewhere["name"], elsewhere["slug"]) == ("My First Room", "my-first-room")
    assert data(api.gql(ROOM, {"h": host["username"], "r": "my-first-room-2"}), "room")["name"] == "my first room"


def test_description_is_required_by_the_schema_but_may_be_empty(api):
    user = api.new_user()
    response = api.post('mutation { createRoom(name: "X", topicName: "Y") { room { id } } }', token=user["token"])
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == (
        "Field 'createRoom' argument 'description' of type 'String!' is required, but it was not provided."
    )


# --- login required and not found ------------------------------------------------------------------


def test_room_mutations_require_login_first(api):
    """§4.1: checked before anything else, even before the arguments' validity or the room's existence."""
    room_id = str(uuid.uuid4())
    for field, query, variables in [
        ("createRoom", CREATE, {"n": "bad!", "t": "1", "d": ""}),
        ("updateRoom", UPDATE, {"id": room_id, "t": "1"}),
        ("deleteRoom", DELETE, {"id": room_id}),
        ("joinRoom", JOIN, {"id": room_id}),
        ("leaveRoom", LEAVE, {"id": room_id}),
    ]:
        body = api.gql(query, variables)
        assert failure(body, field) == {"message": LOGIN_REQUIRED, "extensions": {"code": "UNAUTHENTICATED"}}


def test_unknown_rooms_are_not_found(api):
    user = api.new_user()
    room_id = str(uuid.uuid4())
    for field, query, variables in [
        ("updateRoom", UPDATE, {"id": room_id, "d": "x"}),
        ("deleteRoom", DELETE, {"id": room_id}),
        ("joinRoom", JOIN, {"id": room_id}),
        ("leaveRoom", LEAVE, {"id": room_id}),
    ]:
        assert failure(api.gql(query, variables, token=user["token"]), field) == NOT_FOUND


def test_room_ids_accept_every_uuid_form(api):
    """§2.3: any form uuid.UUID accepts; output ids are lowercase."""
    host, guest = api.new_user(), api.new_user()
    room = create_room(api, host)
    for form in (room["id"].upper(), room["id"].replace("-", ""), "{" + room["id"] + "}", "urn:uuid:" + room["id"]):
        assert data(api.gql(JOIN, {"id": form}, token=guest["token"]), "joinRoom")["room"]["id"] == room["id"]
    response = api.post(JOIN, {"id": "not-a-uuid"}, token=guest["token"])
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == (
        "Variable '$id' got invalid value 'not-a-uuid'; UUID cannot represent value: 'not-a-uuid'"
    )


# --- room(hostSlug, roomSlug) ----------------------------------------------------------------------


def test_room_query_matches_host_and_slug_exactly(api):
    """§5 room: both exact, else Room not found; public."""
    host = api.new_user()
    room = create_room(api, host, name="Exact Match")
    assert data(api.gql(ROOM, {"h": host["username"], "r": "exact-match"}), "room") == room
    for host_slug, room_slug in [
        (host["username"].upper(), "exact-match"),
        (host["username"], "Exact-Match"),
        (host["username"], "exact-match-2"),
        (unique("nobody"), "exact-match"),
        ("", ""),
    ]:
        assert failure(api.gql(ROOM, {"h": host_slug, "r": room_slug}), "room") == NOT_FOUND


# --- updateRoom ------------------------------------------------------------------------------------


def test_update_room(api):
    """§6.2 updateRoom, C8, A10: description and topic change, name and slug never; `updated` bumps."""
    host = api.new_user()
    room = create_room(api, host, description="before")
    new_topic = letters("Moved")
    changed = data(api.gql(UPDATE, {"id": room["id"], "d": "after", "t": new_topic}, token=host["token"]),
                   "updateRoom")["room"]
    assert changed["description"] == "after" and changed["topic"]["name"] == new_topic
    assert (changed["name"], changed["slug"], changed["created"]) == (room["name"], room["slug"], room["created"])
    assert moment(changed["updated"]) > moment(room["updated"])
    assert topic_names(api, s=new_topic) == [new_topic]
    # C8: no topicName (or null) keeps the topic; an omitted description stays, a null one clears.
    kept = data(api.gql(UPDATE_KEEPING_DESCRIPTION, {"id": room["id"]}, token=host["token"]), "updateRoom")["room"]
    assert (kept["description"], kept["topic"]) == ("after", changed["topic"])
    cleared = data(api.gql(UPDATE, {"id": room["id"], "d": None, "t": None}, token=host["token"]),
                   "updateRoom")["room"]
    assert (cleared["description"], cleared["topic"]) == ("", changed["topic"])
    assert moment(cleared["updated"]) > moment(kept["updated"]) > moment(changed["updated"])


def test_update_room_as_the_reference_client_sends_it(api):
    """§11 UpdateRoom: the edit-room modal's selection."""
    host = api.new_user()
    room = create_room(api, host)
    query = """mutation UpdateRoom($roomId: UUID!, $topicName: String, $description: String) {
      updateRoom(roomId: $roomId, topicName: $topicName, description: $description) {
        room { id name topic { name __typename } description participants { id avatar username __typename }
               host { id username avatar __typename } __typename } __typename } }"""
    topic = letters("Modal")
    body = api.gql(query, {"roomId": room["id"], "topicName": topic, "description": "edited"}, token=host["token"])
    result = data(body, "updateRoom")["room"]
    assert result["topic"]["name"] == topic and result["description"] == "edited"
    assert result["participants"] == [{"id": host["id"], "avatar": "", "username": host["username"],
                                       "__typename": "UserType"}]


def test_update_room_errors(api):
    """Login, then Room not found, then Permission denied; topic errors raw, description a form error,
    and nothing changes (C9: no orphan topic)."""
    host, other = api.new_user(), api.new_user()
    room = create_room(api, host, description="kept")
    assert failure(api.gql(UPDATE, {"id": room["id"], "d": "x"}, token=other["token"]), "updateRoom") == (
        PERMISSION_DENIED
    )
    # Not the host, even with a bad topic: permission comes first.
    assert failure(api.gql(UPDATE, {"id": room["id"], "t": "1"}, token=other["token"]), "updateRoom") == (
        PERMISSION_DENIED
    )
    for topic, message in [
        ("Two Words", "{'__all__': ['Topic name must consist of letters only.']}"),
        ("", "{'name': ['This field cannot be blank.']}"),
        ("B" * 201, "{'name': ['Ensure this value has at most 200 characters (it has 201).']}"),
    ]:
        body = api.gql(UPDATE, {"id": room["id"], "t": topic, "d": "changed"}, token=host["token"])
        assert failure(body, "updateRoom") == raw(message)
    orphan = letters("Orphan")
    body = api.gql(UPDATE, {"id": room["id"], "t": orphan, "d": "d" * 501}, token=host["token"])
    assert failure(body, "updateRoom") == invalid(
        {"description": ["Ensure this value has at most 500 characters (it has 501)."]}
    )
    assert topic_names(api, s=orphan) == []
    assert data(api.gql(ROOM, {"h": host["username"], "r": room["slug"]}), "room") == room


# --- joinRoom / leaveRoom ----------------------------------------------------------------------------


def test_join_and_leave_are_idempotent_and_keep_updated(api):
    """§6.2 joinRoom, B3 leaveRoom: idempotent, the host may leave, `updated` is not bumped; participants
    are ordered by username (§3)."""
    host = api.new_user()
    room = create_room(api, host)
    guests = [api.new_user() for _ in range(3)]
    for guest in guests:
        joined = join(api, guest, room)
        assert joined["updated"] == room["updated"]
    again = join(api, guests[0], room)
    assert join(api, host, room) == again
    expected = sorted([public(host), *map(public, guests)], key=lambda u: u["username"])
    assert again["participants"] == expected
    left = leave(api, guests[1], room)
    assert leave(api, guests[1], room) == left
    assert left["participants"] == [u for u in expected if u["id"] != guests[1]["id"]]
    assert left["updated"] == room["updated"]
    without_host = leave(api, host, room)
    assert host["id"] not in [u["id"] for u in without_host["participants"]]
    assert without_host["host"] == public(host)  # still the host
    # The host can edit and rejoin without being a participant.
    assert data(api.gql(UPDATE, {"id": room["id"], "d": "still mine"}, token=host["token"]), "updateRoom")
    assert host["id"] in [u["id"] for u in join(api, host, room)["participants"]]


def test_join_room_as_the_reference_client_sends_it(api):
    """§11 JoinRoom and Room: join, then re-fetch the room page."""
    host, guest = api.new_user(), api.new_user()
    room = create_room(api, host, name="Client Room")
    body = api.gql("""mutation JoinRoom($roomId: UUID!) { joinRoom(roomId: $roomId) {
        room { participants { id username __typename } __typename } __typename } }""",
                   {"roomId": room["id"]}, token=guest["token"])
    usernames = [p["username"] for p in data(body, "joinRoom")["room"]["participants"]]
    assert usernames == sorted([host["username"], guest["username"]])
    body = api.gql("""query Room($hostSlug: String!, $roomSlug: String!) { room(hostSlug: $hostSlug, roomSlug: $roomSlug) {
        id name slug description created host { id username name avatar __typename }
        participants { id username avatar __typename } topic { name __typename } __typename } }""",
                   {"hostSlug": host["username"], "roomSlug": "client-room"})
    page = data(body, "room")
    assert page["id"] == room["id"] and page["host"]["name"] == host["name"]
    assert guest["id"] in [p["id"] for p in page["participants"]]


# --- deleteRoom ------------------------------------------------------------------------------------


def test_delete_room_by_a_host_who_is_not_a_participant(api):
    """§12.10: success, the room is gone from every query, its topic stays; only the host may delete."""
    host, guest = api.new_user(), api.new_user()
    topic = letters("Stays")
    tag = unique("gone")
    room = create_room(api, host, topic=topic, description=tag)
    join(api, guest, room)
    leave(api, host, room)
    assert failure(api.gql(DELETE, {"id": room["id"]}, token=guest["token"]), "deleteRoom") == PERMISSION_DENIED
    assert api.gql(DELETE, {"id": room["id"]}, token=host["token"]) == {"data": {"deleteRoom": {"success": True}}}
    assert failure(api.gql(ROOM, {"h": host["username"], "r": room["slug"]}), "room") == NOT_FOUND
    assert rooms(api, s=tag) == []
    assert rooms(api, h=host["username"]) == []
    assert data(api.gql(PARTICIPATED, {"u": guest["username"]}), "roomsParticipatedByUser") == []
    assert room["id"] not in [r["id"] for r in data(api.gql(NOT_PARTICIPATED, {"u": host["username"]}),
                                                     "roomsNotParticipatedByUser")]
    assert topic_names(api, s=topic) == [topic]
    assert failure(api.gql(DELETE, {"id": room["id"]}, token=host["token"]), "deleteRoom") == NOT_FOUND
    assert failure(api.gql(JOIN, {"id": room["id"]}, token=guest["token"]), "joinRoom") == NOT_FOUND


# --- the reference client's lists (§11, §12.1) ------------------------------------------------------------


def test_anonymous_rooms_list_shows_a_room_whose_host_is_not_a_participant(api):
    """§12.1: anonymous `rooms { name description }`; the host is not a participant."""
    host = api.new_user()
    tag = unique("accept")
    room = create_room(api, host, name="Test Room", description=tag)
    leave(api, host, room)
    assert api.gql("query($s: String) { rooms(search: $s) { name description } }", {"s": tag}) == {
        "data": {"rooms": [{"name": "Test Room", "description": tag}]}
    }
    assert rooms(api, s=tag)[0]["participants"] == []


def test_reference_client_list_operations(api):
    """§11: HomepageInitial, UserWithRooms, Rooms and Topics as the reference web client sends them."""
    host, member = api.new_user(), api.new_user()
    topic = letters("Home")
    tag = unique("home")
    room = create_room(api, host, topic=topic, description=tag)
    join(api, member, room)
    body = api.gql(f"""query HomepageInitial($search: String, $topic: [String]) {{
        rooms(search: $search, topic: $topic) {{ {ROOM_LIST} }} topics {{ name __typename }} }}""",
                   {"search": tag, "topic": None})
    assert [r["id"] for r in data(body, "rooms")] == [room["id"]]
    assert topic in [t["name"] for t in body["data"]["topics"]]
    body = api.gql(f"""query HomepageInitial($search: String, $topic: [String]) {{
        rooms(search: $search, topic: $topic) {{ {ROOM_LIST} }} topics {{ name __typename }} }}""",
                   {"search": None, "topic": [topic]})
    assert data(body, "rooms") == [{
        "id": room["id"], "name": room["name"], "slug": room["slug"], "description": tag, "created": room["created"],
        "topic": {"name": topic, "__typename": "TopicType"},
        "host": {"username": host["username"], "__typename": "UserType"}, "__typename": "RoomType",
    }]
    body = api.gql(f"""query UserWithRooms($userSlug: String!) {{
        user(userSlug: $userSlug) {{ id username name avatar bio __typename }}
        roomsParticipatedByUser(userSlug: $userSlug) {{ {ROOM_LIST} }}
        roomsNotParticipatedByUser(userSlug: $userSlug) {{ {ROOM_LIST} }} }}""",
                   {"userSlug": member["username"]}, token=member["token"])
    assert "errors" not in body, body
    assert [r["id"] for r in body["data"]["roomsParticipatedByUser"]] == [room["id"]]
    assert room["id"] not in [r["id"] for r in body["data"]["roomsNotParticipatedByUser"]]
    body = api.gql(f"query Rooms($hostSlug: String) {{ rooms(hostSlug: $hostSlug) {{ {ROOM_LIST} }} }}",
                   {"hostSlug": host["username"]})
    assert [r["id"] for r in data(body, "rooms")] == [room["id"]]
    body = api.gql("query Topics { topics { name __typename } }")
    assert {"name": topic, "__typename": "TopicType"} in data(body, "topics")


def test_type_fields_are_exactly_the_contracts(api):
    """§3: no room count or rooms on a topic, no messages on a room."""
    for query, message in [
        ("{ topics { roomCount } }", "Cannot query field 'roomCount' on type 'TopicType'."),
        ("{ topics { rooms { id } } }", "Cannot query field 'rooms' on type 'TopicType'."),
        ("{ rooms { messages { id } } }", "Cannot query field 'messages' on type 'RoomType'."),
        ("{ rooms { participantCount } }", "Cannot query field 'participantCount' on type 'RoomType'."),
    ]:
        response = api.post(query)
        assert response.status_code == 400
        # Field suggestions ("Did you mean …?") follow in development, where introspection is on.
        assert error_of(response.json())["message"].startswith(message)
