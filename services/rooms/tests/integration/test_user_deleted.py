"""The users service's ``user_deleted`` event: the user's rooms and memberships go (CONTRACT §8.1, B3),
with the events of each removal; a redelivery does nothing more; an event sent while the service was
down is handled when it is back."""

from __future__ import annotations

import pytest
from nameko.testing.services import entrypoint_waiter

from services.rooms.tests.integration.conftest import create, new_id, version
from testing.services import wait_until

pytestmark = pytest.mark.integration


def for_user(user_id, deliveries: list):
    """An ``entrypoint_waiter`` callback completing at the second handling of ``user_id``'s event,
    recording each outcome (``None`` or the exception info)."""

    def callback(worker_ctx, result, exc_info):
        if worker_ctx.args and worker_ctx.args[0].get("id") == user_id:
            deliveries.append(exc_info)
        return len(deliveries) == 2

    return callback


def test_cascade_and_redelivery(rooms_container, rooms, dispatch, published):
    user, friend = new_id(), new_id()
    hosted = [create(rooms, user, "First"), create(rooms, user, "Second")]
    rooms.join_room(hosted[0]["id"], friend)
    joined = [create(rooms, friend, "Third"), create(rooms, name="Fourth")]
    for room in joined:
        rooms.join_room(room["id"], user)
    untouched = create(rooms, friend, "Fifth")
    event = {"id": user, "username": "leaving"}

    deliveries: list = []
    with entrypoint_waiter(rooms_container, "on_user_deleted", timeout=20, callback=for_user(user, deliveries)) as done:
        dispatch("users", "user_deleted", event)
        wait_until(
            lambda: rooms.get_many([room["id"] for room in hosted]) == [None, None]
            and not any(rooms.is_participant(room["id"], user) for room in joined),
            message="the user's rooms and memberships to go",
        )
        assert rooms.rooms_participated_by(user) == []
        assert [room["participant_count"] for room in rooms.get_many([room["id"] for room in joined])] == [1, 1]
        assert rooms.get_room(untouched["id"]) == untouched
        assert rooms.participants_of([hosted[0]["id"]]) == {hosted[0]["id"]: []}

        for room in hosted:
            assert published.wait_for("room_deleted", id=room["id"]) == [{"id": room["id"], "host_id": user}]
        for room in joined:
            [joined_event] = published.wait_for("participant_joined", room_id=room["id"], user_id=user)
            [left] = published.wait_for("participant_left", room_id=room["id"])
            assert left == {"room_id": room["id"], "user_id": user, "membership_version": version(left)}
            assert version(left) > version(joined_event)

        dispatch("users", "user_deleted", event)  # delivered twice
    assert done.get() is None
    assert deliveries == [None, None]  # neither handling failed

    published.drain()
    assert len(published.matching("room_deleted", host_id=user)) == 2
    assert len(published.matching("participant_left", user_id=user)) == 2
    assert [room["participant_count"] for room in rooms.get_many([room["id"] for room in joined])] == [1, 1]


def test_malformed_event_is_ignored(rooms_container, rooms, dispatch):
    for payload in ({"id": "not-a-uuid"}, {"username": "no id"}):
        with entrypoint_waiter(rooms_container, "on_user_deleted", timeout=10) as done:
            dispatch("users", "user_deleted", payload)
        assert done.get() is None
    assert rooms.health() == "ok"


def test_catch_up_after_downtime(start_rooms, rpc_proxy, dispatch, published):
    first = start_rooms()  # binds the durable queue of the handler
    user = new_id()
    with rpc_proxy() as proxy:
        hosted = create(proxy, user, "Hosted")
        joined = create(proxy)
        proxy.join_room(joined["id"], user)
    first.stop()

    dispatch("users", "user_deleted", {"id": user, "username": "gone"})

    start_rooms()
    with rpc_proxy() as proxy:
        wait_until(
            lambda: proxy.get_many([hosted["id"]]) == [None] and not proxy.is_participant(joined["id"], user),
            message="the restarted service to catch up",
        )
        assert proxy.get_room(joined["id"])["participant_count"] == 1
    assert published.wait_for("room_deleted", id=hosted["id"]) == [{"id": hosted["id"], "host_id": user}]
    [left] = published.wait_for("participant_left", room_id=joined["id"])
    assert left == {"room_id": joined["id"], "user_id": user, "membership_version": version(left)}
