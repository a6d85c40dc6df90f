"""The membership copy and the cascades, fed by the rooms and users services' events: idempotent on
redelivery, and caught up after downtime (durable queues)."""

from __future__ import annotations

import pytest

from common.errors import PermissionDenied
from services.messages.tests.integration.conftest import new_id
from testing.services import wait_until

pytestmark = pytest.mark.integration


def count(sql, statement: str, **params) -> int:
    return sql(statement, **params)[0][0]


class Markers:
    """A join and a leave of ``user`` in rooms of their own, each dispatched after the events a test
    waits for on the same queue: once both are in the copy, so (in practice) are those."""

    def __init__(self, user: str) -> None:
        self.user, self.joined_room, self.left_room = user, new_id(), new_id()

    def handled(self, membership) -> bool:
        joined, left = membership(self.joined_room, self.user), membership(self.left_room, self.user)
        return joined == (True, 1) and left == (False, 1)


def dispatch_markers(dispatch, user: str) -> Markers:
    markers = Markers(user)
    dispatch("rooms", "participant_joined", {"room_id": markers.joined_room, "user_id": user, "membership_version": 1})
    dispatch("rooms", "participant_left", {"room_id": markers.left_room, "user_id": user, "membership_version": 1})
    return markers


def test_membership_follows_room_events(messages, dispatch, is_member, membership, rooms_stub):
    room, host, guest = new_id(), new_id(), new_id()
    dispatch("rooms", "room_created", {"id": room, "host_id": host, "name": "Study", "slug": "study"})
    dispatch("rooms", "participant_joined", {"room_id": room, "user_id": host, "membership_version": 1})
    dispatch("rooms", "participant_joined", {"room_id": room, "user_id": guest, "membership_version": 2})
    wait_until(lambda: membership(room, host) == (True, 1) and is_member(room, guest), message="memberships recorded")
    assert messages.post_message(room, host, "hello")["seq"] == 1
    assert messages.post_message(room, guest, "hi")["seq"] == 2
    assert rooms_stub.asked == []  # the copy answered

    dispatch("rooms", "participant_left", {"room_id": room, "user_id": guest, "membership_version": 3})
    wait_until(lambda: membership(room, guest) == (False, 3), message="the leave recorded")
    with pytest.raises(PermissionDenied):
        messages.post_message(room, guest, "still here?")
    assert rooms_stub.asked == [(room, guest)]
    assert [m["body"] for m in messages.history(room)] == ["hello", "hi"]  # leaving keeps messages


def test_membership_events_are_idempotent_and_ignore_junk(messages, dispatch, membership, sql):
    room, user, unversioned = new_id(), new_id(), new_id()
    for _ in range(3):
        dispatch("rooms", "participant_joined", {"room_id": room, "user_id": user, "membership_version": 7})
        dispatch("rooms", "participant_joined", {"room_id": unversioned, "user_id": user})  # from before versions
    dispatch("rooms", "participant_joined", {"room_id": "garbage", "user_id": user})
    for version in ("8", -1, True, 1.5):
        dispatch("rooms", "participant_left", {"room_id": room, "user_id": user, "membership_version": version})
    dispatch("rooms", "room_created", {"room": {"id": new_id()}})
    dispatch("rooms", "participant_left", {"room_id": room, "user_id": new_id(), "membership_version": 9})
    wait_until(lambda: membership(room, user) == (True, 7), message="membership recorded")
    wait_until(lambda: membership(unversioned, user) == (True, 0), message="unversioned membership recorded")
    markers = dispatch_markers(dispatch, user)
    wait_until(lambda: markers.handled(membership), message="the events before them handled")
    assert count(sql, "SELECT count(*) FROM messages.memberships WHERE user_id = :user", user=user) == 4
    assert membership(room, user) == (True, 7)  # no malformed leave was applied


def test_room_deleted_removes_everything_of_the_room(
    messages, dispatch, room_with_author, member, sql, is_member, membership
):
    room, author = room_with_author()
    other_room = new_id()
    member(other_room, author)
    kept = messages.post_message(other_room, author, "other room")
    posted = [messages.post_message(room, author, f"m{index}") for index in range(3)]
    messages.delete_message(posted[0]["id"], author)  # a tombstone goes too

    for _ in range(2):  # a redelivery finds nothing left to do
        dispatch("rooms", "room_deleted", {"id": room, "host_id": author})
    wait_until(
        lambda: count(sql, "SELECT count(*) FROM messages.deleted_rooms WHERE room_id = :room", room=room),
        message="room deletion handled",
    )
    wait_until(lambda: messages.last_seq(room) == 0, message="room sequence removed")
    assert count(sql, "SELECT count(*) FROM messages.messages WHERE room_id = :room", room=room) == 0
    assert not is_member(room, author)
    assert messages.history(room) == []
    assert messages.get_many([m["id"] for m in posted]) == [None, None, None]
    assert messages.get_many([kept["id"]]) == [kept]

    # A late membership event cannot bring the room back, nor can a post; nor does a late leave linger.
    dispatch("rooms", "participant_joined", {"room_id": room, "user_id": author, "membership_version": 5})
    dispatch("rooms", "participant_left", {"room_id": room, "user_id": author, "membership_version": 6})
    with pytest.raises(PermissionDenied):
        messages.post_message(room, author, "anyone?")
    assert messages.last_seq(room) == 0
    markers = dispatch_markers(dispatch, author)
    wait_until(lambda: markers.handled(membership), message="the events before them handled")
    assert count(sql, "SELECT count(*) FROM messages.memberships WHERE room_id = :room", room=room) == 0


