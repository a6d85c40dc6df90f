"""The messages context through the gateway: ``messages`` and ``messagesByUser`` (orders with ties,
``last``/``before``, ``first``/``offset``, caps, the RPC budget), ``updateMessage`` and ``deleteMessage``
(checks, exact strings, C6) and authors whose account is gone (CONTRACT §§3, 5, 6.2, 7, 11, 12.4, 12.11,
12.12, 12.14; A11, A12, B2, B7a, C5, C6, C7, C16).

Messages are created only over the chat socket (§2.3), so tests create them with the messages service's
own ``post_message`` RPC, as the socket does. The stack is shared by the whole run: every test works in
rooms of its own.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import (
    LOGIN_REQUIRED,
    NOT_FOUND,
    PASSWORD,
    PERMISSION_DENIED,
    USER_FIELDS,
    USER_NOT_FOUND,
    Api,
    create_room,
    data,
    failure,
    invalid,
    join,
    leave,
    letters,
    moment,
    public,
    raw,
    request_log,
    unique,
)

MESSAGE_NOT_FOUND = {"message": "Message not found", "extensions": {"code": "NOT_FOUND"}}
NEGATIVE = ["Ensure this value is greater than or equal to 0."]

MESSAGE_FIELDS = f"""id body edited created updated seq user {{ {USER_FIELDS} }}
  room {{ id name slug description created updated host {{ {USER_FIELDS} }} topic {{ id name }}
         participants {{ {USER_FIELDS} }} }}"""
MESSAGES = f"""query($h: String!, $r: String!, $l: Int, $b: UUID) {{
  messages(hostSlug: $h, roomSlug: $r, last: $l, before: $b) {{ {MESSAGE_FIELDS} }} }}"""
BY_USER = f"""query($u: String!, $f: Int, $o: Int) {{
  messagesByUser(userSlug: $u, first: $f, offset: $o) {{ {MESSAGE_FIELDS} }} }}"""
UPDATE = f"""mutation($id: UUID!, $b: String!) {{
  updateMessage(messageId: $id, body: $b) {{ message {{ {MESSAGE_FIELDS} }} }} }}"""
DELETE = "mutation($id: UUID!) { deleteMessage(messageId: $id) { success } }"
# §11, as the reference web client sends them (Apollo adds __typename).
ROOM_MESSAGES = """query RoomMessages($hostSlug: String!, $roomSlug: String!) {
  messages(hostSlug: $hostSlug, roomSlug: $roomSlug) {
    id user { id username avatar __typename } body edited created updated __typename } }"""
MESSAGES_BY_USER = """query MessagesByUser($userSlug: String!) {
  messagesByUser(userSlug: $userSlug) {
    id body edited updated created room { slug name host { username __typename } __typename } __typename } }"""


def post(service_rpc, room: dict[str, Any], user: dict[str, Any], body: str = "Hello!") -> dict[str, Any]:
    """A message by ``user`` in ``room``, stored as the chat socket stores a ``text`` frame."""
    return service_rpc("messages", "post_message", room["id"], user["id"], body)


def messages(api: Api, host: dict[str, Any], room: dict[str, Any], **variables: Any) -> list[dict[str, Any]]:
    return data(api.gql(MESSAGES, {"h": host["username"], "r": room["slug"], **variables}), "messages")


def by_user(api: Api, user: dict[str, Any], **variables: Any) -> list[dict[str, Any]]:
    return data(api.gql(BY_USER, {"u": user["username"], **variables}), "messagesByUser")


def ids(listed: list[dict[str, Any]]) -> list[str]:
    return [message["id"] for message in listed]


def ascending(listed: list[dict[str, Any]]) -> list[str]:
    """The §5 ``messages`` order: created ASC, then id ASC."""
    return ids(sorted(listed, key=lambda m: (moment(m["created"]), m["id"])))


def descending(listed: list[dict[str, Any]]) -> list[str]:
    """The §5 ``messagesByUser`` order: created DESC, then id DESC."""
    return ids(sorted(listed, key=lambda m: (moment(m["created"]), m["id"]), reverse=True))


def make_ties(stack, message_ids: list[str], created: str) -> None:
    """Give these messages one and the same ``created`` (posts through the service never tie), so the
    tie-breaker is what orders them."""
    import psycopg

    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE messages.messages SET created = %s WHERE id = ANY(%s)",
            (moment(created), [uuid.UUID(message_id) for message_id in message_ids]),
        )


@pytest.fixture
def chat(api, service_rpc) -> dict[str, Any]:
    """A room whose host posted once and an author who posted once and then left (A12)."""
    host = api.new_user()
    author = api.new_user()
    room = create_room(api, host, name=unique("Chat "))
    join(api, author, room)
    first = post(service_rpc, room, host, "Host here")
    message = post(service_rpc, room, author, "Original")
    leave(api, author, room)
    return {"host": host, "author": author, "room": room, "message": message, "host_message": first}


# --- reading -------------------------------------------------------------------------------------------


def test_anonymous_and_non_participants_read_a_room(api, service_rpc):
    """§12.4, A11: readable without authentication or participation; the slug derives from `Test Room`;
    the host need not participate either."""
    host = api.new_user(username=unique("testuser"))
    room = create_room(api, host, name="Test Room")
    assert room["slug"] == "test-room"
    post(service_rpc, room, host, "Hello!")
    leave(api, host, room)
    query = f'{{ messages(hostSlug: "{host["username"]}", roomSlug: "test-room") {{ body }} }}'
    assert api.gql(query) == {"data": {"messages": [{"body": "Hello!"}]}}
    stranger = api.new_user()
    assert api.gql(query, token=stranger["token"]) == {"data": {"messages": [{"body": "Hello!"}]}}


def test_message_fields_and_formats(api, service_rpc):
    """§3, A6, B7a: every field, lowercase ids, UTC DateTimes, the body as sent, ``seq``."""
    host = api.new_user()
    room = create_room(api, host)
    stored = post(service_rpc, room, host, "  as sent \n")
    (message,) = messages(api, host, room)
    assert message == {
        "id": stored["id"],
        "body": "  as sent \n",
        "edited": False,
        "created": stored["created"],
        "updated": stored["updated"],
        "seq": stored["seq"],
        "user": public(host),
        "room": room,
    }
    assert message["id"] == str(uuid.UUID(message["id"])) and isinstance(message["seq"], int)
    assert message["created"].endswith("+00:00") and message["created"] == message["updated"]


def test_the_reference_clients_operations(api, service_rpc):
    """§11 ``RoomMessages`` and ``MessagesByUser``."""
    host = api.new_user()
    room = create_room(api, host)
    stored = post(service_rpc, room, host)
    listed = data(api.gql(ROOM_MESSAGES, {"hostSlug": host["username"], "roomSlug": room["slug"]}), "messages")
    assert listed == [{
        "id": stored["id"], "user": {"id": host["id"], "username": host["username"], "avatar": "",
                                     "__typename": "UserType"},
        "body": "Hello!", "edited": False, "created": stored["created"], "updated": stored["updated"],
        "__typename": "MessageType"}]
    listed = data(api.gql(MESSAGES_BY_USER, {"userSlug": host["username"]}), "messagesByUser")
    assert listed == [{
        "id": stored["id"], "body": "Hello!", "edited": False, "updated": stored["updated"],
        "created": stored["created"], "room": {"slug": room["slug"], "name": room["name"], "__typename": "RoomType",
                                               "host": {"username": host["username"], "__typename": "UserType"}},
        "__typename": "MessageType"}]


def test_room_not_found(api):
    host = api.new_user()
    room = create_room(api, host)
    for host_slug, room_slug in (("nobody-" + unique(), room["slug"]), (host["username"], "nowhere"),
                                 (host["username"].upper(), room["slug"]), (host["username"], room["slug"].upper())):
        body = api.gql(MESSAGES, {"h": host_slug, "r": room_slug})
        assert failure(body, "messages") == NOT_FOUND
    # A deleted room's messages are gone with it.
    api.gql("mutation($id: UUID!) { deleteRoom(roomId: $id) { success } }", {"id": room["id"]}, token=host["token"])
    assert failure(api.gql(MESSAGES, {"h": host["username"], "r": room["slug"]}), "messages") == NOT_FOUND


def test_messages_by_user_not_found(api):
    for slug in ("nobody-" + unique(), api.new_user()["username"].upper()):
        assert failure(api.gql(BY_USER, {"u": slug}), "messagesByUser") == USER_NOT_FOUND


def test_orders_with_ties(api, service_rpc, stack):
    """§5, §12.14, C11: ``messages`` by created ASC then id ASC; ``messagesByUser`` by created DESC then
    id DESC, across rooms."""
    host = api.new_user()
    room = create_room(api, host)
    other_room = create_room(api, host)
    made = [post(service_rpc, room if index % 3 else other_room, host, f"m{index}") for index in range(7)]
    tied = [message["id"] for message in made[1:5]]
    make_ties(stack, tied, made[2]["created"])
    listed = messages(api, host, room)
    assert len(listed) == 4 and ids(listed) == ascending(listed)
    tied_here = [m["id"] for m in listed if m["id"] in tied]
    assert len(tied_here) >= 2 and tied_here == sorted(tied_here)
    mine = by_user(api, host)
    assert len(mine) == 7 and ids(mine) == descending(mine)
    tied_listed = [m["id"] for m in mine if m["id"] in tied]
    assert tied_listed == sorted(tied, reverse=True)
    assert {m["room"]["id"] for m in mine} == {room["id"], other_room["id"]}


def test_last_and_before(api, service_rpc):
    """B2: ``before`` keeps the messages strictly before it, ``last`` the final ``last`` of those; the
    result stays ascending."""
    host = api.new_user()
    room = create_room(api, host)
    made = [post(service_rpc, room, host, f"m{index}")["id"] for index in range(6)]
    assert ids(messages(api, host, room)) == made
    assert ids(messages(api, host, room, l=2)) == made[4:]
    assert ids(messages(api, host, room, l=0)) == []
    assert ids(messages(api, host, room, l=100)) == made
    assert ids(messages(api, host, room, b=made[3])) == made[:3]
    assert ids(messages(api, host, room, b=made[3], l=2)) == made[1:3]
    assert ids(messages(api, host, room, b=made[3].upper(), l=1)) == made[2:3]
    assert ids(messages(api, host, room, b=made[0])) == []
    assert ids(messages(api, host, room, l=None, b=None)) == made


def test_before_naming_no_message_of_that_room(api, service_rpc, chat):
    host = api.new_user()
    room = create_room(api, host)
    doomed = post(service_rpc, room, host, "doomed")
    post(service_rpc, room, host)
    api.gql(DELETE, {"id": doomed["id"]}, token=host["token"])
    for before in (chat["message"]["id"], str(uuid.uuid4()), doomed["id"]):
        body = api.gql(MESSAGES, {"h": host["username"], "r": room["slug"], "b": before})
        assert failure(body, "messages") == MESSAGE_NOT_FOUND


def test_negative_paging_arguments(api):
    host = api.new_user()
    room = create_room(api, host)
    body = api.gql(MESSAGES, {"h": host["username"], "r": room["slug"], "l": -1})
    assert failure(body, "messages") == invalid({"last": NEGATIVE})
    body = api.gql(BY_USER, {"u": host["username"], "f": -1, "o": -5})
    assert failure(body, "messagesByUser") == invalid({"first": NEGATIVE, "offset": NEGATIVE})
    body = api.gql(BY_USER, {"u": host["username"], "o": -1})
    assert failure(body, "messagesByUser") == invalid({"offset": NEGATIVE})


def test_messages_by_user_paging(api, service_rpc):
    """B2: skip ``offset``, then at most ``first``, newest first."""
    author = api.new_user()
    room = create_room(api, author)
    newest_first = [post(service_rpc, room, author, f"m{index}")["id"] for index in range(5)][::-1]
    assert ids(by_user(api, author)) == newest_first
    assert ids(by_user(api, author, f=2)) == newest_first[:2]
    assert ids(by_user(api, author, f=2, o=2)) == newest_first[2:4]
    assert ids(by_user(api, author, o=4)) == newest_first[4:]
    assert ids(by_user(api, author, o=9)) == []
    assert ids(by_user(api, author, f=0)) == []


def test_list_cap(api, capped_api, service_rpc):
    """B2: without ``last`` the newest N; ``last``/``first`` above N are clamped to N."""
    host = api.new_user()
    room = create_room(api, host)
    made = [post(service_rpc, room, host, f"m{index}")["id"] for index in range(5)]
    assert ids(messages(capped_api, host, room)) == made[2:]
    assert ids(messages(capped_api, host, room, l=1000)) == made[2:]
    assert ids(messages(capped_api, host, room, b=made[4])) == made[1:4]
    assert ids(by_user(capped_api, host)) == made[::-1][:3]
    assert ids(by_user(capped_api, host, f=100, o=3)) == made[::-1][3:]
    assert ids(messages(api, host, room)) == made


def test_a_list_of_50_messages_costs_the_same_rpc_calls_as_a_list_of_5(api, stack, service_rpc):
    """DESIGN (DataLoaders): authors, the room's host and participants cost one batched users call, and
    the room read brings its topic and participant ids along, however many messages the list holds. So
    the nested room costs no call beyond what `{ id body }` costs, both measured after the nested list was
    read once (the gateway's user directory, which may answer the users calls itself, then knows every
    user either needs). Counted from the real gateway's per-request log line."""
    host = api.new_user()
    authors = [api.new_user() for _ in range(4)]
    measured: dict[str, dict[int, tuple[int, int]]] = {"messages": {}, "messagesByUser": {}}

    def read(field: str, arguments: str, variables: dict[str, Any], selection: str) -> tuple[int, list[Any]]:
        """The RPC calls of one read of the list, and the list."""
        operation = letters("MessagesBudget")
        body = api.gql(f"query {operation}{arguments} {{ {field} {{ {selection} }} }}", variables)
        listed = data(body, field.split("(")[0])
        record = request_log(stack, operation)
        assert record["status"] == 200 and record["error_codes"] == []
        return record["rpc_calls"], listed

    def budget(query: tuple[str, str, dict[str, Any]], count: int, writers: int, participants: int) -> tuple[int, int]:
        """The calls of the list with its nested room, and of the list alone, once both are warm."""
        _, listed = read(*query, MESSAGE_FIELDS)
        assert len(listed) == count and len({m["user"]["id"] for m in listed}) == writers
        assert all(m["room"]["host"]["username"] and m["room"]["topic"]["name"] for m in listed)
        assert all(len(m["room"]["participants"]) == participants for m in listed)
        return read(*query, MESSAGE_FIELDS)[0], read(*query, "id body")[0]

    for count in (5, 50):
        room = create_room(api, host)
        for author in authors:
            join(api, author, room)
        for index in range(count):
            post(service_rpc, room, authors[index % len(authors)] if index else host, f"m{index}")
        in_room = ("messages(hostSlug: $h, roomSlug: $r)", "($h: String!, $r: String!)",
                   {"h": host["username"], "r": room["slug"]})
        measured["messages"][count] = budget(in_room, count, writers=min(count, 5), participants=5)

        author = api.new_user()
        join(api, author, room)
        for index in range(count):
            post(service_rpc, room, author, f"a{index}")
        of_user = ("messagesByUser(userSlug: $u)", "($u: String!)", {"u": author["username"]})
        measured["messagesByUser"][count] = budget(of_user, count, writers=1, participants=6)
    # messages: users.get_by_username, rooms.get_room_by_host_slug (with participant ids and topic),
    # messages.history, users.get_many; messagesByUser: users.get_by_username, messages.messages_by_user,
    # rooms.get_many (with participant ids and topic), users.get_many. The users calls may be answered by
    # the gateway's user directory instead.
    for full, lean in [*measured["messages"].values(), *measured["messagesByUser"].values()]:
        assert full <= 4 and full == lean, measured


