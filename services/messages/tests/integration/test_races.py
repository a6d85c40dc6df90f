"""Posts, edits and deletions racing each other and the deletion of their room or author, made
deterministic: a test holds a transaction open and waits until PostgreSQL reports the other side
waiting for one of its locks (``pg_stat_activity``), then lets go. No timing is assumed."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from common.errors import NotFound, PermissionDenied
from services.messages.storage import MessageStorage
from services.messages.tests.integration.conftest import new_id
from testing.services import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def lock_waiters(sql) -> Callable[[], int]:
    """How many sessions of this run's database are waiting for a lock."""
    return lambda: sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )[0][0]


@pytest.fixture
def held(db) -> Callable[[], Any]:
    """``with held() as storage:`` a :class:`MessageStorage` whose transaction stays open (and its locks
    held) until the block ends, then commits."""

    @contextlib.contextmanager
    def open_transaction() -> Iterator[MessageStorage]:
        with Session(db) as session, session.begin():
            yield MessageStorage(session, None, None, [])

    return open_transaction


def deleting(storage: MessageStorage, deletion: str, room: str, author: str) -> None:
    if deletion == "room":
        storage.delete_room(uuid.UUID(room))
    else:
        storage.forget_user(uuid.UUID(author))


@pytest.mark.parametrize("deletion", ["room", "user"])
def test_a_post_that_meets_a_deletion_in_flight_waits_for_it_and_stores_nothing(
    messages, room_with_author, held, lock_waiters, sql, rooms_stub, deletion
):
    room, author = room_with_author()
    messages.post_message(room, author, "before")
    with held() as storage:
        deleting(storage, deletion, room, author)
        call = messages.post_message.call_async(room, author, "during")
        wait_until(lambda: lock_waiters() == 1, message="the post waiting for the deletion")
    with pytest.raises(PermissionDenied):
        call.result()
    assert sql("SELECT count(*) FROM messages.messages WHERE body = 'during' AND room_id = :room", room=room) == [(0,)]
    assert messages.last_seq(room) == (0 if deletion == "room" else 1)
    # A deleted room or user is not worth an RPC. (Not ``asked == []``: a request an earlier test left
    # unanswered in the rooms queue may reach this test's stub.)
    assert (room, author) not in rooms_stub.asked


@pytest.mark.parametrize("deletion", ["room", "user"])
def test_a_deletion_that_meets_a_post_in_flight_waits_for_it_and_takes_its_message(
    messages, room_with_author, member, held, lock_waiters, dispatch, sql, deletion
):
    room, author = room_with_author()
    member(room, other := new_id())
    # Someone else's message: the author's only one is the post in flight, so that nothing but the post
    # itself can hold the deletion back (its cascade has no other message of the author to wait for).
    messages.post_message(room, other, "before")
    # Hold the room's sequence row, so the post stops there with its other locks taken.
    with held() as storage:
        storage.session.execute(
            text("SELECT 1 FROM messages.room_sequences WHERE room_id = :room FOR UPDATE"), {"room": room}
        )
        call = messages.post_message.call_async(room, author, "during")
        wait_until(lambda: lock_waiters() == 1, message="the post waiting for the room's row")
        if deletion == "room":
            dispatch("rooms", "room_deleted", {"id": room, "host_id": author})
        else:
            dispatch("users", "user_deleted", {"id": author, "username": "gone"})
        wait_until(lambda: lock_waiters() == 2, message="the deletion waiting for the post")
    during = call.result()
    if deletion == "room":
        wait_until(lambda: messages.last_seq(room) == 0, message="the room's deletion done")
        assert sql("SELECT count(*) FROM messages.messages WHERE room_id = :room", room=room) == [(0,)]
    else:
        wait_until(lambda: messages.messages_by_user(author) == [], message="the user's messages tombstoned")
        assert sql("SELECT deleted FROM messages.messages WHERE id = :id", id=during["id"]) == [(True,)]
    with pytest.raises(PermissionDenied):
        messages.post_message(room, author, "after")


def test_a_room_deletion_queued_before_a_post_goes_first_without_a_deadlock(
    messages, room_with_author, held, lock_waiters, dispatch, sql
):
    """Both wait for the room's sequence row, the deletion first. The post holds its membership row
    meanwhile, which the deletion removes: the deletion must not take the room's row before that (it
    would then wait for the post, which waits for it)."""
    room, author = room_with_author()
    messages.post_message(room, author, "before")
    with held() as storage:
        storage.session.execute(
            text("SELECT 1 FROM messages.room_sequences WHERE room_id = :room FOR UPDATE"), {"room": room}
        )
        dispatch("rooms", "room_deleted", {"id": room, "host_id": author})
        wait_until(lambda: lock_waiters() == 1, message="the deletion waiting for the room's row")
        call = messages.post_message.call_async(room, author, "during")
        wait_until(lambda: lock_waiters() == 2, message="the post waiting too")
    with pytest.raises(PermissionDenied):
        call.result()
    wait_until(lambda: messages.last_seq(room) == 0, message="the room's deletion done")
    assert sql("SELECT count(*) FROM messages.messages WHERE room_id = :room", room=room) == [(0,)]


def test_edits_and_deletions_of_one_message_each_see_the_one_before(messages, room_with_author):
    room, author = room_with_author()
    posted = messages.post_message(room, author, "original")
    calls = []
    for index in range(12):
        if index % 4 == 3:
            calls.append(messages.delete_message.call_async(posted["id"], author))
        else:
            calls.append(messages.edit_message.call_async(posted["id"], author, f"edit {index}"))
    done, not_found = [], 0
    for call in calls:
        try:
            done.append(call.result())
        except NotFound:
            not_found += 1
    deletions = [result for result in done if "body" not in result]
    # One deletion got through; whatever came after it found no message, whatever came before it
    # changed a live one, each with the next number.
    assert len(deletions) == 1
    assert len(done) + not_found == len(calls)
    assert sorted(result["seq"] for result in done) == list(range(2, len(done) + 2))
    assert deletions[0]["seq"] == len(done) + 1
    assert messages.changes_since(room, 0) == [{"action": "delete", "id": posted["id"], "seq": len(done) + 1}]