def test_user_deleted_tombstones_their_messages_room_by_room(
    messages, dispatch, member, sql, is_member, published
):
    author, other, rooms = new_id(), new_id(), [new_id(), new_id()]
    for room in rooms:
        member(room, author)
        member(room, other)
    mine = [messages.post_message(rooms[index % 2], author, f"mine {index}") for index in range(4)]
    theirs = messages.post_message(rooms[0], other, "theirs")
    seq_before = {room: messages.last_seq(room) for room in rooms}

    dispatch("users", "user_deleted", {"id": author, "username": "gone"})
    wait_until(lambda: not messages.messages_by_user(author), message="the user's messages deleted")
    assert not any(is_member(room, author) for room in rooms)
    assert is_member(rooms[0], other)
    assert messages.history(rooms[0]) == [theirs]
    assert messages.history(rooms[1]) == []

    # Each message became a tombstone with its room's next numbers, and a message_deleted went out.
    deletes = published.wait_for("message_deleted", count=4, timeout=10)
    deletes = [d for d in deletes if d["id"] in {m["id"] for m in mine}]
    assert len(deletes) == 4
    for room in rooms:
        numbers = sorted(d["seq"] for d in deletes if d["room_id"] == room)
        assert numbers == [seq_before[room] + 1, seq_before[room] + 2]
        assert messages.last_seq(room) == seq_before[room] + 2
    assert {c["id"] for c in messages.changes_since(rooms[1], seq_before[rooms[1]])} == {
        m["id"] for m in mine if m["room_id"] == rooms[1]
    }

    # Redelivery: nothing more happens; and the deleted user can no longer post anywhere.
    dispatch("users", "user_deleted", {"id": author, "username": "gone"})
    marker_room, marker_user = new_id(), new_id()
    dispatch("users", "user_deleted", {"id": marker_user, "username": "marker"})
    wait_until(
        lambda: count(sql, "SELECT count(*) FROM messages.deleted_users WHERE user_id = :u", u=marker_user),
        message="the events before it handled",
    )
    assert {room: messages.last_seq(room) for room in rooms} == {room: seq_before[room] + 2 for room in rooms}
    member(marker_room, author)
    with pytest.raises(PermissionDenied):
        messages.post_message(marker_room, author, "from beyond")


def test_events_while_down_are_handled_on_return(start_messages, rpc_proxy, dispatch, member, is_member, sql):
    container = start_messages()  # declares the durable queues
    room, author = new_id(), new_id()
    member(room, author)
    with rpc_proxy() as proxy:
        posted = proxy.post_message(room, author, "before the outage")
    container.stop()

    joined_room, joined_user = new_id(), new_id()
    dispatch("rooms", "participant_joined", {"room_id": joined_room, "user_id": joined_user, "membership_version": 1})
    dispatch("rooms", "room_deleted", {"id": room, "host_id": author})

    start_messages()
    wait_until(lambda: is_member(joined_room, joined_user), message="the join handled after the restart")
    wait_until(
        lambda: not sql("SELECT 1 FROM messages.messages WHERE id = :id", id=posted["id"]),
        message="the room deletion handled after the restart",
    )


def test_posts_racing_a_room_deletion_leave_nothing_behind(messages, dispatch, room_with_author, sql):
    room, author = room_with_author()
    calls = [messages.post_message.call_async(room, author, f"m{index}") for index in range(30)]
    dispatch("rooms", "room_deleted", {"id": room, "host_id": author})
    calls += [messages.post_message.call_async(room, author, f"late{index}") for index in range(10)]
    outcomes = []
    for call in calls:
        try:
            outcomes.append(call.result()["seq"])
        except PermissionDenied:
            outcomes.append("denied")
    wait_until(
        lambda: sql("SELECT 1 FROM messages.deleted_rooms WHERE room_id = :room", room=room),
        message="room deletion handled",
    )
    # Whatever got in before the deletion went with it; whatever came after was refused.
    assert sql("SELECT count(*) FROM messages.messages WHERE room_id = :room", room=room) == [(0,)]
    assert messages.last_seq(room) == 0
    assert all(outcome == "denied" or isinstance(outcome, int) for outcome in outcomes)
