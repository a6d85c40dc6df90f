"""Catch-up by sequence number (B7b): how one message's latest change is reported, a pure function."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from services.messages import events, schemas

ROOM = uuid.uuid4()
AUTHOR = uuid.uuid4()


def row(created_seq: int, seq: int, *, deleted: bool = False, edited: bool = False, body: str = "hi"):
    created = datetime(2025, 8, 20, 12, 1, 11, tzinfo=UTC)
    return SimpleNamespace(
        id=uuid.uuid4(),
        room_id=ROOM,
        user_id=AUTHOR,
        body="" if deleted else body,
        edited=edited,
        created=created,
        updated=created + timedelta(microseconds=853118) if edited else created,
        seq=seq,
        created_seq=created_seq,
        deleted=deleted,
    )


def test_created_after_since_is_new_with_current_values():
    message = row(created_seq=5, seq=7, edited=True, body="edited")
    change = schemas.change(message, since_seq=4)
    assert change == {"action": "new", "seq": 7, "message": schemas.message(message)}
    assert change["message"]["body"] == "edited" and change["message"]["edited"] is True


def test_created_before_and_edited_after_since_is_an_update():
    message = row(created_seq=2, seq=9, edited=True)
    assert schemas.change(message, since_seq=4) == {"action": "update", "seq": 9, "message": schemas.message(message)}


def test_created_at_since_is_not_new():
    message = row(created_seq=4, seq=6, edited=True)
    assert schemas.change(message, since_seq=4)["action"] == "update"


def test_deleted_is_a_delete():
    message = row(created_seq=2, seq=8, deleted=True)
    assert schemas.change(message, since_seq=4) == {"action": "delete", "id": str(message.id), "seq": 8}


def test_created_and_deleted_after_since_is_still_a_delete():
    message = row(created_seq=5, seq=6, deleted=True)
    assert schemas.change(message, since_seq=4) == {"action": "delete", "id": str(message.id), "seq": 6}


def test_a_change_not_after_since_is_a_caller_error():
    with pytest.raises(ValueError):
        schemas.change(row(created_seq=1, seq=3), since_seq=3)


def test_message_shape_and_datetime_format():
    message = row(created_seq=1, seq=2, edited=True)
    message.created = datetime(2025, 8, 20, 14, 1, 11, tzinfo=timezone(timedelta(hours=2)))
    assert schemas.message(message) == {
        "id": str(message.id),
        "room_id": str(ROOM),
        "user_id": str(AUTHOR),
        "body": "hi",
        "edited": True,
        "created": "2025-08-20T12:01:11+00:00",
        "updated": "2025-08-20T12:01:11.853118+00:00",
        "seq": 2,
    }


def test_event_payloads():
    message = schemas.message(row(created_seq=3, seq=3))
    assert events.message_created(message) == {"room_id": str(ROOM), "seq": 3, "message": message}
    assert events.message_updated(message) == {"room_id": str(ROOM), "seq": 3, "message": message}
    assert events.message_deleted(str(ROOM), 4, message["id"]) == {"room_id": str(ROOM), "seq": 4, "id": message["id"]}


def test_consumed_payloads():
    room, host = uuid.uuid4(), uuid.uuid4()
    assert events.created_room_host({"id": str(room), "host_id": str(host), "name": "x"}) == (room, host)
    assert events.created_room_host({"room": {"id": str(room), "host_id": str(host)}}) == (room, host)
    assert events.created_room_host({"id": str(room)}) is None
    assert events.created_room_host("nonsense") is None
    ids = {"room_id": str(room), "user_id": str(host)}
    assert events.membership({**ids, "membership_version": 12}) == (room, host, 12)
    assert events.membership(ids) == (room, host, 0)  # an event from before versions
    assert events.membership({**ids, "membership_version": None}) == (room, host, 0)
    for bad in ("12", -1, True, 1.5, [1]):
        assert events.membership({**ids, "membership_version": bad}) is None
    assert events.membership({"room_id": "x", "user_id": str(host)}) is None
    assert events.deleted_room({"id": str(room), "host_id": str(host)}) == room
    assert events.deleted_user({"id": str(host), "username": "bob"}) == host
    assert events.deleted_user(None) is None
