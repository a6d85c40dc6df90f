"""The per-room change sequence (B7a) and catch-up by sequence number (B7b)."""

from __future__ import annotations

import pytest

from common.errors import ValidationFailed
from services.messages.tests.integration.conftest import DatabaseTraffic, new_id, of_room

pytestmark = pytest.mark.integration


def test_every_change_takes_the_next_number_of_its_room(messages, room_with_author, member):
    room, author = room_with_author()
    other_room = new_id()
    member(other_room, author)
    first = messages.post_message(room, author, "one")
    elsewhere = messages.post_message(other_room, author, "elsewhere")
    second = messages.post_message(room, author, "two")
    edited = messages.edit_message(first["id"], author, "one, edited")
    unchanged = messages.edit_message(first["id"], author, "one, edited")
    deleted = messages.delete_message(second["id"], author)
    third = messages.post_message(room, author, "three")
    assert [first["seq"], second["seq"], edited["seq"], deleted["seq"], third["seq"]] == [1, 2, 3, 4, 5]
    assert unchanged["seq"] == 3
    assert elsewhere["seq"] == 1  # each room counts on its own
    assert messages.last_seq(room) == 5
    assert messages.last_seq(other_room) == 1


def test_concurrent_posts_get_distinct_consecutive_numbers(messages, room_with_author, member):
    room, author = room_with_author()
    authors = [author] + [new_id() for _ in range(4)]
    for someone in authors[1:]:
        member(room, someone)
    calls = [messages.post_message.call_async(room, authors[index % 5], f"m{index}") for index in range(50)]
    posted = [call.result() for call in calls]
    assert sorted(message["seq"] for message in posted) == list(range(1, 51))
    assert messages.last_seq(room) == 50
    # Creation order follows the sequence, so history and catch-up agree.
    assert [message["seq"] for message in messages.history(room)] == list(range(1, 51))


def test_concurrent_edits_and_deletes_keep_the_sequence_whole(messages, room_with_author):
    room, author = room_with_author()
    posted = [messages.post_message(room, author, f"m{index}") for index in range(10)]
    calls = [messages.edit_message.call_async(message["id"], author, "edited") for message in posted[:5]]
    calls += [messages.delete_message.call_async(message["id"], author) for message in posted[5:]]
    calls += [messages.post_message.call_async(room, author, f"late{index}") for index in range(5)]
    results = [call.result() for call in calls]
    assert sorted(result["seq"] for result in results) == list(range(11, 26))
    changes = messages.changes_since(room, 0)
    assert [change["seq"] for change in changes] == sorted(change["seq"] for change in changes)
    assert len(changes) == 15  # one per message, at its latest change


def test_changes_since_collapses_to_the_latest_change(messages, room_with_author):
    room, author = room_with_author()
    old = messages.post_message(room, author, "old")  # 1
    old_edited_later = messages.post_message(room, author, "old, edited later")  # 2
    old_deleted_later = messages.post_message(room, author, "old, deleted later")  # 3
    since = messages.last_seq(room)
    new = messages.post_message(room, author, "new")  # 4
    new_edited = messages.edit_message(new["id"], author, "new, edited")  # 5
    updated = messages.edit_message(old_edited_later["id"], author, "edited")  # 6
    messages.delete_message(old_deleted_later["id"], author)  # 7
    gone = messages.post_message(room, author, "created and deleted")  # 8
    messages.delete_message(gone["id"], author)  # 9
    plain_new = messages.post_message(room, author, "plain new")  # 10

    assert messages.changes_since(room, since) == [
        {"action": "new", "seq": 5, "message": new_edited},
        {"action": "update", "seq": 6, "message": updated},
        {"action": "delete", "id": old_deleted_later["id"], "seq": 7},
        {"action": "delete", "id": gone["id"], "seq": 9},
        {"action": "new", "seq": 10, "message": plain_new},
    ]
    assert messages.changes_since(room, 9) == [{"action": "new", "seq": 10, "message": plain_new}]
    assert messages.changes_since(room, 10) == []
    assert messages.changes_since(room, 1000) == []
    everything = messages.changes_since(room.upper(), 0)
    assert [change["seq"] for change in everything] == [1, 5, 6, 7, 9, 10]
    assert everything[0] == {"action": "new", "seq": 1, "message": old}


def test_changes_since_reads_in_pages(messages, room_with_author, monkeypatch):
    from services.messages import service

    monkeypatch.setattr(service, "CATCH_UP_PAGE", 3)  # the container runs in this process
    room, author = room_with_author()
    posted = [messages.post_message(room, author, f"m{index}") for index in range(8)]
    changes = messages.changes_since(room, 1)
    assert changes == [{"action": "new", "seq": m["seq"], "message": m} for m in posted[1:]]
    assert messages.messages_after(room, posted[0]["id"]) == posted[1:]


def test_changes_since_arguments(messages):
    assert messages.changes_since(new_id(), 0) == []
    assert messages.changes_since("garbage", 0) == []
    with pytest.raises(ValidationFailed) as caught:
        messages.changes_since(new_id(), -1)
    assert caught.value.errors == {"since_seq": ["Ensure this value is greater than or equal to 0."]}


def test_two_containers_share_the_work_and_keep_each_room_gapless(start_messages, rpc_proxy, member, events_of):
    """Two messages containers, each with its own connection pool and outbox relay as two processes
    would have, consume the same RPC queue: the sequence is taken in the database and the relays take
    turns under an advisory lock, so numbers stay unique and gapless per room and each room's events
    go out once each, in sequence order."""
    containers = [start_messages(), start_messages()]
    traffic = [DatabaseTraffic(container) for container in containers]
    published = events_of("messages")
    rooms = [new_id(), new_id()]
    authors = [new_id() for _ in range(4)]
    for room in rooms:
        for author in authors:
            member(room, author)
    with rpc_proxy() as proxy, traffic[0].recording() as first, traffic[1].recording() as second:
        calls = [
            proxy.post_message.call_async(rooms[index % 2], authors[index % 4], f"m{index}") for index in range(60)
        ]
        posted = [call.result() for call in calls]
        edits = [proxy.edit_message.call_async(message["id"], message["user_id"], "edited") for message in posted[:10]]
        edited = [call.result() for call in edits]
        for room in rooms:
            assert proxy.last_seq(room) == 35
            in_created_order = sorted((m for m in posted if m["room_id"] == room), key=lambda m: m["seq"])
            assert [m["id"] for m in proxy.history(room)] == [m["id"] for m in in_created_order]
    for recorded in (first, second):  # both took a share of the posts
        assert any("INSERT INTO messages.messages" in statement for statement in recorded.statements)

    for room in rooms:
        numbers = [m["seq"] for m in posted if m["room_id"] == room] + [m["seq"] for m in edited if m["room_id"] == room]
        assert sorted(numbers) == list(range(1, 36))
        created = published.wait_for("message_created", count=30, room_id=room)
        updated = published.wait_for("message_updated", count=5, room_id=room)
        assert [event["seq"] for event in created] == list(range(1, 31))
        assert [event["seq"] for event in updated] == list(range(31, 36))
    published.drain()
    assert [len(of_room(published, room)) for room in rooms] == [35, 35]  # none twice
