"""The RPC shapes: lowercase ids, ``isoformat()`` in UTC with ``+00:00`` (CONTRACT §2.3), event payloads."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from services.rooms import events, schemas


def test_room_shape_and_utc_times():
    room_id, host_id = uuid.uuid4(), uuid.uuid4()
    paris = timezone(timedelta(hours=2))
    row = SimpleNamespace(
        id=room_id, host_id=host_id, topic_id=7, name="Room", slug="room", description="",
        created=datetime(2025, 8, 20, 14, 1, 11, 853118, tzinfo=paris),
        updated=datetime(2025, 8, 20, 14, 1, 11, tzinfo=paris),
        participant_count=3,
    )
    assert schemas.room(row) == {
        "id": str(room_id),
        "name": "Room",
        "slug": "room",
        "host_id": str(host_id),
        "topic_id": 7,
        "description": "",
        "created": "2025-08-20T12:01:11.853118+00:00",
        "updated": "2025-08-20T12:01:11+00:00",  # no fraction when microseconds are 0
        "participant_count": 3,
    }


def test_topic_shape():
    assert schemas.topic(SimpleNamespace(id=1, name="Python", room_count=0)) == {
        "id": 1, "name": "Python", "room_count": 0,
    }


def test_event_payloads():
    assert events.room_deleted("r", "h") == {"id": "r", "host_id": "h"}
    assert events.participant_joined("r", "u", 7) == {"room_id": "r", "user_id": "u", "membership_version": 7}
    assert events.participant_left("r", "u", 8) == {"room_id": "r", "user_id": "u", "membership_version": 8}
    room = {"id": "r", "name": "Room"}
    assert events.room_created(room) == room and events.room_created(room) is not room


def test_room_details_are_added_only_when_asked():
    first, second = uuid.uuid4(), uuid.uuid4()
    moment = datetime(2025, 8, 20, 12, tzinfo=timezone.utc)
    row = SimpleNamespace(
        id=uuid.uuid4(), host_id=first, topic_id=7, name="Room", slug="room", description="", created=moment,
        updated=moment, participant_count=2, participant_ids=[first, second], topic_name="Python",
    )
    plain = schemas.room(row)
    assert "participant_ids" not in plain and "topic" not in plain
    assert schemas.room(row, {"participant_ids", "topic"}) == {
        **plain, "participant_ids": [str(first), str(second)], "topic": {"id": 7, "name": "Python"},
    }
    assert schemas.room(SimpleNamespace(**{**vars(row), "participant_ids": None}), {"participant_ids"}) == {
        **plain, "participant_ids": [],  # array_agg over no participant is NULL
    }