# --- updateMessage and deleteMessage ----------------------------------------------------------------------


def test_update_own_message_without_participating(api, chat):
    """§12.12, A12, C6: a changed body is stored, ``edited`` turns true, ``updated`` and ``seq`` move."""
    author, message = chat["author"], chat["message"]
    body = api.gql(UPDATE, {"id": message["id"], "b": "Updated"}, token=author["token"])
    updated = data(body, "updateMessage")["message"]
    assert updated["body"] == "Updated" and updated["edited"] is True
    assert updated["id"] == message["id"] and updated["created"] == message["created"]
    assert moment(updated["updated"]) > moment(message["updated"]) and updated["seq"] > message["seq"]
    assert updated["user"] == public(author) and updated["room"]["id"] == chat["room"]["id"]
    (stored,) = [m for m in messages(api, chat["host"], chat["room"]) if m["id"] == message["id"]]
    assert stored == updated


def test_update_with_an_identical_body_changes_nothing(api, chat):
    """C6: ``edited`` and ``updated`` stay as they were; the message is still returned. An upper-case id
    still yields the canonical lowercase one (C5)."""
    author, message = chat["author"], chat["message"]
    body = api.gql(UPDATE, {"id": message["id"].upper(), "b": "Original"}, token=author["token"])
    same = data(body, "updateMessage")["message"]
    assert (same["id"], same["body"], same["edited"], same["updated"], same["seq"]) == (
        message["id"], "Original", False, message["updated"], message["seq"])
    edited = data(api.gql(UPDATE, {"id": message["id"], "b": "Changed"}, token=author["token"]), "updateMessage")
    again = data(api.gql(UPDATE, {"id": message["id"], "b": "Changed"}, token=author["token"]), "updateMessage")
    assert again["message"]["edited"] is True
    assert again["message"]["updated"] == edited["message"]["updated"]
    assert again["message"]["seq"] == edited["message"]["seq"]


