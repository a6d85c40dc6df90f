"""The messages fields of /graphql/ in-process, with in-memory users, rooms and messages services behind a
fake RPC client: the RPC budget of message lists (DataLoaders: one ``users.get_many`` and at most one
rooms read per request, which brings the rooms' participant ids and topics along), orders with ties (§5, §12.14), ``last``/``before`` and
``first``/``offset`` with the cap (B2), messages whose author or room is gone (§6.2), and the checks, exact
strings and codes of ``updateMessage``/``deleteMessage`` (§4.1, §6.2, §7, §16.1, A11, A12, C6)."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.tests.fake_rooms import FakeRoomsBase, gql, includes_asked
from gateway.tests.fake_users import FakeRpc, FakeUsers, remote
from gateway.tests.test_rooms_view import loads_counted
from gateway.tests.test_view import token_for

NEGATIVE = ["Ensure this value is greater than or equal to 0."]
LOGIN_REQUIRED = {"message": "You do not have permission to perform this action",
                  "extensions": {"code": "UNAUTHENTICATED"}}
MESSAGE_NOT_FOUND = {"message": "Message not found", "extensions": {"code": "NOT_FOUND"}}
ROOM_NOT_FOUND = {"message": "Room not found", "extensions": {"code": "NOT_FOUND"}}
USER_NOT_FOUND = {"message": "User not found", "extensions": {"code": "NOT_FOUND"}}
PERMISSION_DENIED = {"message": "Permission denied", "extensions": {"code": "PERMISSION_DENIED"}}
BASE_TIME = datetime(2025, 8, 20, 12, 0, tzinfo=UTC)
_clock = itertools.count(1)


def moment(seconds: float) -> str:
    return (BASE_TIME + timedelta(seconds=seconds)).isoformat()


class FakeRooms(FakeRoomsBase):
    """The few rooms-service RPC methods message lists use, over dicts."""

    def add(self, host_id: str, slug: str, participants: tuple[str, ...] = ()) -> dict[str, Any]:
        room_id = str(uuid.uuid4())
        self.rooms[room_id] = {
            "id": room_id, "name": slug.replace("-", " ").title(), "slug": slug, "host_id": host_id,
            "topic_id": 1, "description": "", "created": moment(0), "updated": moment(0),
        }
        self.members[room_id] = list(participants)
        return self._record(room_id)

    def get_topics(self, ids: list[int]) -> list[dict[str, Any] | None]:
        return [{"id": int(i), "name": "Python", "room_count": 1} if int(i) == 1 else None for i in ids]


class FakeMessages:
    """The messages service's RPC methods over a dict, with its orders, checks and raw body errors."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.seq: Counter[str] = Counter()
        self.writes = 0

    def add(self, room_id: str, user_id: str, body: str = "Hello!", *, at: float | None = None,
            message_id: str | None = None) -> dict[str, Any]:
        """A stored message; ``at`` seconds after a fixed instant (equal values make ties)."""
        message_id = message_id or str(uuid.uuid4())
        self.seq[room_id] += 1
        created = moment(next(_clock) if at is None else at)
        self.messages[message_id] = {
            "id": message_id, "room_id": room_id, "user_id": user_id, "body": body, "edited": False,
            "created": created, "updated": created, "seq": self.seq[room_id],
        }
        return dict(self.messages[message_id])

    @staticmethod
    def _ascending(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(records, key=lambda m: (m["created"], m["id"]))

    def _own(self, message_id: str, user_id: str) -> dict[str, Any]:
        message = self.messages.get(str(uuid.UUID(message_id)))
        if message is None:
            raise remote("NotFound", "Message not found")
        if message["user_id"] != user_id:
            raise remote("PermissionDenied", "Permission denied")
        return message

    def health(self) -> str:
        return "ok"

    def history(self, room_id: str, last: int | None = None, before: str | None = None,
                cap: int = 10000) -> list[dict[str, Any]]:
        if last is not None and last < 0:
            raise remote("ValidationFailed", {"last": NEGATIVE}, False)
        rows = self._ascending([dict(m) for m in self.messages.values() if m["room_id"] == room_id])
        if before is not None:
            anchor = self.messages.get(before)
            if anchor is None or anchor["room_id"] != room_id:
                raise remote("NotFound", "Message not found")
            rows = [m for m in rows if (m["created"], m["id"]) < (anchor["created"], anchor["id"])]
        limit = cap if last is None else min(last, cap)
        return rows[len(rows) - limit:] if limit else []

    def messages_by_user(self, user_id: str, first: int | None = None, offset: int = 0,
                         cap: int = 10000) -> list[dict[str, Any]]:
        rows = self._ascending([dict(m) for m in self.messages.values() if m["user_id"] == user_id])[::-1]
        limit = cap if first is None else min(first, cap)
        return rows[offset:offset + limit]

    def edit_message(self, message_id: str, user_id: str, body: str | None, room_id: str | None = None):
        message = self._own(message_id, user_id)
        if not (body or "").strip():
            raise remote("ValidationFailed", {"body": ["This field cannot be blank."]}, True)
        if len(body) > 500:
            raise remote("ValidationFailed",
                         {"body": [f"Ensure this value has at most 500 characters (it has {len(body)})."]}, True)
        if body != message["body"]:
            self.writes += 1
            self.seq[message["room_id"]] += 1
            message.update(body=body, edited=True, updated=moment(next(_clock) + 1000),
                           seq=self.seq[message["room_id"]])
        return dict(message)

    def delete_message(self, message_id: str, user_id: str, room_id: str | None = None) -> dict[str, Any]:
        message = self._own(message_id, user_id)
        del self.messages[message["id"]]
        self.seq[message["room_id"]] += 1
        return {"id": message["id"], "room_id": message["room_id"], "seq": self.seq[message["room_id"]]}

    def get_many(self, ids: list[str]) -> list[dict[str, Any] | None]:
        return [dict(self.messages[i]) if i in self.messages else None for i in ids]


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def rooms() -> FakeRooms:
    return FakeRooms()


@pytest.fixture
def messages() -> FakeMessages:
    return FakeMessages()


@pytest.fixture
def rpc(users: FakeUsers, rooms: FakeRooms, messages: FakeMessages) -> FakeRpc:
    return FakeRpc(users=users, rooms=rooms, messages=messages)


def only_error(body: dict[str, Any], field: str) -> dict[str, Any]:
    assert body["data"] == {field: None}, body
    assert len(body.get("errors", [])) == 1, body
    error = body["errors"][0]
    assert error["path"] == [field]
    return {"message": error["message"], "extensions": error["extensions"]}


def ids(listed: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in listed]


USER = "id username name bio avatar"
FULL_MESSAGE = f"""id body edited created updated seq user {{ {USER} }}
  room {{ id name slug description created updated host {{ {USER} }} topic {{ id name }} participants {{ {USER} }} }}"""
MESSAGES = f"""query($h: String!, $r: String!, $l: Int, $b: UUID) {{
  messages(hostSlug: $h, roomSlug: $r, last: $l, before: $b) {{ {FULL_MESSAGE} }} }}"""
MESSAGE_IDS = """query($h: String!, $r: String!, $l: Int, $b: UUID) {
  messages(hostSlug: $h, roomSlug: $r, last: $l, before: $b) { id } }"""
BY_USER = f"""query($u: String!, $f: Int, $o: Int) {{
  messagesByUser(userSlug: $u, first: $f, offset: $o) {{ {FULL_MESSAGE} }} }}"""
BY_USER_IDS = "query($u: String!, $f: Int, $o: Int) { messagesByUser(userSlug: $u, first: $f, offset: $o) { id } }"
UPDATE = f"""mutation($id: UUID!, $b: String!) {{
  updateMessage(messageId: $id, body: $b) {{ message {{ {FULL_MESSAGE} }} }} }}"""
DELETE = "mutation($id: UUID!) { deleteMessage(messageId: $id) { success } }"


def room_with_host(users: FakeUsers, rooms: FakeRooms, host: str = "testuser", slug: str = "test-room",
                   participants: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    user = users.add(host, f"{host}@x.com")
    return user, rooms.add(user["id"], slug, participants)


# --- reading a room's messages -------------------------------------------------------------------------


async def test_anonymous_non_participant_reads_a_room(client, users, rooms, messages):
    """§12.4, A11: public, no participation check; the room's host need not participate either."""
    host, room = room_with_host(users, rooms)
    messages.add(room["id"], host["id"], "Hello!")
    body = await gql(client, '{ messages(hostSlug: "testuser", roomSlug: "test-room") { body } }')
    assert body == {"data": {"messages": [{"body": "Hello!"}]}}


async def test_message_fields_and_formats(client, users, rooms, messages):
    host, room = room_with_host(users, rooms)
    author = users.add("writer", "writer@x.com")
    rooms.members[room["id"]] = [author["id"]]
    made = messages.add(room["id"], author["id"], "  spaced body  ")
    body = await gql(client, MESSAGES, {"h": "testuser", "r": "test-room"})
    assert "errors" not in body, body
    (message,) = body["data"]["messages"]
    public_author = {"id": author["id"], "username": "writer", "name": "Some One", "bio": "", "avatar": ""}
    assert message == {
        "id": made["id"],
        "body": "  spaced body  ",
        "edited": False,
        "created": made["created"],
        "updated": made["updated"],
        "seq": 1,
        "user": public_author,
        "room": {
            "id": room["id"], "name": "Test Room", "slug": "test-room", "description": "",
            "created": room["created"], "updated": room["updated"],
            "host": {"id": host["id"], "username": "testuser", "name": "Some One", "bio": "", "avatar": ""},
            "topic": {"id": "1", "name": "Python"},
            "participants": [public_author],
        },
    }
    assert message["created"].endswith("+00:00") and message["id"] == message["id"].lower()


async def test_the_reference_clients_room_messages_operation(client, users, rooms, messages):
    """§11 ``RoomMessages``, with the ``__typename`` Apollo adds."""
    host, room = room_with_host(users, rooms)
    messages.add(room["id"], host["id"])
    body = await gql(client, """query RoomMessages($hostSlug: String!, $roomSlug: String!) {
      messages(hostSlug: $hostSlug, roomSlug: $roomSlug) {
        id user { id username avatar __typename } body edited created updated __typename } }""",
                     {"hostSlug": "testuser", "roomSlug": "test-room"})
    assert "errors" not in body, body
    assert body["data"]["messages"][0]["__typename"] == "MessageType"
    assert body["data"]["messages"][0]["user"] == {"id": host["id"], "username": "testuser", "avatar": "",
                                                   "__typename": "UserType"}


async def test_room_not_found(client, users, rooms, rpc):
    room_with_host(users, rooms)
    for host, slug in (("ghost", "test-room"), ("testuser", "nowhere"), ("TESTUSER", "test-room"),
                       ("testuser", "Test-Room")):
        body = await gql(client, MESSAGE_IDS, {"h": host, "r": slug}, rpc=rpc)
        assert only_error(body, "messages") == ROOM_NOT_FOUND
        assert "messages.history" not in rpc.methods_called()


async def test_messages_ascending_with_ties_broken_by_id(client, users, rooms, messages):
    """§5, §12.14, C11: created ASC, then id ASC."""
    host, room = room_with_host(users, rooms)
    tie_ids = sorted(str(uuid.uuid4()) for _ in range(3))
    later = messages.add(room["id"], host["id"], at=50)
    for message_id in reversed(tie_ids):  # stored in the opposite order
        messages.add(room["id"], host["id"], at=10, message_id=message_id)
    earliest = messages.add(room["id"], host["id"], at=1)
    body = await gql(client, MESSAGE_IDS, {"h": "testuser", "r": "test-room"})
    assert ids(body["data"]["messages"]) == [earliest["id"], *tie_ids, later["id"]]


async def test_last_and_before(client, users, rooms, messages, rpc):
    """B2: ``before`` keeps those strictly before it, ``last`` the final ``last`` of those, ascending."""
    host, room = room_with_host(users, rooms)
    made = [messages.add(room["id"], host["id"], f"m{i}")["id"] for i in range(6)]

    async def listed(**variables: Any) -> list[str]:
        body = await gql(client, MESSAGE_IDS, {"h": "testuser", "r": "test-room", **variables})
        assert "errors" not in body, body
        return ids(body["data"]["messages"])

    assert await listed() == made
    assert await listed(l=2) == made[4:]
    assert await listed(b=made[3]) == made[:3]
    assert await listed(b=made[3], l=2) == made[1:3]
    assert await listed(b=made[3].upper(), l=2) == made[1:3]  # any UUID form
    assert await listed(b=made[0]) == []
    assert await listed(l=99) == made
    assert await listed(l=None, b=None) == made
    body = await gql(client, MESSAGE_IDS, {"h": "testuser", "r": "test-room", "l": 0}, rpc=rpc)
    assert body == {"data": {"messages": []}}
    assert "messages.history" not in rpc.methods_called()


async def test_before_naming_no_message_of_that_room(client, users, rooms, messages):
    host, room = room_with_host(users, rooms)
    _, elsewhere = room_with_host(users, rooms, host="otherhost", slug="other-room")
    foreign = messages.add(elsewhere["id"], host["id"])
    messages.add(room["id"], host["id"])
    for before in (foreign["id"], str(uuid.uuid4())):
        for last in (None, 0, 5):
            body = await gql(client, MESSAGE_IDS, {"h": "testuser", "r": "test-room", "b": before, "l": last})
            assert only_error(body, "messages") == MESSAGE_NOT_FOUND


async def test_negative_last(client, users, rooms, rpc):
    room_with_host(users, rooms)
    for host in ("testuser", "ghost"):  # the argument is checked before the room is looked up
        body = await gql(client, MESSAGE_IDS, {"h": host, "r": "test-room", "l": -1}, rpc=rpc)
        assert only_error(body, "messages") == {
            "message": "Invalid data", "extensions": {"code": "BAD_USER_INPUT", "errors": {"last": NEGATIVE}}}
        assert rpc.calls == []


async def test_messages_cap_keeps_the_newest(capped_client, users, rooms, messages):
    """B2: without ``last`` the newest N; ``last`` above N is clamped to N."""
    host, room = room_with_host(users, rooms)
    made = [messages.add(room["id"], host["id"], f"m{i}")["id"] for i in range(5)]
    for variables in ({}, {"l": 4}, {"l": 10000}):
        body = await gql(capped_client, MESSAGE_IDS, {"h": "testuser", "r": "test-room", **variables})
        assert ids(body["data"]["messages"]) == made[2:]
    body = await gql(capped_client, MESSAGE_IDS, {"h": "testuser", "r": "test-room", "b": made[4]})
    assert ids(body["data"]["messages"]) == made[1:4]


# --- a user's messages ------------------------------------------------------------------------------------


async def test_messages_by_user_descending_with_ties(client, users, rooms, messages):
    """§5, §12.14: created DESC, then id DESC, in every room."""
    host, room = room_with_host(users, rooms)
    _, other_room = room_with_host(users, rooms, host="otherhost", slug="other-room")
    author = users.add("author", "author@x.com")
    tie_ids = sorted(str(uuid.uuid4()) for _ in range(3))
    first = messages.add(room["id"], author["id"], at=1)
    for index, message_id in enumerate(tie_ids):
        messages.add(room["id"] if index % 2 else other_room["id"], author["id"], at=10, message_id=message_id)
    newest = messages.add(other_room["id"], author["id"], at=99)
    messages.add(room["id"], host["id"], at=50)  # someone else's
    body = await gql(client, BY_USER, {"u": "author"})
    assert "errors" not in body, body
    listed = body["data"]["messagesByUser"]
    assert ids(listed) == [newest["id"], *reversed(tie_ids), first["id"]]
    assert {message["room"]["slug"] for message in listed} == {"test-room", "other-room"}
    assert all(message["user"]["username"] == "author" for message in listed)


async def test_the_reference_clients_messages_by_user_operation(client, users, rooms, messages):
    host, room = room_with_host(users, rooms)
    messages.add(room["id"], host["id"], "Hi")
    body = await gql(client, """query MessagesByUser($userSlug: String!) { messagesByUser(userSlug: $userSlug) {
      id body edited updated created room { slug name host { username __typename } __typename } __typename } }""",
                     {"userSlug": "testuser"})
    assert "errors" not in body, body
    assert body["data"]["messagesByUser"][0]["room"] == {
        "slug": "test-room", "name": "Test Room", "host": {"username": "testuser", "__typename": "UserType"},
        "__typename": "RoomType"}


async def test_messages_by_user_not_found(client, users, rooms):
    room_with_host(users, rooms)
    for slug in ("ghost", "TESTUSER"):
        assert only_error(await gql(client, BY_USER_IDS, {"u": slug}), "messagesByUser") == USER_NOT_FOUND


async def test_messages_by_user_paging_and_cap(capped_client, users, rooms, messages, rpc):
    host, room = room_with_host(users, rooms)
    newest_first = [messages.add(room["id"], host["id"], f"m{i}")["id"] for i in range(5)][::-1]

    async def listed(**variables: Any) -> list[str]:
        body = await gql(capped_client, BY_USER_IDS, {"u": "testuser", **variables})
        assert "errors" not in body, body
        return ids(body["data"]["messagesByUser"])

    assert await listed() == newest_first[:3]
    assert await listed(f=2) == newest_first[:2]
    assert await listed(f=99, o=1) == newest_first[1:4]
    assert await listed(f=2, o=4) == newest_first[4:]
    assert await listed(o=10) == []
    body = await gql(capped_client, BY_USER_IDS, {"u": "testuser", "f": 0}, rpc=rpc)
    assert body == {"data": {"messagesByUser": []}}
    assert "messages.messages_by_user" not in rpc.methods_called()
    body = await gql(capped_client, BY_USER_IDS, {"u": "ghost", "f": -1, "o": -2}, rpc=rpc)
    assert only_error(body, "messagesByUser") == {
        "message": "Invalid data",
        "extensions": {"code": "BAD_USER_INPUT", "errors": {"first": NEGATIVE, "offset": NEGATIVE}},
    }
    assert rpc.calls == []


# --- the RPC budget -------------------------------------------------------------------------------------


def crowd(users: FakeUsers, rooms: FakeRooms, messages: FakeMessages, count: int, tag: str) -> None:
    """A room of ``tag`` with ``count`` messages by ``count`` different participants."""
    authors = [users.add(f"{tag}a{i}", f"{tag}a{i}@x.com")["id"] for i in range(count)]
    host = users.add(f"{tag}host", f"{tag}host@x.com")
    room = rooms.add(host["id"], f"{tag}-room", participants=(host["id"], *authors))
    for author in authors:
        messages.add(room["id"], author)


async def test_a_list_of_50_messages_costs_the_same_calls_as_a_list_of_5(client, users, rooms, messages, rpc):
    """DESIGN: one batched call per entity per request, never one per row."""
    crowd(users, rooms, messages, 5, "small")
    crowd(users, rooms, messages, 50, "large")
    measured = {}
    for tag, count in (("small", 5), ("large", 50)):
        body = await gql(client, MESSAGES, {"h": f"{tag}host", "r": f"{tag}-room"}, rpc=rpc)
        assert "errors" not in body, body
        assert len(body["data"]["messages"]) == count
        assert len({message["user"]["id"] for message in body["data"]["messages"]}) == count
        assert all(len(message["room"]["participants"]) == count + 1 for message in body["data"]["messages"])
        measured[count] = Counter(rpc.methods_called())
    # The room comes with its participant ids and topic (``include``), so neither costs a call.
    assert measured[5] == measured[50] == Counter({
        "users.get_by_username": 1, "rooms.get_room_by_host_slug": 1, "messages.history": 1, "users.get_many": 1,
    })


async def test_a_listed_messages_fields_take_no_loader_call_per_row(client, users, rooms, messages, rpc, monkeypatch):
    """The list loads what its rows show before they are resolved (the authors and participants in one
    users batch, the room with its lookup); each message's author and room, and the room's host, topic
    and participants, are then answered from it, without a DataLoader round per row and field."""
    crowd(users, rooms, messages, 30, "hand")
    loads = loads_counted(monkeypatch)
    body = await gql(client, MESSAGES, {"h": "handhost", "r": "hand-room"}, rpc=rpc)
    assert "errors" not in body, body
    assert len({message["user"]["id"] for message in body["data"]["messages"]}) == 30
    assert all(len(message["room"]["participants"]) == 31 for message in body["data"]["messages"])
    assert loads == Counter({"user_loader": 30})  # the batch: the 30 authors (the host came with its lookup)


async def test_a_users_messages_in_many_rooms_cost_the_same_calls(client, users, rooms, messages, rpc):
    measured = {}
    for count in (5, 50):
        author = users.add(f"writer{count}", f"writer{count}@x.com")
        for index in range(count):
            host = users.add(f"h{count}x{index}", f"h{count}x{index}@x.com")
            room = rooms.add(host["id"], f"room-{index}", participants=(host["id"], author["id"]))
            messages.add(room["id"], author["id"])
        body = await gql(client, BY_USER, {"u": f"writer{count}"}, rpc=rpc)
        assert "errors" not in body, body
        assert len({message["room"]["host"]["id"] for message in body["data"]["messagesByUser"]}) == count
        measured[count] = Counter(rpc.methods_called())
    assert measured[5] == measured[50] == Counter({
        "users.get_by_username": 1, "messages.messages_by_user": 1, "rooms.get_many": 1, "users.get_many": 1,
    })


async def test_unselected_room_parts_are_not_fetched(client, users, rooms, messages, rpc, monkeypatch):
    crowd(users, rooms, messages, 4, "lean")
    by_slug = includes_asked(rooms, monkeypatch, "get_room_by_host_slug")
    by_id = includes_asked(rooms, monkeypatch, "get_many")
    body = await gql(client, MESSAGE_IDS, {"h": "leanhost", "r": "lean-room"}, rpc=rpc)
    assert len(body["data"]["messages"]) == 4
    # The authors are still looked up: messages whose author is gone must be left out (§6.2).
    assert Counter(rpc.methods_called()) == Counter({
        "users.get_by_username": 1, "rooms.get_room_by_host_slug": 1, "messages.history": 1, "users.get_many": 1})
    body = await gql(client, "{ messagesByUser(userSlug: \"leana0\") { body room { slug } } }", rpc=rpc)
    assert body["data"]["messagesByUser"] == [{"body": "Hello!", "room": {"slug": "lean-room"}}]
    assert Counter(rpc.methods_called()) == Counter({
        "users.get_by_username": 1, "messages.messages_by_user": 1, "rooms.get_many": 1, "users.get_many": 1})
    assert by_slug == [None] and by_id == [None]
    body = await gql(client, "{ messagesByUser(userSlug: \"leana0\") { room { topic { name } } } }", rpc=rpc)
    assert body["data"]["messagesByUser"] == [{"room": {"topic": {"name": "Python"}}}]
    assert by_id == [None, ["topic"]]


async def test_fragments_and_aliases_stay_within_budget(client, users, rooms, messages, rpc):
    crowd(users, rooms, messages, 10, "frag")
    query = """query { a: messages(hostSlug: "fraghost", roomSlug: "frag-room") { ...M }
      b: messagesByUser(userSlug: "fraga0") { ... on MessageType { r: room { p: participants { id } } } } }
    fragment M on MessageType { user { username } room { ...R } }
    fragment R on RoomType { topic { name } host { username } }"""
    body = await gql(client, query, rpc=rpc)
    assert "errors" not in body, body
    assert len(body["data"]["a"]) == 10 and body["data"]["a"][0]["room"]["topic"] == {"name": "Python"}
    assert len(body["data"]["b"][0]["r"]["p"]) == 11
    calls = Counter(rpc.methods_called())
    # Beyond the room by slug, one rooms call at most: b's room may already be cached by a, without its
    # participants (a does not select them), which then cost one participants_of instead of a get_many.
    assert calls["rooms.get_room_by_host_slug"] == 1 and calls["rooms.get_topics"] == 0
    assert calls["rooms.get_many"] + calls["rooms.participants_of"] <= 1
    assert calls["users.get_many"] <= 2 and sum(calls.values()) <= 8


# --- authors and rooms that are gone ---------------------------------------------------------------------


async def test_messages_of_deleted_authors_are_left_out(client, users, rooms, messages):
    """§6.2 deleteAccount: while the cascade is in flight, no query shows a dangling author."""
    host, room = room_with_host(users, rooms)
    gone = users.add("gone", "gone@x.com")
    kept = messages.add(room["id"], host["id"], "stays")
    messages.add(room["id"], gone["id"], "goes")
    del users.users[gone["id"]]
    body = await gql(client, MESSAGES, {"h": "testuser", "r": "test-room"})
    assert "errors" not in body, body
    assert ids(body["data"]["messages"]) == [kept["id"]]


async def test_messages_in_deleted_rooms_are_left_out(client, users, rooms, messages):
    _, room = room_with_host(users, rooms)
    _, doomed = room_with_host(users, rooms, host="doomedhost", slug="doomed")
    author = users.add("author", "author@x.com")
    kept = messages.add(room["id"], author["id"])
    messages.add(doomed["id"], author["id"])
    hostless = rooms.add(users.add("leaving", "leaving@x.com")["id"], "hostless")
    messages.add(hostless["id"], author["id"])
    del rooms.rooms[doomed["id"]]
    del users.users[hostless["host_id"]]
    for query in (BY_USER, BY_USER_IDS):
        body = await gql(client, query, {"u": "author"})
        assert "errors" not in body, body
        assert ids(body["data"]["messagesByUser"]) == [kept["id"]]


# --- updateMessage and deleteMessage ---------------------------------------------------------------------


@pytest.fixture
def authored(users, rooms, messages) -> dict[str, Any]:
    """A message by a user who does not participate in its room (A12), and a token for them and another."""
    host, room = room_with_host(users, rooms)
    author = users.add("author", "author@x.com")
    users.add("other", "other@x.com")
    message = messages.add(room["id"], author["id"], "Original")
    return {"message": message, "room": room, "host": host, "token": token_for("author@x.com"),
            "other_token": token_for("other@x.com"), "host_token": token_for("testuser@x.com")}


async def test_update_own_message_without_participating(client, authored, messages):
    """§12.12, A12, C6: a changed body is stored with edited true and updated bumped."""
    message = authored["message"]
    body = await gql(client, UPDATE, {"id": message["id"], "b": "Updated"}, token=authored["token"])
    assert "errors" not in body, body
    updated = body["data"]["updateMessage"]["message"]
    assert updated["body"] == "Updated" and updated["edited"] is True
    assert updated["created"] == message["created"] and updated["updated"] > message["updated"]
    assert updated["seq"] == message["seq"] + 1
    assert updated["user"]["username"] == "author" and updated["room"]["slug"] == "test-room"
    assert messages.messages[message["id"]]["body"] == "Updated"


async def test_update_with_an_identical_body_writes_nothing(client, authored, messages, rpc):
    """C6: edited and updated unchanged, but the message is returned (and the service still emits its
    update event, C7)."""
    message = authored["message"]
    body = await gql(client, "mutation($id: UUID!) { updateMessage(messageId: $id, body: \"Original\") "
                             "{ message { id body edited updated seq } } }", {"id": message["id"].upper()},
                     token=authored["token"], rpc=rpc)
    assert body == {"data": {"updateMessage": {"message": {
        "id": message["id"], "body": "Original", "edited": False, "updated": message["updated"],
        "seq": message["seq"]}}}}
    assert messages.writes == 0
    edit = next(call for call in rpc.calls if call[1] == "edit_message")
    assert edit[2][:2] == (message["id"], message["user_id"])  # the canonical id reaches the service


async def test_update_errors_in_order(client, authored, rpc):
    """§4.1 then §6.2: login required → Message not found → Permission denied → raw body errors."""
    message_id = authored["message"]["id"]
    body = await gql(client, UPDATE, {"id": str(uuid.uuid4()), "b": ""}, rpc=rpc)
    assert only_error(body, "updateMessage") == LOGIN_REQUIRED
    assert not [call for call in rpc.calls if call[0] == "messages"]
    body = await gql(client, UPDATE, {"id": str(uuid.uuid4()), "b": ""}, token=authored["other_token"])
    assert only_error(body, "updateMessage") == MESSAGE_NOT_FOUND
    body = await gql(client, UPDATE, {"id": message_id, "b": ""}, token=authored["other_token"])
    assert only_error(body, "updateMessage") == PERMISSION_DENIED
    # The host cannot moderate either.
    body = await gql(client, UPDATE, {"id": message_id, "b": "x"}, token=authored["host_token"])
    assert only_error(body, "updateMessage") == PERMISSION_DENIED
    for text in ("", "   \n\t"):
        body = await gql(client, UPDATE, {"id": message_id, "b": text}, token=authored["token"])
        assert only_error(body, "updateMessage") == {
            "message": "{'body': ['This field cannot be blank.']}", "extensions": {"code": "BAD_USER_INPUT"}}
    body = await gql(client, UPDATE, {"id": message_id, "b": "x" * 501}, token=authored["token"])
    assert only_error(body, "updateMessage") == {
        "message": "{'body': ['Ensure this value has at most 500 characters (it has 501).']}",
        "extensions": {"code": "BAD_USER_INPUT"}}
    body = await gql(client, UPDATE, {"id": message_id, "b": "x" * 500}, token=authored["token"])
    assert "errors" not in body, body


async def test_delete_own_message_without_participating(client, authored, messages):
    """§12.11, A12."""
    message_id = authored["message"]["id"]
    body = await gql(client, DELETE, {"id": message_id}, token=authored["token"])
    assert body == {"data": {"deleteMessage": {"success": True}}}
    assert message_id not in messages.messages
    body = await gql(client, DELETE, {"id": message_id}, token=authored["token"])
    assert only_error(body, "deleteMessage") == MESSAGE_NOT_FOUND


async def test_delete_errors_in_order(client, authored, messages, rpc):
    message_id = authored["message"]["id"]
    body = await gql(client, DELETE, {"id": message_id}, rpc=rpc)
    assert only_error(body, "deleteMessage") == LOGIN_REQUIRED
    assert not [call for call in rpc.calls if call[0] == "messages"]
    body = await gql(client, DELETE, {"id": str(uuid.uuid4())}, token=authored["other_token"])
    assert only_error(body, "deleteMessage") == MESSAGE_NOT_FOUND
    for token in (authored["other_token"], authored["host_token"]):
        body = await gql(client, DELETE, {"id": message_id}, token=token)
        assert only_error(body, "deleteMessage") == PERMISSION_DENIED
    assert message_id in messages.messages


async def test_update_of_a_message_whose_room_is_being_deleted(client, authored, rooms):
    """Never a dangling room: the message reads as gone."""
    del rooms.rooms[authored["room"]["id"]]
    body = await gql(client, UPDATE, {"id": authored["message"]["id"], "b": "Later"}, token=authored["token"])
    assert only_error(body, "updateMessage") == MESSAGE_NOT_FOUND


async def test_the_reference_clients_message_mutations(client, authored):
    """§11 ``UpdateMessage`` and ``DeleteMessage`` (exported by the reference web client)."""
    message_id = authored["message"]["id"]
    body = await gql(client, """mutation UpdateMessage($messageId: UUID!, $body: String!) {
      updateMessage(messageId: $messageId, body: $body) { message { body edited updated __typename } __typename } }""",
                     {"messageId": message_id, "body": "New"}, token=authored["token"])
    assert "errors" not in body, body
    assert body["data"]["updateMessage"]["message"]["body"] == "New"
    assert body["data"]["updateMessage"]["__typename"] == "UpdateMessage"
    body = await gql(client, """mutation DeleteMessage($messageId: UUID!) {
      deleteMessage(messageId: $messageId) { success __typename } }""", {"messageId": message_id},
                     token=authored["token"])
    assert body == {"data": {"deleteMessage": {"success": True, "__typename": "DeleteMessage"}}}


async def test_a_bad_credential_fails_public_message_queries(client, users, rooms):
    """§4.2: a present but bad credential fails even the public fields."""
    room_with_host(users, rooms)
    body = await gql(client, MESSAGE_IDS, {"h": "testuser", "r": "test-room"}, token="garbage")
    assert only_error(body, "messages") == {"message": "Error decoding signature",
                                            "extensions": {"code": "UNAUTHENTICATED"}}


async def test_unavailable_messages_service(client, users, rooms, rpc):
    """C16: a clear error, never exception text."""
    room_with_host(users, rooms)
    rpc.down.add("messages")
    body = await gql(client, MESSAGE_IDS, {"h": "testuser", "r": "test-room"})
    error = only_error(body, "messages")
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert error["message"] in ("Service unavailable", "Internal server error")
