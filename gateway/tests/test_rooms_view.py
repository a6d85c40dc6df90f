"""The rooms fields of /graphql/ in-process, with in-memory users and rooms services behind a fake RPC
client: the RPC budget of room lists (DataLoaders, DESIGN "one get_many per entity per request"),
argument handling (§5, B2), participants (§3), rooms whose host is gone (§6.2) and the error mapping of
the room mutations (§4, §7)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any

import pytest
from strawberry.dataloader import DataLoader

from gateway.tests.fake_rooms import FakeRooms, gql, includes_asked
from gateway.tests.fake_users import FakeUsers
from gateway.tests.test_view import token_for

# --- fixtures ----------------------------------------------------------------------------------------


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert len(body.get("errors", [])) == 1, body
    error = body["errors"][0]
    return {"message": error["message"], "extensions": error["extensions"]}


FULL_ROOM = """id name slug description created updated
  host { id username name bio avatar } topic { id name } participants { id username avatar }"""


def populate(users: FakeUsers, rooms: FakeRooms, count: int, tag: str) -> list[dict[str, Any]]:
    """``count`` rooms, each with its own host and three participants of its own."""
    made = []
    for index in range(count):
        host = users.add(f"{tag}host{index}", f"{tag}host{index}@x.com")
        members = [users.add(f"{tag}m{index}x{k}", f"{tag}m{index}x{k}@x.com")["id"] for k in range(3)]
        made.append(rooms.add(host["id"], f"{tag} room {index}", topic=f"Topic{chr(65 + index % 20)}",
                              participants=(host["id"], *members)))
    return made


# --- the RPC budget --------------------------------------------------------------------------------------


# The list carries each room's participant ids and topic (``include``); hosts and participants in one batch.
LIST_BUDGET = Counter({"rooms.list_rooms": 1, "users.get_many": 1})


async def test_a_list_of_50_rooms_costs_the_same_two_calls_as_a_list_of_5(client, users, rooms, rpc):
    """DESIGN: one batched call per entity per request, never one per row; the room list itself brings
    the participant ids and topics."""
    populate(users, rooms, 5, "small")
    populate(users, rooms, 50, "large")
    measured = {}
    for tag, count in (("small", 5), ("large", 50)):
        body = await gql(client, f"query($s: String) {{ rooms(search: $s) {{ {FULL_ROOM} }} }}", {"s": tag}, rpc=rpc)
        assert "errors" not in body, body
        assert len(body["data"]["rooms"]) == count
        assert all(len(room["participants"]) == 4 for room in body["data"]["rooms"])
        measured[count] = Counter(rpc.methods_called())
    assert measured[5] == measured[50] == LIST_BUDGET


def loads_counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """``DataLoader.load`` calls from now on, by the loader factory (``user_loader``, …)."""
    counts: Counter[str] = Counter()
    original = DataLoader.load

    def counting(self: DataLoader[Any, Any], key: Any) -> Any:
        counts[self.load_fn.__qualname__.split(".")[0]] += 1
        return original(self, key)

    monkeypatch.setattr(DataLoader, "load", counting)
    return counts


async def test_a_listed_rooms_fields_take_no_loader_call_per_row(client, users, rooms, rpc, monkeypatch):
    """The list loads what its rows show before they are resolved (hosts and participants in one users
    batch, the rest came with the list); each row's host, topic and participants are then answered from
    it, without a DataLoader round per row and field."""
    populate(users, rooms, 20, "hand")
    loads = loads_counted(monkeypatch)
    body = await gql(client, f"{{ rooms {{ {FULL_ROOM} }} }}", rpc=rpc)
    assert "errors" not in body, body
    assert len(body["data"]["rooms"]) == 20 and all(len(room["participants"]) == 4 for room in body["data"]["rooms"])
    assert loads == Counter({"user_loader": 80})  # the batch: 20 hosts and 60 other participants, once each
    assert Counter(rpc.methods_called()) == LIST_BUDGET


async def test_fragments_aliases_and_every_list_field_stay_within_budget(client, users, rooms, rpc):
    populate(users, rooms, 20, "frag")
    query = """query($u: String!) {
      a: rooms { ...R } b: roomsParticipatedByUser(userSlug: $u) { ... on RoomType { participants { id } } }
    }
    fragment R on RoomType { host { username } topic { name } p1: participants { id } p2: participants { username } }"""
    body = await gql(client, query, {"u": "fragm0x0"}, rpc=rpc)
    assert "errors" not in body, body
    assert len(body["data"]["a"]) == 20 and len(body["data"]["b"]) == 1
    calls = Counter(rpc.methods_called())
    # Two root lists: each its list call (with what it selects), and at most one users.get_many each.
    assert calls == Counter({"rooms.list_rooms": 1, "rooms.rooms_participated_by": 1, "users.get_by_username": 1,
                             "users.get_many": calls["users.get_many"]})
    assert 1 <= calls["users.get_many"] <= 2


async def test_unselected_entities_are_not_fetched(client, users, rooms, rpc, monkeypatch):
    populate(users, rooms, 3, "lean")
    asked = includes_asked(rooms, monkeypatch, "list_rooms")
    body = await gql(client, "{ rooms { id name } }", rpc=rpc)
    assert len(body["data"]["rooms"]) == 3
    # The hosts are still looked up: rooms whose host is gone must be left out (§6.2).
    assert Counter(rpc.methods_called()) == Counter({"rooms.list_rooms": 1, "users.get_many": 1})
    assert asked == [None]  # neither participants nor topics read by the service


async def test_the_service_is_asked_for_what_is_selected(client, users, rooms, rpc, monkeypatch):
    populate(users, rooms, 3, "sel")
    asked = includes_asked(rooms, monkeypatch, "list_rooms")
    for selection, include in (("topic { name }", ["topic"]), ("participants { id }", ["participant_ids"]),
                               ("... on RoomType { p: participants { id } topic { id } }", ["participant_ids", "topic"])):
        body = await gql(client, f"{{ rooms {{ id {selection} }} }}", rpc=rpc)
        assert "errors" not in body, body
        assert asked.pop() == include
        assert set(rpc.methods_called()) <= {"rooms.list_rooms", "users.get_many"}


async def test_room_and_participated_lists_budget(client, users, rooms, rpc, monkeypatch):
    (made,) = populate(users, rooms, 1, "one")
    host = users.users[made["host_id"]]
    room = f'room(hostSlug: "{host["username"]}", roomSlug: "{made["slug"]}")'
    body = await gql(client, f"{{ {room} {{ {FULL_ROOM} }} }}", rpc=rpc)
    assert body["data"]["room"]["host"]["username"] == host["username"]
    assert len(body["data"]["room"]["participants"]) == 4
    assert Counter(rpc.methods_called()) == Counter(
        {"users.get_by_username": 1, "rooms.get_room_by_host_slug": 1, "users.get_many": 1}
    )
    # Without participants nothing is left to ask the users service: the host came with its lookup.
    body = await gql(client, f"{{ {room} {{ id host {{ username }} topic {{ name }} }} }}", rpc=rpc)
    assert body["data"]["room"]["topic"] == {"name": "TopicA"}
    assert Counter(rpc.methods_called()) == Counter({"users.get_by_username": 1, "rooms.get_room_by_host_slug": 1})
    asked = includes_asked(rooms, monkeypatch, "rooms_participated_by")
    body = await gql(client, f'{{ roomsParticipatedByUser(userSlug: "{host["username"]}") {{ {FULL_ROOM} }} }}',
                     rpc=rpc)
    assert len(body["data"]["roomsParticipatedByUser"][0]["participants"]) == 4
    assert Counter(rpc.methods_called()) == Counter(
        {"users.get_by_username": 1, "rooms.rooms_participated_by": 1, "users.get_many": 1}
    )
    assert asked == [["participant_ids", "topic"]]


# --- queries ------------------------------------------------------------------------------------------


async def test_room_fields_and_formats(client, users, rooms):
    host = users.add("hoster", "hoster@x.com")
    made = rooms.add(host["id"], "Test Room", topic="Django")
    body = await gql(client, f"{{ rooms {{ {FULL_ROOM} }} }}")
    (room,) = body["data"]["rooms"]
    topic_id = next(i for i, n in rooms.topics.items() if n == "Django")
    assert room == {
        "id": made["id"],
        "name": "Test Room",
        "slug": "test-room",
        "description": "",
        "created": made["created"],
        "updated": made["updated"],
        "host": {"id": host["id"], "username": "hoster", "name": "Some One", "bio": "", "avatar": ""},
        "topic": {"id": str(topic_id), "name": "Django"},
        "participants": [],
    }
    assert room["created"].endswith("+00:00")


async def test_participants_by_username_then_capped(capped_client, users, rooms):
    host = users.add("host", "host@x.com")
    ids = {name: users.add(name, f"{name}@x.com")["id"] for name in ("carol", "alice", "bob", "dave", "a-z", "a_z")}
    rooms.add(host["id"], "Crowded", participants=tuple(ids.values()))
    body = await gql(capped_client, "{ rooms { participants { username } } }")
    # Code point order, as PostgreSQL's "C" collation orders usernames: '-' < '_' < letters.
    assert [p["username"] for p in body["data"]["rooms"][0]["participants"]] == ["a-z", "a_z", "alice"]


async def test_paging_and_caps(capped_client, users, rooms, rpc):
    host = users.add("pager", "pager@x.com")
    made = [rooms.add(host["id"], f"Room {i}") for i in range(5)]
    newest_first = [r["id"] for r in reversed(made)]
    query = "query($f: Int, $o: Int) { rooms(first: $f, offset: $o) { id } }"
    assert [r["id"] for r in (await gql(capped_client, query))["data"]["rooms"]] == newest_first[:3]
    assert [r["id"] for r in (await gql(capped_client, query, {"f": 99, "o": 1}))["data"]["rooms"]] == newest_first[1:4]
    assert [r["id"] for r in (await gql(capped_client, query, {"f": 2, "o": 4}))["data"]["rooms"]] == newest_first[4:]
    body = await gql(capped_client, query, {"f": 0}, rpc=rpc)
    assert body == {"data": {"rooms": []}} and rpc.calls == []
    for field in ("rooms", 'roomsParticipatedByUser(userSlug: "pager",', 'roomsNotParticipatedByUser(userSlug: "pager",',
                  "topics"):
        head = field if field.endswith(",") else field + "("
        body = await gql(capped_client, f"{{ x: {head} first: -1, offset: -2) {{ __typename }} }}", rpc=rpc)
        assert body["data"] == {"x": None}
        assert only_error(body) == {
            "message": "Invalid data",
            "extensions": {
                "code": "BAD_USER_INPUT",
                "errors": {
                    "first": ["Ensure this value is greater than or equal to 0."],
                    "offset": ["Ensure this value is greater than or equal to 0."],
                },
            },
        }
        assert rpc.calls == []


async def test_rooms_filters(client, users, rooms, rpc):
    host = users.add("filt", "filt@x.com")
    other = users.add("other", "other@x.com")
    python = rooms.add(host["id"], "Snakes", topic="Python")
    django = rooms.add(other["id"], "Ponies", topic="Django")
    query = "query($h: String, $s: String, $t: [String]) { rooms(hostSlug: $h, search: $s, topic: $t) { name } }"

    async def names(**variables: Any) -> list[str]:
        body = await gql(client, query, variables, rpc=rpc)
        assert "errors" not in body, body
        return sorted(r["name"] for r in body["data"]["rooms"])

    assert await names(h="filt") == ["Snakes"]
    assert await names(h="nobody") == []
    assert "rooms.list_rooms" not in rpc.methods_called()  # an unknown host hosts nothing
    assert await names(h="", s="", t=[]) == ["Ponies", "Snakes"]
    assert rpc.calls[0][1:3] == ("list_rooms", ())
    assert await names(h=None, s=None, t=None) == ["Ponies", "Snakes"]
    assert await names(t=["Django"]) == ["Ponies"]
    assert await names(t=["python"]) == []  # exact, case-sensitive
    assert await names(s="NAK") == ["Snakes"]
    assert await names(h="other", t=["Python"]) == []
    # List coercion: a single string is a one-name list; "" and null names match nothing and are dropped.
    body = await gql(client, '{ rooms(topic: "Python") { id } }')
    assert body == {"data": {"rooms": [{"id": python["id"]}]}}
    assert await names(t=["", None]) == ["Ponies", "Snakes"]
    body = await gql(client, '{ rooms(topic: "") { id } }')
    assert len(body["data"]["rooms"]) == 2 and django


async def test_not_found_strings(client, users, rooms):
    host = users.add("nf", "nf@x.com")
    rooms.add(host["id"], "There")
    for query, field, message in [
        ('{ room(hostSlug: "ghost", roomSlug: "there") { id } }', "room", "Room not found"),
        ('{ room(hostSlug: "nf", roomSlug: "nowhere") { id } }', "room", "Room not found"),
        ('{ room(hostSlug: "NF", roomSlug: "there") { id } }', "room", "Room not found"),
        ('{ roomsParticipatedByUser(userSlug: "ghost") { id } }', "roomsParticipatedByUser", "User not found"),
        ('{ roomsNotParticipatedByUser(userSlug: "ghost") { id } }', "roomsNotParticipatedByUser", "User not found"),
    ]:
        body = await gql(client, query)
        assert body["data"] == {field: None}
        assert only_error(body) == {"message": message, "extensions": {"code": "NOT_FOUND"}}
        assert body["errors"][0]["path"] == [field]


async def test_participated_and_not_participated(client, users, rooms):
    alice = users.add("alice", "alice@x.com")
    bob = users.add("bob", "bob@x.com")
    joined = rooms.add(bob["id"], "Joined", participants=(alice["id"],))
    other = rooms.add(bob["id"], "Other")
    body = await gql(client, '{ p: roomsParticipatedByUser(userSlug: "alice") { id } '
                             'n: roomsNotParticipatedByUser(userSlug: "alice") { id } }')
    assert body == {"data": {"p": [{"id": joined["id"]}], "n": [{"id": other["id"]}]}}


async def test_rooms_whose_host_is_gone_are_left_out(client, users, rooms):
    """§6.2 deleteAccount: while the cascade is in flight no query fails on a dangling host."""
    gone = users.add("gone", "gone@x.com")
    stays = users.add("stays", "stays@x.com")
    orphan = rooms.add(gone["id"], "Orphan", participants=(stays["id"],))
    kept = rooms.add(stays["id"], "Kept", participants=(gone["id"], stays["id"]))
    users.users.pop(gone["id"])
    body = await gql(client, "{ rooms { id host { id } participants { username } } "
                             'p: roomsParticipatedByUser(userSlug: "stays") { id } '
                             'n: roomsNotParticipatedByUser(userSlug: "stays") { id } }')
    assert "errors" not in body, body
    assert body["data"]["rooms"] == [{"id": kept["id"], "host": {"id": stays["id"]}, "participants": [{"username": "stays"}]}]
    assert body["data"]["p"] == [{"id": kept["id"]}] and body["data"]["n"] == []
    # Singly: the host's username no longer exists, so the room is not found.
    body = await gql(client, '{ room(hostSlug: "gone", roomSlug: "orphan") { id } }')
    assert only_error(body)["message"] == "Room not found"
    # A mutation answering with such a room says so too, rather than a null host.
    body = await gql(client, f'mutation {{ joinRoom(roomId: "{orphan["id"]}") {{ room {{ id }} }} }}',
                     token=token_for("stays@x.com"))
    assert body["data"] == {"joinRoom": None}
    assert only_error(body) == {"message": "Room not found", "extensions": {"code": "NOT_FOUND"}}


async def test_topics(client, users, rooms, rpc):
    host = users.add("top", "top@x.com")
    for topic in ("beta", "Alpha", "alpha", "Gamma"):
        rooms._topic_id(topic)
    rooms.add(host["id"], "One", topic="Gamma")
    query = "query($s: String, $m: Int, $f: Int, $o: Int) { topics(search: $s, minRooms: $m, first: $f, offset: $o) { id name } }"
    body = await gql(client, query, rpc=rpc)
    assert [t["name"] for t in body["data"]["topics"]] == ["Gamma", "Alpha", "alpha", "beta"]
    assert all(re.fullmatch(r"\d+", t["id"]) for t in body["data"]["topics"])
    assert rpc.methods_called() == ["rooms.list_topics"]
    assert [t["name"] for t in (await gql(client, query, {"s": "LPH"}))["data"]["topics"]] == ["Alpha", "alpha"]
    assert [t["name"] for t in (await gql(client, query, {"m": 1}))["data"]["topics"]] == ["Gamma"]
    assert len((await gql(client, query, {"m": 0, "s": ""}))["data"]["topics"]) == 4
    assert [t["name"] for t in (await gql(client, query, {"f": 2, "o": 1}))["data"]["topics"]] == ["Alpha", "alpha"]


# --- mutations --------------------------------------------------------------------------------------


CREATE = """mutation($n: String!, $t: String!, $d: String!) {
  createRoom(name: $n, topicName: $t, description: $d) { room { id name slug description topic { name } host { username } participants { username } } } }"""


async def test_room_mutations_require_login_before_anything(client, users, rooms, rpc):
    room_id = str(uuid.uuid4())
    for field, mutation in [
        ("createRoom", 'createRoom(name: "", topicName: "1", description: "") { room { id } }'),
        ("updateRoom", f'updateRoom(roomId: "{room_id}") {{ room {{ id }} }}'),
        ("deleteRoom", f'deleteRoom(roomId: "{room_id}") {{ success }}'),
        ("joinRoom", f'joinRoom(roomId: "{room_id}") {{ room {{ id }} }}'),
        ("leaveRoom", f'leaveRoom(roomId: "{room_id}") {{ room {{ id }} }}'),
    ]:
        body = await gql(client, f"mutation {{ {mutation} }}", rpc=rpc)
        assert body["data"] == {field: None}
        assert only_error(body) == {
            "message": "You do not have permission to perform this action",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
        assert rpc.calls == []


async def test_create_room_and_its_errors(client, users, rooms):
    users.add("maker", "maker@x.com")
    token = token_for("maker@x.com")
    body = await gql(client, CREATE, {"n": "New Room", "t": "NewTopic", "d": ""}, token=token)
    assert body == {"data": {"createRoom": {"room": {
        "id": body["data"]["createRoom"]["room"]["id"], "name": "New Room", "slug": "new-room", "description": "",
        "topic": {"name": "NewTopic"}, "host": {"username": "maker"}, "participants": [{"username": "maker"}]}}}}
    # raw errors: dict repr, BAD_USER_INPUT, no extensions.errors (§16.1)
    body = await gql(client, CREATE, {"n": "New Room", "t": "NewTopic", "d": ""}, token=token)
    assert body["data"] == {"createRoom": None}
    assert only_error(body) == {
        "message": "{'__all__': ['You already have a room with this name.']}",
        "extensions": {"code": "BAD_USER_INPUT"},
    }
    body = await gql(client, CREATE, {"n": "X", "t": "Not letters", "d": ""}, token=token)
    assert only_error(body) == {
        "message": "{'__all__': ['Topic name must consist of letters only.']}",
        "extensions": {"code": "BAD_USER_INPUT"},
    }
    # form errors: "Invalid data" + extensions.errors
    body = await gql(client, CREATE, {"n": "  ", "t": "Fine", "d": ""}, token=token)
    assert only_error(body) == {
        "message": "Invalid data",
        "extensions": {"code": "BAD_USER_INPUT", "errors": {"name": ["This field is required."]}},
    }
    # a lost race: the same raw message, code CONFLICT (C14)
    rooms.conflict_next = True
    body = await gql(client, CREATE, {"n": "Raced", "t": "Fine", "d": ""}, token=token)
    assert only_error(body) == {
        "message": "{'__all__': ['You already have a room with this name.']}",
        "extensions": {"code": "CONFLICT"},
    }


async def test_update_room_arguments(client, users, rooms, rpc):
    host = users.add("upd", "upd@x.com")
    users.add("nothost", "nothost@x.com")
    made = rooms.add(host["id"], "Editable", topic="Old")
    rooms.rooms[made["id"]]["description"] = "before"
    token = token_for("upd@x.com")
    query = """mutation($id: UUID!, $d: String, $t: String) {
      updateRoom(roomId: $id, description: $d, topicName: $t) { room { description topic { name } } } }"""
    body = await gql(client, query, {"id": made["id"].upper()}, token=token, rpc=rpc)
    assert body == {"data": {"updateRoom": {"room": {"description": "before", "topic": {"name": "Old"}}}}}
    assert ("rooms", "update_room", (made["id"], host["id"], {})) in [c[:3] for c in rpc.calls]
    body = await gql(client, query, {"id": made["id"], "t": None, "d": None}, token=token, rpc=rpc)
    assert body == {"data": {"updateRoom": {"room": {"description": "", "topic": {"name": "Old"}}}}}  # C8
    assert ("rooms", "update_room", (made["id"], host["id"], {"description": None})) in [c[:3] for c in rpc.calls]
    body = await gql(client, query, {"id": made["id"], "t": "New", "d": "after"}, token=token)
    assert body == {"data": {"updateRoom": {"room": {"description": "after", "topic": {"name": "New"}}}}}
    body = await gql(client, query, {"id": made["id"], "d": "x"}, token=token_for("nothost@x.com"))
    assert only_error(body) == {"message": "Permission denied", "extensions": {"code": "PERMISSION_DENIED"}}
    body = await gql(client, query, {"id": str(uuid.uuid4())}, token=token)
    assert only_error(body) == {"message": "Room not found", "extensions": {"code": "NOT_FOUND"}}


async def test_delete_join_and_leave(client, users, rooms):
    host = users.add("dj", "dj@x.com")
    guest = users.add("guest", "guest@x.com")
    made = rooms.add(host["id"], "Shared")
    join = f'mutation {{ joinRoom(roomId: "{made["id"]}") {{ room {{ participants {{ username }} }} }} }}'
    leave = f'mutation {{ leaveRoom(roomId: "{made["id"]}") {{ room {{ participants {{ username }} }} }} }}'
    for _ in range(2):  # idempotent
        body = await gql(client, join, token=token_for("guest@x.com"))
        assert body == {"data": {"joinRoom": {"room": {"participants": [{"username": "guest"}]}}}}
    for _ in range(2):
        body = await gql(client, leave, token=token_for("guest@x.com"))
        assert body == {"data": {"leaveRoom": {"room": {"participants": []}}}}
    delete = f'mutation {{ deleteRoom(roomId: "{made["id"]}") {{ success }} }}'
    body = await gql(client, delete, token=token_for("guest@x.com"))
    assert only_error(body) == {"message": "Permission denied", "extensions": {"code": "PERMISSION_DENIED"}}
    assert await gql(client, delete, token=token_for("dj@x.com")) == {"data": {"deleteRoom": {"success": True}}}
    for mutation in (delete, join, leave):
        body = await gql(client, mutation, token=token_for("dj@x.com"))
        assert only_error(body) == {"message": "Room not found", "extensions": {"code": "NOT_FOUND"}}
    assert guest


async def test_request_log_line_counts_rpc_calls(client, users, rooms, caplog):
    populate(users, rooms, 7, "log")
    with caplog.at_level("INFO", logger="gateway.request"):
        await client.post("/graphql/", json={"query": f"query CountMe {{ rooms {{ {FULL_ROOM} }} }}"})
    (record,) = [r for r in caplog.records if r.name == "gateway.request" and getattr(r, "operation", None) == "CountMe"]
    assert record.rpc_calls == 2
