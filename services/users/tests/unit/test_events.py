"""Event payloads and the RPC user shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

from services.users import events, schemas


def a_row(**overrides):
    values = dict(
        id=uuid.UUID("4a96f149-e353-471e-9137-8ea62fb13466"),
        username="alice",
        name="Alice",
        bio="",
        avatar="",
        email="Alice@Example.com",
        password="$argon2id$v=19$...",
        is_active=True,
        is_staff=False,
        date_joined=datetime(2025, 8, 20, 14, 1, 11, 853118, tzinfo=timezone(timedelta(hours=2))),
        last_login=None,
    )
    return SimpleNamespace(**{**values, **overrides})


def test_user_shape():
    user = schemas.user(a_row())
    assert user == {
        "id": "4a96f149-e353-471e-9137-8ea62fb13466",
        "username": "alice",
        "name": "Alice",
        "bio": "",
        "avatar": "",
        "email": "Alice@Example.com",
        "is_active": True,
        "is_staff": False,
        "date_joined": "2025-08-20T12:01:11.853118+00:00",
        "date_joined_ts": datetime(2025, 8, 20, 12, 1, 11, 853118, tzinfo=UTC).timestamp(),
    }


def test_whole_seconds_have_no_fraction():
    user = schemas.user(a_row(date_joined=datetime(2025, 1, 1, tzinfo=UTC)))
    assert user["date_joined"] == "2025-01-01T00:00:00+00:00"


def test_event_payloads_carry_no_email_or_hash():
    user = schemas.user(a_row())
    registered = events.user_registered(user)
    assert registered == {
        "id": user["id"],
        "username": "alice",
        "name": "Alice",
        "bio": "",
        "avatar": "",
        "is_active": True,
        "date_joined": user["date_joined"],
    }
    assert events.user_updated(user, ["name"]) == {**registered, "changed": ["name"]}
    assert events.user_deleted(user) == {"id": user["id"], "username": "alice"}
    assert (events.USER_REGISTERED, events.USER_UPDATED, events.USER_DELETED) == (
        "user_registered",
        "user_updated",
        "user_deleted",
    )
