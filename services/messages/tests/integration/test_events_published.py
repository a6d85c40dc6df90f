"""What the service publishes on ``messages.events``: after commit, with the change's ``seq``."""

from __future__ import annotations

import pytest

from common.errors import NotFound, ValidationFailed
from services.messages.tests.integration.conftest import of_room

pytestmark = pytest.mark.integration


def test_each_change_is_published_with_its_seq(messages, room_with_author, published):
    room, author = room_with_author()
    posted = messages.post_message(room, author, "hello")
    edited = messages.edit_message(posted["id"], author, "hello, edited")
    unchanged = messages.edit_message(posted["id"], author, "hello, edited")
    assert messages.delete_message(posted["id"], author)["seq"] == 3

    assert published.wait_for("message_created", room_id=room) == [{"room_id": room, "seq": 1, "message": posted}]
    # An identical body still broadcasts an update (C7), with the current values and seq (C6).
    assert published.wait_for("message_updated", count=2, room_id=room) == [
        {"room_id": room, "seq": 2, "message": edited},
        {"room_id": room, "seq": 2, "message": unchanged},
    ]
    assert published.wait_for("message_deleted", room_id=room) == [{"room_id": room, "seq": 3, "id": posted["id"]}]
    assert [kind for kind, _ in of_room(published, room)] == [
        "message_created",
        "message_updated",
        "message_updated",
        "message_deleted",
    ]


def test_nothing_is_published_for_a_refused_change(messages, room_with_author, published):
    room, author = room_with_author()
    with pytest.raises(ValidationFailed):
        messages.post_message(room, author, " ")
    posted = messages.post_message(room, author, "ok")
    with pytest.raises(ValidationFailed):
        messages.edit_message(posted["id"], author, "")
    with pytest.raises(NotFound):
        messages.delete_message(posted["id"], author, room_id=author)
    marker = messages.post_message(room, author, "marker")
    published.wait_for("message_created", seq=marker["seq"], room_id=room)
    published.drain(quiet=0.3)
    assert [kind for kind, _ in of_room(published, room)] == ["message_created", "message_created"]


def test_published_order_follows_seq_under_concurrency(messages, room_with_author, published):
    room, author = room_with_author()
    calls = [messages.post_message.call_async(room, author, f"m{index}") for index in range(20)]
    for call in calls:
        call.result()
    events = published.wait_for("message_created", count=20, room_id=room)
    assert [event["seq"] for event in events] == list(range(1, 21))
