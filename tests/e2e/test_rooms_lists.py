"""Room and topic lists through the gateway: filters, orders with ties, paging and caps, the RPC budget of a
list, races, and the deleteAccount cascade (CONTRACT §§5, 6.2, 12.14; A9, A10, B2, B3, C9, C10, C11, C14).

Every test filters by names, descriptions or topics of its own: the stack is shared by the whole run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import (
    CREATE,
    JOIN,
    NOT_FOUND,
    PASSWORD,
    ROOM_FIELDS,
    USER_NOT_FOUND,
    create_room,
    data,
    failure,
    invalid,
    join,
    leave,
    letters,
    moment,
    raw,
    request_log,
    unique,
)
from tests.e2e.test_rooms import (
    NOT_PARTICIPATED,
    PARTICIPATED,
    ROOM,
    TOPICS,
    UPDATE,
    rooms,
    topic_names,
)

NEGATIVE = ["Ensure this value is greater than or equal to 0."]
CASCADE_DEADLINE = 5.0  # §6.2 deleteAccount: the cascade SHOULD finish within 5 s


def ids(listed: list[dict[str, Any]]) -> list[str]:
    return [room["id"] for room in listed]


def only(listed: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[str]:
    """The ids of ``listed`` that are among ``wanted``'s, in the listed order."""
    keep = {room["id"] for room in wanted}
    return [room["id"] for room in listed if room["id"] in keep]


def room_order(listed: list[dict[str, Any]]) -> list[str]:
    """``listed`` sorted by the §5 room order: participant count DESC, created DESC, id ASC."""
    by_id = sorted(listed, key=lambda room: room["id"])
    by_created = sorted(by_id, key=lambda room: moment(room["created"]), reverse=True)
    return ids(sorted(by_created, key=lambda room: len(room["participants"]), reverse=True))