def test_update_errors_in_order(api, chat):
    """§4.1, §6.2, §7, §16.1: login required first, then Message not found, then Permission denied (the
    host cannot moderate), then the raw body errors, which carry no ``extensions.errors``."""
    author, host, message = chat["author"], chat["host"], chat["message"]
    stranger = api.new_user()
    body = api.gql(UPDATE, {"id": str(uuid.uuid4()), "b": ""})
    assert failure(body, "updateMessage") == {"message": LOGIN_REQUIRED, "extensions": {"code": "UNAUTHENTICATED"}}
    body = api.gql(UPDATE, {"id": str(uuid.uuid4()), "b": ""}, token=stranger["token"])
    assert failure(body, "updateMessage") == MESSAGE_NOT_FOUND
    for user in (stranger, host):
        body = api.gql(UPDATE, {"id": message["id"], "b": ""}, token=user["token"])
        assert failure(body, "updateMessage") == PERMISSION_DENIED
    for blank in ("", "  \t\n "):
        body = api.gql(UPDATE, {"id": message["id"], "b": blank}, token=author["token"])
        assert failure(body, "updateMessage") == raw("{'body': ['This field cannot be blank.']}")
    body = api.gql(UPDATE, {"id": message["id"], "b": "é" * 501}, token=author["token"])
    assert failure(body, "updateMessage") == raw(
        "{'body': ['Ensure this value has at most 500 characters (it has 501).']}")
    (stored,) = [m for m in messages(api, host, chat["room"]) if m["id"] == message["id"]]
    assert stored["body"] == "Original" and stored["edited"] is False
    assert data(api.gql(UPDATE, {"id": message["id"], "b": "é" * 500}, token=author["token"]), "updateMessage")


