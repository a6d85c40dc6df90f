"""Events are published after commit, through the outbox, and survive a failed publication."""

from __future__ import annotations

from unittest import mock

import pytest

from common.errors import ValidationFailed
from common.outbox import OutboxRelay
from services.users.tests.integration.conftest import PASSWORD, register
from testing.services import wait_until

pytestmark = pytest.mark.integration


def test_user_registered_updated_and_deleted_are_published_after_commit(users, user_events, sql):
    def stored(user_id):
        return sql("SELECT name, avatar, is_active FROM users.users WHERE id = :id", id=user_id)

    user = register(users)
    [registered] = user_events.wait_for("user_registered", id=user["id"])
    assert stored(user["id"]) == [(user["name"], "", True)]  # committed before it was published
    assert registered == {
        "id": user["id"],
        "username": user["username"],
        "name": user["name"],
        "bio": "",
        "avatar": "",
        "is_active": True,
        "date_joined": user["date_joined"],
    }

    users.update_profile(user["id"], {"name": "Renamed", "avatar": "avatars/r.png"})
    [updated] = user_events.wait_for("user_updated", id=user["id"])
    assert stored(user["id"]) == [("Renamed", "avatars/r.png", True)]
    assert updated == {
        "id": user["id"],
        "username": user["username"],
        "name": "Renamed",
        "bio": "",
        "avatar": "avatars/r.png",
        "is_active": True,
        "date_joined": user["date_joined"],
        "changed": ["name", "avatar"],
    }

    users.set_active(user["id"], False)
    [deactivated] = user_events.wait_for("user_updated", id=user["id"], is_active=False)
    assert deactivated["changed"] == ["is_active"]

    users.delete_account(user["id"], PASSWORD, None)
    [deleted] = user_events.wait_for("user_deleted", id=user["id"])
    assert stored(user["id"]) == []
    assert deleted == {"id": user["id"], "username": user["username"]}


def test_nothing_is_published_for_a_rejected_write(users, user_events):
    user = register(users)
    with pytest.raises(ValidationFailed):
        users.update_profile(user["id"], {"name": None})
    users.update_profile(user["id"], {"bio": "marker"})
    user_events.wait_for("user_updated", id=user["id"], bio="marker")
    # One service's events arrive in commit order: had the rejected update emitted, it would come first.
    updates = user_events.matching("user_updated", id=user["id"])
    assert [payload["changed"] for payload in updates] == [["bio"]]


def test_an_event_whose_publication_failed_is_delivered_by_the_relay_loop(users_container, users, user_events, sql):
    relay = next(ext for ext in users_container.subextensions if isinstance(ext, OutboxRelay))
    with mock.patch.object(relay.publisher, "publish", side_effect=ConnectionError("broker unreachable")):
        user = register(users)  # committed; its publication fails (and is retried in vain meanwhile)
        pending = sql("SELECT event_type FROM users.outbox WHERE payload->>'id' = :id", id=user["id"])
        assert pending == [("user_registered",)]
    assert user_events.wait_for("user_registered", id=user["id"])[0]["username"] == user["username"]
    wait_until(
        lambda: sql("SELECT count(*) FROM users.outbox WHERE payload->>'id' = :id", id=user["id"]) == [(0,)],
        message="the relayed event to leave the outbox",
    )
