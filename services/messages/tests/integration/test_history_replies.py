"""The history reply: PostgreSQL writes its ids and times as text, so these pin the wire format (lowercase
ids, ``isoformat()`` in UTC with ``+00:00``, no fraction when the microseconds are 0; CONTRACT §2.3) to be
exactly what ``schemas.message`` makes of the stored rows, and check that a history read runs one
statement built once, whatever the values (so SQLAlchemy reuses its cache key instead of walking it).
"""

from __future__ import annotations


import eventlet
import pytest
from sqlalchemy import event

from common.db import Storage
from common.outbox import OutboxRelay
from services.messages import schemas
from testing.times import TIMES

pytestmark = pytest.mark.integration



def test_history_replies_exactly_as_schemas_message(messages, room_with_author, sql):
    room, author = room_with_author()
    posted = [messages.post_message(room, author, f"m{index}") for index in range(len(TIMES))]
    messages.edit_message(posted[1]["id"], author, "edited")
    for index, (message, stored) in enumerate(zip(posted, TIMES)):
        # Each message created and updated at times of every shape (a century back: before any other).
        sql("UPDATE messages.messages SET created = CAST(:created AS timestamptz) - make_interval(years => :back),"
            " updated = :updated WHERE id = :id",
            id=message["id"], created=stored, back=100 - index, updated=list(TIMES)[-1 - index])
    rows = sql("SELECT * FROM messages.messages WHERE room_id = :room ORDER BY created, id", room=room)
    expected = [schemas.message(row) for row in rows]
    spelled = {message["id"]: message for message in expected}
    assert spelled[posted[0]["id"]]["updated"] == "2026-03-29T01:30:00.500000+00:00"
    assert spelled[posted[3]["id"]]["updated"] == "2025-08-20T12:01:11+00:00"
    assert spelled[posted[1]["id"]]["edited"] is True and spelled[posted[1]["id"]]["body"] == "edited"

    assert messages.history(room) == expected
    assert messages.history(room.upper(), last=2, before=expected[3]["id"]) == expected[1:3]


def test_a_history_read_runs_one_statement_built_once(messages_container, messages, room_with_author):
    engine = next(dep for dep in messages_container.dependencies if isinstance(dep, Storage)).engine
    relays = [ext for ext in messages_container.subextensions if isinstance(ext, OutboxRelay)]
    recorded: list = []

    def record(conn, statement, multiparams, params, execution_options) -> None:
        if not any(eventlet.getcurrent() is relay._loop for relay in relays):
            recorded.append(statement)

    room, author = room_with_author()
    other_room, other_author = room_with_author()
    posted = [messages.post_message(room, author, f"m{index}") for index in range(3)]
    other = [messages.post_message(other_room, other_author, f"o{index}") for index in range(3)]

    event.listen(engine, "before_execute", record)
    try:
        statements = {}
        for shape, calls in {
            "newest": [lambda: messages.history(room), lambda: messages.history(other_room, last=2)],
            "before": [
                lambda: messages.history(room, before=posted[2]["id"]),
                lambda: messages.history(other_room, last=1, before=other[1]["id"]),
            ],
        }.items():
            statements[shape] = []
            for call in calls:
                recorded.clear()
                assert call()
                assert len(recorded) == 1, recorded
                statements[shape].append(recorded[0])
    finally:
        event.remove(engine, "before_execute", record)
    for shape, (first, second) in statements.items():
        assert first is second, shape
    assert statements["newest"][0] is not statements["before"][0]
