"""What each chat operation costs the database, counted: statements, commits and rollbacks per call.

Every one of them is a round trip to PostgreSQL (so is the BEGIN before a transaction's first statement),
and each statement also costs the service its trip through SQLAlchemy and psycopg. Budgets, so that a
change that adds one fails here; the guarantees those statements keep are tested in ``test_races.py``,
``test_posting.py`` and ``test_sequence.py``.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.dialects import postgresql


pytestmark = pytest.mark.integration


def compiled(expression) -> str:
    return str(expression.compile(dialect=postgresql.dialect()))


def test_a_member_posts_in_one_statement_its_event_included(messages, room_with_author, database_traffic):
    room, author = room_with_author()
    for body in ("the room's first message", "a later one"):
        with database_traffic.recording() as recorded:
            messages.post_message(room, author, body)
        assert recorded.verbs() == ["WITH"], recorded.statements
        assert "INSERT INTO messages.outbox" in recorded.statements[0]
        assert (recorded.commits, recorded.rollbacks) == (1, 0)
        assert not any("pg_advisory" in statement for statement in recorded.statements)
        # What the event carries, built by PostgreSQL, is checked against the reply in
        # test_events_published.py.


def test_edit_and_delete_lock_and_read_in_one_statement_and_write_in_one(
    messages, room_with_author, database_traffic
):
    room, author = room_with_author()
    posted = messages.post_message(room, author, "original")

    with database_traffic.recording() as edit:
        messages.edit_message(posted["id"], author, "changed")
    with database_traffic.recording() as same_edit:
        messages.edit_message(posted["id"], author, "changed")
    with database_traffic.recording() as deletion:
        messages.delete_message(posted["id"], author)

    # Locked read; the write, taking the number in the same statement; the outbox insert.
    assert edit.verbs() == ["SELECT", "WITH", "INSERT"], edit.statements
    assert deletion.verbs() == ["SELECT", "WITH", "INSERT"], deletion.statements
    # An identical body writes nothing but still emits (C6, C7).
    assert same_edit.verbs() == ["SELECT", "INSERT"], same_edit.statements
    for recorded in (edit, same_edit, deletion):
        assert (recorded.commits, recorded.rollbacks) == (1, 0)


def test_a_page_of_history_before_a_message_is_one_statement(messages, room_with_author, database_traffic):
    room, author = room_with_author()
    posted = [messages.post_message(room, author, f"m{index}") for index in range(3)]
    with database_traffic.recording() as recorded:
        assert messages.history(room, before=posted[2]["id"]) == posted[:2]
    assert recorded.verbs() == ["SELECT"], recorded.statements


def test_a_post_writes_no_info_log_line(messages, room_with_author, caplog):
    """A log line per chat message is a measurable share of the service's CPU at chat rates."""
    room, author = room_with_author()
    caplog.set_level(logging.INFO)
    messages.post_message(room, author, "not logged")
    assert [record.getMessage() for record in caplog.records if record.name.startswith("services.")] == []
    caplog.set_level(logging.DEBUG, logger="services.messages.service")
    messages.post_message(room, author, "logged at debug")
    assert "message posted" in [record.getMessage() for record in caplog.records]