def test_delete_own_message_without_participating(api, chat):
    """§12.11, A12."""
    author, message = chat["author"], chat["message"]
    body = api.gql(DELETE, {"id": message["id"]}, token=author["token"])
    assert body == {"data": {"deleteMessage": {"success": True}}}
    assert ids(messages(api, chat["host"], chat["room"])) == [chat["host_message"]["id"]]
    assert by_user(api, author) == []
    assert failure(api.gql(DELETE, {"id": message["id"]}, token=author["token"]), "deleteMessage") == MESSAGE_NOT_FOUND
    body = api.gql(UPDATE, {"id": message["id"], "b": "back?"}, token=author["token"])
    assert failure(body, "updateMessage") == MESSAGE_NOT_FOUND


def test_delete_errors_in_order(api, chat):
    author, host, message = chat["author"], chat["host"], chat["message"]
    stranger = api.new_user()
    body = api.gql(DELETE, {"id": message["id"]})
    assert failure(body, "deleteMessage") == {"message": LOGIN_REQUIRED, "extensions": {"code": "UNAUTHENTICATED"}}
    body = api.gql(DELETE, {"id": str(uuid.uuid4())}, token=stranger["token"])
    assert failure(body, "deleteMessage") == MESSAGE_NOT_FOUND
    for user in (stranger, host):
        body = api.gql(DELETE, {"id": message["id"]}, token=user["token"])
        assert failure(body, "deleteMessage") == PERMISSION_DENIED
    assert message["id"] in ids(messages(api, host, chat["room"]))
    assert author["id"] == message["user_id"]


