"""history, messages_by_user, messages_after, get_many and last_seq: orders, paging and errors (B2, B7)."""

from __future__ import annotations

import pytest

from common.errors import NotFound, ValidationFailed
from services.messages.tests.integration.conftest import new_id

pytestmark = pytest.mark.integration


@pytest.fixture
def room_of_five(messages, room_with_author):
    room, author = room_with_author()
    posted = [messages.post_message(room, author, f"m{index}") for index in range(5)]
    return room, author, posted


def test_history_ascending_with_last_and_before(messages, room_of_five):
    room, _, posted = room_of_five
    assert messages.history(room) == posted
    assert messages.history(room.upper(), last=2) == posted[3:]
    assert messages.history(room, last=0) == []
    assert messages.history(room, last=50) == posted
    assert messages.history(room, before=posted[3]["id"]) == posted[:3]
    assert messages.history(room, last=2, before=posted[3]["id"].upper()) == posted[1:3]
    assert messages.history(room, before=posted[0]["id"]) == []
    # Without last, the newest cap.
    assert messages.history(room, cap=3) == posted[2:]
    assert messages.history(room, last=4, cap=2) == posted[3:]


def test_history_skips_tombstones_and_orders_ties_by_id(messages, room_of_five, sql):
    room, author, posted = room_of_five
    messages.delete_message(posted[2]["id"], author)
    assert messages.history(room) == posted[:2] + posted[3:]
    # Same creation instant: the id breaks the tie (C11).
    sql("UPDATE messages.messages SET created = '2025-01-01T00:00:00Z' WHERE room_id = :room", room=room)
    ids = [message["id"] for message in messages.history(room)]
    assert ids == sorted(ids)


def test_history_errors(messages, room_of_five, room_with_author):
    room, author, posted = room_of_five
    with pytest.raises(ValidationFailed) as caught:
        messages.history(room, last=-1)
    assert caught.value.errors == {"last": ["Ensure this value is greater than or equal to 0."]}
    assert caught.value.raw is False
    for before in (new_id(), "garbage"):
        with pytest.raises(NotFound) as caught:
            messages.history(room, before=before)
        assert caught.value.message == "Message not found"
    other_room, other_author = room_with_author()
    elsewhere = messages.post_message(other_room, other_author, "elsewhere")
    with pytest.raises(NotFound):
        messages.history(room, before=elsewhere["id"])
    messages.delete_message(posted[1]["id"], author)
    with pytest.raises(NotFound):
        messages.history(room, before=posted[1]["id"])
    assert messages.history(new_id()) == []
    assert messages.history("not-a-room") == []


def test_messages_by_user_newest_first_in_every_room(messages, member):
    author, rooms = new_id(), [new_id(), new_id()]
    for room in rooms:
        member(room, author)
    mine = [messages.post_message(rooms[index % 2], author, f"m{index}") for index in range(5)]
    member(rooms[0], other := new_id())
    messages.post_message(rooms[0], other, "not mine")
    messages.delete_message(mine[4]["id"], author)
    newest_first = list(reversed(mine[:4]))
    assert messages.messages_by_user(author.upper()) == newest_first
    assert messages.messages_by_user(author, first=2) == newest_first[:2]
    assert messages.messages_by_user(author, first=2, offset=3) == newest_first[3:]
    assert messages.messages_by_user(author, first=0) == []
    assert messages.messages_by_user(author, cap=3) == newest_first[:3]
    assert messages.messages_by_user(new_id()) == []
    assert messages.messages_by_user("nobody") == []
    with pytest.raises(ValidationFailed) as caught:
        messages.messages_by_user(author, first=-1, offset=-1)
    assert caught.value.errors == {
        "first": ["Ensure this value is greater than or equal to 0."],
        "offset": ["Ensure this value is greater than or equal to 0."],
    }


def test_messages_after(messages, room_of_five, room_with_author):
    room, author, posted = room_of_five
    assert messages.messages_after(room, posted[1]["id"]) == posted[2:]
    assert messages.messages_after(room, posted[4]["id"]) == []
    edited = messages.edit_message(posted[3]["id"], author, "edited")
    messages.delete_message(posted[2]["id"], author)
    # Current values; tombstones left out; a deleted anchor still marks its place.
    assert messages.messages_after(room, posted[1]["id"]) == [edited, posted[4]]
    assert messages.messages_after(room, posted[2]["id"]) == [edited, posted[4]]
    other_room, other_author = room_with_author()
    elsewhere = messages.post_message(other_room, other_author, "elsewhere")
    for anchor in (elsewhere["id"], new_id(), "garbage"):
        with pytest.raises(NotFound) as caught:
            messages.messages_after(room, anchor)
        assert caught.value.message == "Message not found"


def test_get_many_is_aligned(messages, room_of_five):
    _, author, posted = room_of_five
    messages.delete_message(posted[0]["id"], author)
    ids = [posted[2]["id"], "garbage", posted[0]["id"], new_id(), posted[1]["id"].upper(), posted[2]["id"]]
    assert messages.get_many(ids) == [posted[2], None, None, None, posted[1], posted[2]]
    assert messages.get_many([]) == []


def test_last_seq(messages, room_of_five):
    room, _, _ = room_of_five
    assert messages.last_seq(room) == 5
    assert messages.last_seq(new_id()) == 0
    assert messages.last_seq("garbage") == 0
