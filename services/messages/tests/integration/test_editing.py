"""edit_message and delete_message (``updateMessage``/``deleteMessage``, socket ``update``/``delete``):
checks in order, C2, C6, A12, tombstones."""

from __future__ import annotations

from datetime import datetime

import pytest

from common.errors import NotFound, PermissionDenied, ValidationFailed
from services.messages.tests.integration.conftest import new_id

pytestmark = pytest.mark.integration


@pytest.fixture
def posted(messages, room_with_author):
    room, author = room_with_author()
    return messages.post_message(room, author, "original")


def test_edit_changes_body_edited_updated_and_seq(messages, posted, sql):
    edited = messages.edit_message(posted["id"].upper(), posted["user_id"], "changed")
    assert edited["id"] == posted["id"]
    assert edited["body"] == "changed"
    assert edited["edited"] is True
    assert datetime.fromisoformat(edited["updated"]) > datetime.fromisoformat(posted["updated"])
    assert edited["created"] == posted["created"]
    assert edited["seq"] == posted["seq"] + 1
    assert sql("SELECT created_seq, seq FROM messages.messages WHERE id = :id", id=posted["id"]) == [(1, 2)]
    assert messages.get_many([posted["id"]]) == [edited]


def test_identical_edit_writes_nothing(messages, posted, sql):
    before = sql("SELECT * FROM messages.messages WHERE id = :id", id=posted["id"])
    same = messages.edit_message(posted["id"], posted["user_id"], "original")
    assert same == posted  # edited, updated and seq unchanged (C6)
    assert sql("SELECT * FROM messages.messages WHERE id = :id", id=posted["id"]) == before
    assert messages.last_seq(posted["room_id"]) == posted["seq"]

    changed = messages.edit_message(posted["id"], posted["user_id"], "new text")
    assert messages.edit_message(posted["id"], posted["user_id"], "new text") == changed


def test_edit_body_rules(messages, posted):
    with pytest.raises(ValidationFailed) as caught:
        messages.edit_message(posted["id"], posted["user_id"], "   ")
    assert caught.value.errors == {"body": ["This field cannot be blank."]} and caught.value.raw is True
    with pytest.raises(ValidationFailed) as caught:
        messages.edit_message(posted["id"], posted["user_id"], "y" * 501)
    assert caught.value.errors == {"body": ["Ensure this value has at most 500 characters (it has 501)."]}
    assert messages.get_many([posted["id"]]) == [posted]


def test_edit_checks_come_in_order(messages, posted):
    # Unknown or malformed message, before anything else (even a bad body from a stranger).
    for message_id in (new_id(), "nope", None):
        with pytest.raises(NotFound) as caught:
            messages.edit_message(message_id, new_id(), "")
        assert caught.value.message == "Message not found"
    # Another room's message from the socket's room: not found (C2), even for its author.
    with pytest.raises(NotFound):
        messages.edit_message(posted["id"], posted["user_id"], "x", room_id=new_id())
    with pytest.raises(NotFound):
        messages.edit_message(posted["id"], posted["user_id"], "x", room_id="garbage")
    # Not the author: denied before the body is looked at.
    with pytest.raises(PermissionDenied) as caught:
        messages.edit_message(posted["id"], new_id(), "")
    assert caught.value.message == "Permission denied"
    # The right room, in any UUID form.
    assert messages.edit_message(posted["id"], posted["user_id"], "x", room_id=posted["room_id"].upper())["body"] == "x"
    assert messages.get_many([posted["id"]])[0]["body"] == "x"


def test_author_needs_no_participation(messages, posted, sql):
    sql("DELETE FROM messages.memberships WHERE room_id = :room", room=posted["room_id"])
    assert messages.edit_message(posted["id"], posted["user_id"], "still mine")["body"] == "still mine"
    assert messages.delete_message(posted["id"], posted["user_id"])["id"] == posted["id"]


def test_delete_leaves_a_tombstone(messages, posted, sql):
    deleted = messages.delete_message(posted["id"].upper(), posted["user_id"], room_id=posted["room_id"])
    assert deleted == {"id": posted["id"], "room_id": posted["room_id"], "seq": posted["seq"] + 1}
    assert sql("SELECT body, deleted, seq FROM messages.messages WHERE id = :id", id=posted["id"]) == [
        ("", True, posted["seq"] + 1)
    ]
    assert messages.get_many([posted["id"]]) == [None]
    assert messages.history(posted["room_id"]) == []
    # A tombstone is gone for every further edit or delete.
    with pytest.raises(NotFound):
        messages.delete_message(posted["id"], posted["user_id"])
    with pytest.raises(NotFound):
        messages.edit_message(posted["id"], posted["user_id"], "back")
    assert messages.last_seq(posted["room_id"]) == posted["seq"] + 1


def test_delete_checks(messages, posted):
    with pytest.raises(NotFound):
        messages.delete_message(new_id(), posted["user_id"])
    with pytest.raises(NotFound):
        messages.delete_message(posted["id"], posted["user_id"], room_id=new_id())
    with pytest.raises(PermissionDenied):
        messages.delete_message(posted["id"], new_id())
    with pytest.raises(PermissionDenied):
        messages.delete_message(posted["id"], "not-a-uuid")
    assert messages.get_many([posted["id"]]) == [posted]
    assert messages.last_seq(posted["room_id"]) == posted["seq"]