def concurrently(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(0..count-1)`` on ``count`` threads released together."""
    barrier = threading.Barrier(count)

    def run(index: int) -> Any:
        barrier.wait()
        return action(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


# --- filters ---------------------------------------------------------------------------------------


def test_rooms_filters(api):
    """§5 rooms: hostSlug exact, search in name or description (case-insensitive), topic exactly in the
    list (case-sensitive, single string coerced, no duplicates); filters ANDed; "", null, [] ignored."""
    host, other = api.new_user(), api.new_user()
    tag = unique("flt")
    topic_a, topic_b = letters("Fa"), letters("Fb")
    in_name = create_room(api, host, name=f"Alpha {tag}", topic=topic_a)
    in_description = create_room(api, host, name="Beta", topic=topic_b, description=f"about {tag.upper()} here")
    lower_topic = create_room(api, other, name=f"Gamma {tag}", topic=topic_a.lower())
    mine = [in_name, in_description, lower_topic]

    assert sorted(ids(rooms(api, s=tag))) == sorted(ids(mine))
    assert sorted(ids(rooms(api, s=tag.upper()[2:]))) == sorted(ids(mine))
    assert ids(rooms(api, s=tag[:3] + "%" + tag[4:])) == []  # no wildcards
    assert ids(rooms(api, s=tag, t=[topic_a])) == [in_name["id"]]
    assert ids(rooms(api, s=tag, t=[topic_a.lower()])) == [lower_topic["id"]]
    assert ids(rooms(api, s=tag, t=[topic_a.upper()])) == []
    assert ids(rooms(api, s=tag, t=[topic_a, topic_a])) == [in_name["id"]]
    assert sorted(ids(rooms(api, s=tag, t=[topic_a, topic_b]))) == sorted([in_name["id"], in_description["id"]])
    assert ids(rooms(api, s=tag, t=[letters("None")])) == []
    # List coercion: a single string is a one-name list.
    body = api.gql(f'{{ rooms(search: "{tag}", topic: "{topic_b}") {{ id }} }}')
    assert data(body, "rooms") == [{"id": in_description["id"]}]
    # Ignored filters: "", null and [] (and a topic list of only ""/null, which names no topic).
    for variables in ({"h": "", "t": []}, {"h": None, "t": None}, {"t": [""]}, {"t": [None]}):
        assert sorted(ids(rooms(api, s=tag, **variables))) == sorted(ids(mine)), variables
    assert sorted(ids(data(api.gql(f'{{ rooms(search: "{tag}", topic: "") {{ id }} }}'), "rooms"))) == sorted(ids(mine))
    assert len(rooms(api, s="", h=host["username"])) == 2
    # hostSlug: exact username; unknown → [] without an error.
    assert sorted(ids(rooms(api, h=host["username"]))) == sorted([in_name["id"], in_description["id"]])
    assert rooms(api, h=host["username"].upper()) == []
    assert rooms(api, h=unique("nobody")) == []
    # ANDed.
    assert ids(rooms(api, h=other["username"], s=tag, t=[topic_a.lower()])) == [lower_topic["id"]]
    assert rooms(api, h=other["username"], s=tag, t=[topic_a]) == []
    assert ids(rooms(api, h=host["username"], s="beta")) == [in_description["id"]]


# --- orders ------------------------------------------------------------------------------------------


def test_room_orders_with_ties(api):
    """§5, A9, C10, C11: participant count DESC, then created DESC, then id; roomsParticipatedByUser by
    the true count, so a 4-participant older room sorts before a 1-participant newer one."""
    host, x, y, z = (api.new_user() for _ in range(4))
    tag = unique("ord")
    old = create_room(api, host, name="Old", description=tag)
    mid = create_room(api, host, name="Mid", description=tag)
    new = create_room(api, host, name="New", description=tag)
    newest = create_room(api, host, name="Newest", description=tag)
    assert moment(old["created"]) < moment(mid["created"]) < moment(new["created"]) < moment(newest["created"])
    for user in (x, y, z):
        join(api, user, old)
    join(api, x, mid)
    join(api, x, new)
    leave(api, host, newest)
    join(api, y, newest)
    # counts: old 4, mid 2, new 2, newest 1 (y only)
    expected = [old["id"], new["id"], mid["id"], newest["id"]]
    listed = rooms(api, s=tag)
    assert ids(listed) == expected == room_order(listed)
    assert [len(room["participants"]) for room in listed] == [4, 2, 2, 1]

    participated = data(api.gql(PARTICIPATED, {"u": host["username"]}), "roomsParticipatedByUser")
    assert ids(participated) == [old["id"], new["id"], mid["id"]]
    assert ids(data(api.gql(PARTICIPATED, {"u": x["username"]}), "roomsParticipatedByUser")) == [
        old["id"], new["id"], mid["id"]]
    assert ids(data(api.gql(PARTICIPATED, {"u": y["username"]}), "roomsParticipatedByUser")) == [
        old["id"], newest["id"]]
    not_participated = data(api.gql(NOT_PARTICIPATED, {"u": z["username"]}), "roomsNotParticipatedByUser")
    assert only(not_participated, listed) == [new["id"], mid["id"], newest["id"]]
    assert only(not_participated, listed) == [i for i in room_order(not_participated) if i in set(expected)]

    # Make it a tie at 2 for three rooms: created DESC decides.
    leave(api, y, old)
    leave(api, z, old)
    join(api, z, newest)
    assert ids(rooms(api, s=tag)) == [newest["id"], new["id"], mid["id"], old["id"]]
    assert ids(data(api.gql(PARTICIPATED, {"u": x["username"]}), "roomsParticipatedByUser")) == [
        new["id"], mid["id"], old["id"]]


def test_participants_are_ordered_by_username(api):
    """§3, C11: participants by username ASC, whatever the joining order."""
    users = [api.new_user(username=f"{unique('p')}{suffix}") for suffix in ("c", "a", "b")]
    host = api.new_user()
    room = create_room(api, host)
    for user in users:
        join(api, user, room)
    listed = data(api.gql(ROOM, {"h": host["username"], "r": room["slug"]}), "room")["participants"]
    assert [p["username"] for p in listed] == sorted(u["username"] for u in [*users, host])


def test_topics_order_filters_and_empty_topics(api):
    """§5 topics: with 0-room topics too; room count DESC, lower-cased name, name (C11); search contains
    (case-insensitive); minRooms ≥ (0/null ignored)."""
    host = api.new_user()
    prefix = letters("q").lower()
    two, aaa, upper_mid, lower_mid, zero = (prefix + s for s in ("two", "aaa", "Mid", "mid", "zero"))
    for topic in (two, two, aaa, upper_mid, lower_mid):
        create_room(api, host, topic=topic)
    moved = create_room(api, host, topic=zero)
    data(api.gql(UPDATE, {"id": moved["id"], "t": two}, token=host["token"]), "updateRoom")
    expected = [two, aaa, upper_mid, lower_mid, zero]
    assert topic_names(api, s=prefix) == expected
    assert topic_names(api, s=prefix.upper()) == expected
    assert topic_names(api, s=prefix + "MID") == [upper_mid, lower_mid]
    assert topic_names(api, s=prefix, m=1) == expected[:4]
    assert topic_names(api, s=prefix, m=3) == [two]
    assert topic_names(api, s=prefix, m=4) == []
    assert topic_names(api, s=prefix, m=0) == expected
    assert topic_names(api, s=prefix, m=None) == expected
    assert topic_names(api, s=prefix, f=2, o=1) == [aaa, upper_mid]
    assert topic_names(api, s=prefix, o=4) == [zero]
    everything = topic_names(api)
    assert [name for name in everything if name.startswith(prefix)] == expected
    assert all(isinstance(t["id"], str) and t["id"].isdigit() for t in data(api.gql(TOPICS, {"s": prefix}), "topics"))


# --- paging and caps (B2) --------------------------------------------------------------------------------


LIST_FIELDS = [
    ("rooms", "rooms(first: $f, offset: $o) { id }", {}),
    ("roomsParticipatedByUser", "roomsParticipatedByUser(userSlug: $u, first: $f, offset: $o) { id }", {"u": None}),
    ("roomsNotParticipatedByUser", "roomsNotParticipatedByUser(userSlug: $u, first: $f, offset: $o) { id }",
     {"u": None}),
    ("topics", "topics(first: $f, offset: $o) { id }", {}),
]


def _list_query(selection: str, with_user: bool) -> str:
    params = "$u: String!, $f: Int, $o: Int" if with_user else "$f: Int, $o: Int"
    return f"query({params}) {{ {selection} }}"


@pytest.mark.parametrize("field, selection, extra", LIST_FIELDS)
def test_negative_paging_arguments_and_first_zero(api, field, selection, extra):
    """B2: a negative first/offset is `Invalid data` + BAD_USER_INPUT; first: 0 gives []."""
    user = api.new_user()
    variables = {key: user["username"] for key in extra}
    query = _list_query(selection, bool(extra))
    for paging, errors in [
        ({"f": -1}, {"first": NEGATIVE}),
        ({"o": -1}, {"offset": NEGATIVE}),
        ({"f": -5, "o": -5}, {"first": NEGATIVE, "offset": NEGATIVE}),
    ]:
        assert failure(api.gql(query, {**variables, **paging}), field) == invalid(errors)
    assert api.gql(query, {**variables, "f": 0}) == {"data": {field: []}}
    assert api.gql(query, {**variables, "f": 0, "o": 3}) == {"data": {field: []}}


def test_paging_windows(api):
    """B2: skip `offset`, then at most `first`, in the §5 order; above N is clamped."""
    host, member = api.new_user(), api.new_user()
    tag = unique("page")
    made = [create_room(api, host, description=tag) for _ in range(5)]
    for room in made[:3]:
        join(api, member, room)
    full = ids(rooms(api, s=tag))
    assert sorted(full) == sorted(ids(made))
    participated = ids(data(api.gql(PARTICIPATED, {"u": member["username"]}), "roomsParticipatedByUser"))
    assert sorted(participated) == sorted(ids(made[:3]))
    stranger = api.new_user()
    everything = ids(data(api.gql(NOT_PARTICIPATED, {"u": stranger["username"]}), "roomsNotParticipatedByUser"))
    assert set(ids(made)) <= set(everything)
    for first, offset in [(1, 0), (2, 1), (2, 4), (10, 2), (100000, 0), (None, 3), (3, None), (1, 99)]:
        window = slice(offset or 0, None if first is None else (offset or 0) + first)
        assert ids(rooms(api, s=tag, f=first, o=offset)) == full[window]
        body = api.gql(PARTICIPATED, {"u": member["username"], "f": first, "o": offset})
        assert ids(data(body, "roomsParticipatedByUser")) == participated[window]
        body = api.gql(NOT_PARTICIPATED, {"u": stranger["username"], "f": first, "o": offset})
        assert ids(data(body, "roomsNotParticipatedByUser")) == everything[window]


def test_user_lists_need_an_existing_user(api):
    """§5: exact username, else User not found + NOT_FOUND."""
    user = api.new_user()
    for query, field in [(PARTICIPATED, "roomsParticipatedByUser"), (NOT_PARTICIPATED, "roomsNotParticipatedByUser")]:
        assert failure(api.gql(query, {"u": unique("nobody")}), field) == USER_NOT_FOUND
        assert failure(api.gql(query, {"u": user["username"].upper()}), field) == USER_NOT_FOUND
        assert isinstance(data(api.gql(query, {"u": user["username"]}), field), list)


def test_list_cap_bounds_every_list_participants_included(api, capped_api):
    """B2: N bounds root and nested lists (participants too); `first` above N is clamped to N."""
    host = api.new_user()
    tag = unique("cap")
    prefix = letters("cap").lower()
    made = [create_room(api, host, description=tag, topic=f"{prefix}{chr(97 + i)}") for i in range(5)]
    members = [api.new_user() for _ in range(4)]
    for member in members:
        join(api, member, made[0])
    full = ids(rooms(api, s=tag))
    assert len(full) == 5
    assert ids(rooms(capped_api, s=tag)) == full[:3]
    assert ids(rooms(capped_api, s=tag, f=100)) == full[:3]
    assert ids(rooms(capped_api, s=tag, f=100, o=3)) == full[3:]
    assert len(topic_names(capped_api, s=prefix)) == 3
    assert len(data(capped_api.gql(PARTICIPATED, {"u": host["username"]}), "roomsParticipatedByUser")) == 3
    everyone = sorted([host, *members], key=lambda u: u["username"])
    crowded = data(capped_api.gql(ROOM, {"h": host["username"], "r": made[0]["slug"]}), "room")
    assert [p["username"] for p in crowded["participants"]] == [u["username"] for u in everyone[:3]]
    uncapped = data(api.gql(ROOM, {"h": host["username"], "r": made[0]["slug"]}), "room")
    assert [p["username"] for p in uncapped["participants"]] == [u["username"] for u in everyone]


# --- the RPC budget ----------------------------------------------------------------------------------


def test_a_list_of_50_rooms_costs_the_same_rpc_calls_as_a_list_of_5(api, stack):
    """DESIGN (DataLoaders): a rooms list with host, topic and participants costs at most two calls however
    many rooms it holds: the list, which brings each room's participant ids and topic along (`include`),
    and one users.get_many for the hosts and participants, which the gateway's user directory may already
    answer. So the nested fields cost no call beyond what `{ id name }` costs, both measured after the
    nested list was read once (the directory, when it runs, then knows every user either needs).
    Counted from the real gateway's per-request log line (`rpc_calls`)."""
    hosts = [api.new_user() for _ in range(5)]
    members = [api.new_user() for _ in range(3)]
    topics = [letters("Budget") for _ in range(7)]
    measured: dict[int, tuple[int, int]] = {}

    def rpc_calls(selection: str, tag: str, count: int) -> int:
        operation = letters("RoomsBudget")
        body = api.gql(f"query {operation}($s: String) {{ rooms(search: $s) {{ {selection} }} }}", {"s": tag})
        listed = data(body, "rooms")
        assert len(listed) == count
        if selection == ROOM_FIELDS:
            assert all(room["host"]["username"] and room["topic"]["name"] and room["participants"] for room in listed)
        record = request_log(stack, operation)
        assert record["status"] == 200 and record["error_codes"] == []
        return record["rpc_calls"]

    for count in (5, 50):
        tag = unique(f"budget{count}x")
        for index in range(count):
            room = create_room(api, hosts[index % len(hosts)], name=f"{tag} {index}", topic=topics[index % len(topics)])
            for member in members[: index % 4]:
                join(api, member, room)
        rpc_calls(ROOM_FIELDS, tag, count)
        measured[count] = (rpc_calls(ROOM_FIELDS, tag, count), rpc_calls("id name", tag, count))
    for full, lean in measured.values():
        assert full <= 2 and full == lean, measured


# --- races (C14) -----------------------------------------------------------------------------------------


def test_concurrent_duplicate_create_room(api):
    """C14: of concurrent creates with the same host and name exactly one succeeds; the others get the raw
    error a sequential duplicate gets, with CONFLICT when they lost the race; never a database error."""
    host = api.new_user()
    codes: list[str] = []
    # A loser that starts after the winner committed gets the sequential BAD_USER_INPUT; repeat until a
    # true race (CONFLICT) was seen too, checking the invariants every time.
    for _attempt in range(20):
        if "CONFLICT" in codes:
            break
        name = unique("Race ")
        variables = {"n": name, "t": "Race", "d": ""}
        bodies = concurrently(6, lambda _, v=variables: api.gql(CREATE, v, token=host["token"]))
        successes = [body for body in bodies if "errors" not in body]
        assert len(successes) == 1, bodies
        for body in bodies:
            if "errors" in body:
                error = failure(body, "createRoom")
                assert error["message"] == "{'__all__': ['You already have a room with this name.']}"
                assert error["extensions"] in ({"code": "CONFLICT"}, {"code": "BAD_USER_INPUT"})
                codes.append(error["extensions"]["code"])
        assert len(rooms(api, h=host["username"], s=name)) == 1
    assert "CONFLICT" in codes, codes


def test_concurrent_creates_of_names_that_slugify_alike_all_succeed(api):
    """§6.2 step 4, C14: names that differ but slugify alike are no duplicates: each gets a free slug."""
    host = api.new_user()
    names = ["Alike Room", "alike room", "ALIKE ROOM", "aLiKe RoOm", "Alike ROOM"]
    bodies = concurrently(len(names), lambda i: api.gql(CREATE, {"n": names[i], "t": "Race", "d": ""},
                                                        token=host["token"]))
    slugs = sorted(data(body, "createRoom")["room"]["slug"] for body in bodies)
    assert slugs == sorted(["alike-room", "alike-room-2", "alike-room-3", "alike-room-4", "alike-room-5"])


def test_concurrent_creates_share_one_new_topic(api):
    """C14, A10: concurrent createRooms naming the same new topic all succeed and share one topic."""
    hosts = [api.new_user() for _ in range(6)]
    topic = letters("Shared")
    bodies = concurrently(6, lambda i: api.gql(CREATE, {"n": "Topic Race", "t": topic, "d": ""},
                                               token=hosts[i]["token"]))
    topics = {(room["topic"]["id"], room["topic"]["name"]) for room in (data(b, "createRoom")["room"] for b in bodies)}
    assert len(topics) == 1 and next(iter(topics))[1] == topic
    assert topic_names(api, s=topic) == [topic]


def test_concurrent_joins_are_idempotent_and_counted(api):
    """C14: joinRoom stays idempotent under concurrency, and no join is lost (true counts, C10)."""
    host, repeat = api.new_user(), api.new_user()
    tag = unique("join")
    room = create_room(api, host, description=tag)
    bodies = concurrently(8, lambda _: api.gql(JOIN, {"id": room["id"]}, token=repeat["token"]))
    for body in bodies:
        assert repeat["id"] in [p["id"] for p in data(body, "joinRoom")["room"]["participants"]]
    others = [api.new_user() for _ in range(5)]
    concurrently(5, lambda i: data(api.gql(JOIN, {"id": room["id"]}, token=others[i]["token"]), "joinRoom"))
    participants = data(api.gql(ROOM, {"h": host["username"], "r": room["slug"]}), "room")["participants"]
    assert sorted(p["id"] for p in participants) == sorted(u["id"] for u in [host, repeat, *others])
    # The count the lists order by is the true one: 7 beats a newer room of 6.
    rival_host = api.new_user()
    rival = create_room(api, rival_host, description=tag)
    for user in others:
        join(api, user, rival)
    assert ids(rooms(api, s=tag)) == [room["id"], rival["id"]]


# --- deleteAccount cascade (B3, §6.2) ----------------------------------------------------------------------


def test_delete_account_removes_hosted_rooms_and_memberships(api, service_rpc):
    """B3: after deleteAccount the user's hosted rooms and memberships are gone from every query at once
    (rooms with a gone host are left out, never shown with a null host), and the asynchronous cascade
    removes them from the rooms service within 5 s."""
    gone, keeper, visitor = api.new_user(), api.new_user(), api.new_user()
    tag = unique("casc")
    topic = letters("Cascade")
    hosted = [create_room(api, gone, description=tag, topic=topic) for _ in range(2)]
    kept = create_room(api, keeper, description=tag)
    join(api, gone, kept)
    join(api, visitor, hosted[0])
    assert len(rooms(api, s=tag)) == 3

    body = api.gql("mutation($p: String!) { deleteAccount(password: $p) { success } }", {"p": PASSWORD},
                   token=gone["token"])
    assert body == {"data": {"deleteAccount": {"success": True}}}
    deleted_at = time.monotonic()

    # From the response on, whatever the cascade's progress: no error, no dangling host or participant.
    listed = rooms(api, s=tag)
    assert ids(listed) == [kept["id"]]
    assert [p["id"] for p in listed[0]["participants"]] == [keeper["id"]]
    assert rooms(api, h=gone["username"]) == []
    assert failure(api.gql(ROOM, {"h": gone["username"], "r": hosted[0]["slug"]}), "room") == NOT_FOUND
    assert failure(api.gql(PARTICIPATED, {"u": gone["username"]}), "roomsParticipatedByUser") == USER_NOT_FOUND
    assert data(api.gql(PARTICIPATED, {"u": visitor["username"]}), "roomsParticipatedByUser") == []
    not_participated = data(api.gql(NOT_PARTICIPATED, {"u": keeper["username"]}), "roomsNotParticipatedByUser")
    assert not set(ids(hosted)) & set(ids(not_participated))

    # The cascade itself, in the rooms service: rooms and memberships deleted, the topic kept.
    while True:
        remaining = service_rpc("rooms", "get_many", ids(hosted))
        members = service_rpc("rooms", "participants_of", [kept["id"]])
        if remaining == [None, None] and members == {kept["id"]: [keeper["id"]]}:
            break
        assert time.monotonic() - deleted_at < CASCADE_DEADLINE, (remaining, members)
        time.sleep(0.1)
    assert topic_names(api, s=topic) == [topic]
    assert topic_names(api, s=topic, m=1) == []
    assert failure(api.gql(JOIN, {"id": hosted[0]["id"]}, token=visitor["token"]), "joinRoom") == NOT_FOUND
    assert ids(rooms(api, s=tag)) == [kept["id"]]


def test_raw_errors_carry_no_field_map(api):
    """§16.1: raw errors keep the reference format, so the client shows the bare sentence."""
    user = api.new_user()
    body = api.gql(CREATE, {"n": "Raw", "t": "no", "d": ""}, token=user["token"])
    assert data(body, "createRoom")["room"]["topic"]["name"] == "no"
    body = api.gql(CREATE, {"n": "Raw", "t": "no", "d": ""}, token=user["token"])
    assert failure(body, "createRoom") == raw("{'__all__': ['You already have a room with this name.']}")