def test_cookie_authenticated_message_mutations_need_the_csrf_header(api, chat):
    """D3 applies to these mutations as to every other."""
    author, message = chat["author"], chat["message"]
    response = api.post(DELETE, {"id": message["id"]}, cookies={"JWT": author["token"]}, csrf=False)
    assert response.status_code == 403
    assert message["id"] in ids(messages(api, chat["host"], chat["room"]))
    body = api.gql(DELETE, {"id": message["id"]}, cookies={"JWT": author["token"]})
    assert body == {"data": {"deleteMessage": {"success": True}}}


# --- authors that are gone ----------------------------------------------------------------------------------


def test_deleted_authors_messages_are_left_out_at_once(api, chat, service_rpc):
    """§6.2 deleteAccount, B3: from the response on, no list shows the author's messages, never with a
    dangling null user, whether or not the asynchronous cascade has run yet."""
    host, room = chat["host"], chat["room"]
    author = api.new_user()
    join(api, author, room)
    gone = [post(service_rpc, room, author, f"bye {index}")["id"] for index in range(3)]
    response = api.post("mutation($p: String!) { deleteAccount(password: $p) { success } }", {"p": PASSWORD},
                        token=author["token"])
    assert response.json() == {"data": {"deleteAccount": {"success": True}}}
    listed = messages(api, host, room)
    assert not set(gone) & set(ids(listed))
    assert all(message["user"] is not None for message in listed)
    assert ids(listed) == [chat["host_message"]["id"], chat["message"]["id"]]
    assert failure(api.gql(BY_USER, {"u": author["username"]}), "messagesByUser") == USER_NOT_FOUND


