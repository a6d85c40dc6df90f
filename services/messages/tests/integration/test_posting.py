"""post_message (a socket ``text`` frame, CONTRACT §10.3, C4) and the membership check."""

from __future__ import annotations

from datetime import datetime

import pytest
from nameko.exceptions import RemoteError

from common.errors import PermissionDenied, ValidationFailed
from services.messages.tests.integration.conftest import new_id

pytestmark = pytest.mark.integration


def test_post_returns_the_stored_message(messages, room_with_author, sql):
    room, author = room_with_author()
    message = messages.post_message(room.upper(), author.upper(), "  Hello!  ")
    assert set(message) == {"id", "room_id", "user_id", "body", "edited", "created", "updated", "seq"}
    assert message["room_id"] == room and message["user_id"] == author
    assert message["body"] == "  Hello!  "  # stored as sent
    assert message["edited"] is False
    assert message["created"] == message["updated"]
    assert message["created"].endswith("+00:00")
    assert datetime.fromisoformat(message["created"]).isoformat() == message["created"]
    assert message["id"] == message["id"].lower()
    assert message["seq"] == 1
    assert sql("SELECT body, created_seq, deleted FROM messages.messages WHERE id = :id", id=message["id"]) == [
        ("  Hello!  ", 1, False)
    ]
    assert messages.last_seq(room) == 1


@pytest.mark.parametrize("body", [None, "", "   ", "\n\t "])
def test_blank_body(messages, room_with_author, body):
    room, author = room_with_author()
    with pytest.raises(ValidationFailed) as caught:
        messages.post_message(room, author, body)
    assert caught.value.errors == {"body": ["This field cannot be blank."]}
    assert caught.value.raw is True
    assert messages.last_seq(room) == 0


def test_body_over_500(messages, room_with_author):
    room, author = room_with_author()
    assert messages.post_message(room, author, "x" * 500)["body"] == "x" * 500
    with pytest.raises(ValidationFailed) as caught:
        messages.post_message(room, author, "x" * 501)
    assert caught.value.errors == {"body": ["Ensure this value has at most 500 characters (it has 501)."]}
    assert caught.value.raw is True
    assert messages.last_seq(room) == 1


def test_null_character_is_refused_not_a_database_error(messages, room_with_author):
    room, author = room_with_author()
    with pytest.raises(ValidationFailed) as caught:
        messages.post_message(room, author, "a\x00b")
    assert caught.value.errors == {"body": ["Null characters are not allowed."]}


def test_non_participant_is_denied(messages, rooms_stub, room_with_author):
    room, _ = room_with_author()
    stranger = new_id()
    with pytest.raises(PermissionDenied) as caught:
        messages.post_message(room, stranger, "hi")
    assert caught.value.message == "Permission denied"
    assert rooms_stub.asked == [(room, stranger)]
    assert messages.last_seq(room) == 0


def test_malformed_ids_are_non_participants(messages, room_with_author):
    room, author = room_with_author()
    with pytest.raises(PermissionDenied):
        messages.post_message("not-a-uuid", author, "hi")
    with pytest.raises(PermissionDenied):
        messages.post_message(room, "nope", "hi")


def test_membership_miss_asks_the_rooms_service_and_remembers_a_yes(messages, rooms_stub, is_member):
    room, user = new_id(), new_id()
    rooms_stub.participants.add((room, user))
    assert messages.post_message(room, user, "first")["seq"] == 1
    assert rooms_stub.asked == [(room, user)]
    assert is_member(room, user)

    rooms_stub.participants.clear()  # the local copy answers from now on
    assert messages.post_message(room, user, "second")["seq"] == 2
    assert rooms_stub.asked == [(room, user)]


def test_deleted_room_or_user_cannot_post_whatever_the_copy_says(messages, room_with_author, sql, rooms_stub):
    room, author = room_with_author()
    sql("INSERT INTO messages.deleted_rooms (room_id) VALUES (:room)", room=room)
    with pytest.raises(PermissionDenied):
        messages.post_message(room, author, "hi")

    room, author = room_with_author()
    sql("INSERT INTO messages.deleted_users (user_id) VALUES (:user)", user=author)
    with pytest.raises(PermissionDenied):
        messages.post_message(room, author, "hi")
    assert rooms_stub.asked == []  # a deleted room or user is not worth an RPC


def test_rooms_service_not_answering_is_an_error_not_a_denial(start_messages, rpc_proxy, room_with_author):
    start_messages(ROOMS_RPC_TIMEOUT=0.3)
    room, author = room_with_author()
    with rpc_proxy() as proxy:
        assert proxy.post_message(room, author, "a member needs no RPC")["seq"] == 1
        with pytest.raises(RemoteError) as caught:
            proxy.post_message(room, new_id(), "who knows?")
    assert caught.value.exc_type == "MembershipUnknown"