# --- broadcasts (C7) -----------------------------------------------------------------------------------------


def _socket(stack, host: dict[str, Any], room: dict[str, Any], token: str):
    """A participant's chat socket (§10), the ``JWT`` cookie and an allowed Origin."""
    from websockets.sync.client import connect

    if importlib.util.find_spec("gateway.chat") is None:
        # Without its route a socket upgrade is refused with 403, which would read as a contract failure.
        pytest.skip("the chat socket (gateway.chat) is not part of this gateway yet")
    url = stack.gateway_url.replace("http://", "ws://") + f"/ws/chat/{host['username']}/{room['slug']}"
    return connect(url, origin="http://localhost", additional_headers={"Cookie": f"JWT={token}"}, proxy=None,
                   open_timeout=10)


def _frame(socket, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(socket.recv(timeout=timeout))


def test_graphql_edits_and_deletions_reach_the_sockets(api, chat, stack):
    """C7, C5, C6: ``updateMessage`` and ``deleteMessage`` (by an author who left the room, A12) broadcast
    the same ``update`` and ``delete`` frames a socket edit would, with the canonical id and the stored
    values; an identical body still broadcasts."""
    host, author, message, room = chat["host"], chat["author"], chat["message"], chat["room"]
    with _socket(stack, host, room, host["token"]) as socket:
        updated = data(api.gql(UPDATE, {"id": message["id"].upper(), "b": "Edited"}, token=author["token"]),
                       "updateMessage")["message"]
        frame = _frame(socket)
        assert {key: frame[key] for key in ("type", "action", "id", "body", "edited", "updated")} == {
            "type": "chat_message", "action": "update", "id": message["id"], "body": "Edited", "edited": True,
            "updated": updated["updated"]}
        data(api.gql(UPDATE, {"id": message["id"], "b": "Edited"}, token=author["token"]), "updateMessage")
        frame = _frame(socket)
        assert (frame["action"], frame["id"], frame["updated"]) == ("update", message["id"], updated["updated"])
        assert data(api.gql(DELETE, {"id": message["id"]}, token=author["token"]), "deleteMessage") == {
            "success": True}
        frame = _frame(socket)
        assert {key: frame[key] for key in ("type", "action", "id")} == {
            "type": "chat_message", "action": "delete", "id": message["id"]}

