"""The membership copy converges whatever order, and however often, the rooms service's membership events
arrive: ``participant_joined`` and ``participant_left`` come through separate queues with concurrent
workers, so a leave can be handled before its join. Each carries the membership's version (a later
change of the same membership has a higher one); the copy keeps the change of the highest version seen.

Payloads are made by the rooms context's own event functions, so they are what it really publishes.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import eventlet
import pytest
from nameko.testing.services import entrypoint_waiter

from common.errors import PermissionDenied
from services.messages.tests.integration.conftest import new_id
from services.rooms import events as rooms_events
from testing.services import wait_until

pytestmark = pytest.mark.integration

HANDLERS = {
    rooms_events.PARTICIPANT_JOINED: "on_participant_joined",
    rooms_events.PARTICIPANT_LEFT: "on_participant_left",
}


def joined(room: str, user: str, version: int) -> tuple[str, dict[str, Any]]:
    return rooms_events.PARTICIPANT_JOINED, rooms_events.participant_joined(room, user, version)


def left(room: str, user: str, version: int) -> tuple[str, dict[str, Any]]:
    return rooms_events.PARTICIPANT_LEFT, rooms_events.participant_left(room, user, version)


@pytest.fixture
def deliver(messages_container, dispatch):
    """``deliver(event)``: dispatch a rooms event and return once the messages container has handled it
    (that very payload, without error)."""

    @contextlib.contextmanager
    def handled(event_type: str, payload: dict[str, Any]) -> Iterator[None]:
        def callback(worker_ctx, result, exc_info):
            return exc_info is None and worker_ctx.args == (payload,)

        with entrypoint_waiter(messages_container, HANDLERS[event_type], timeout=10, callback=callback):
            yield

    def send(event: tuple[str, dict[str, Any]]) -> None:
        event_type, payload = event
        with handled(event_type, payload):
            dispatch("rooms", event_type, payload)

    return send


def test_a_leave_handled_before_its_join_wins(messages, deliver, membership, is_member, rooms_stub):
    room, user = new_id(), new_id()
    deliver(left(room, user, 2))
    assert membership(room, user) == (False, 2)
    deliver(joined(room, user, 1))  # the older change, arriving last
    assert membership(room, user) == (False, 2)
    assert not is_member(room, user)
    with pytest.raises(PermissionDenied):  # the copy does not say member: the rooms service says no
        messages.post_message(room, user, "still here?")
    assert rooms_stub.asked == [(room, user)]

    # Redelivered, neither moves it; a later join does, and older changes then leave it be.
    for event in (left(room, user, 2), joined(room, user, 1)):
        deliver(event)
    assert membership(room, user) == (False, 2)
    deliver(joined(room, user, 3))
    for event in (left(room, user, 2), joined(room, user, 1), joined(room, user, 3)):
        deliver(event)
    assert membership(room, user) == (True, 3)
    assert messages.post_message(room, user, "back")["seq"] == 1
    assert rooms_stub.asked == [(room, user)]  # the copy answered


def test_unversioned_knowledge_never_overrides_a_versioned_change(messages, deliver, dispatch, membership, rooms_stub):
    room, host = new_id(), new_id()
    deliver(left(room, host, 5))  # the host left before room_created was handled
    dispatch("rooms", "room_created", {"id": room, "host_id": host, "name": "Late", "slug": "late"})
    # The host came back (join 6 on its way): the rooms service says yes, the post passes, the copy keeps
    # the leave until the versioned join lands.
    rooms_stub.participants.add((room, host))
    assert messages.post_message(room, host, "hello")["seq"] == 1
    assert rooms_stub.asked == [(room, host)]
    wait_until(lambda: membership(room, host) == (False, 5), message="the room_created handled")  # already so
    marker_room = new_id()
    dispatch("rooms", "room_created", {"id": marker_room, "host_id": host, "name": "Marker", "slug": "marker"})
    wait_until(lambda: membership(marker_room, host) == (True, 0), message="the room_created events handled")
    assert membership(room, host) == (False, 5)

    deliver(joined(room, host, 6))
    assert membership(room, host) == (True, 6)
    assert messages.post_message(room, host, "again")["seq"] == 2
    assert rooms_stub.asked == [(room, host)]


def test_shuffled_concurrent_deliveries_end_at_the_latest_change(messages_container, dispatch, membership):
    """Many memberships, each with a history of joins and leaves, all dispatched at once in a shuffled
    order, some twice: each ends at its own latest change."""
    rng = random.Random(20261127)
    room = new_id()
    histories: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for _ in range(8):
        user = new_id()
        changes = rng.randint(1, 5)
        histories[user] = [(joined if version % 2 else left)(room, user, version) for version in range(1, changes + 1)]
    deliveries = [event for history in histories.values() for event in history]
    deliveries += rng.sample(deliveries, len(deliveries) // 2)  # redeliveries
    rng.shuffle(deliveries)
    pool = eventlet.GreenPool(8)
    for event_type, payload in deliveries:
        pool.spawn_n(dispatch, "rooms", event_type, payload)
    pool.waitall()

    expected = {
        user: (history[-1][0] == rooms_events.PARTICIPANT_JOINED, len(history)) for user, history in histories.items()
    }
    wait_until(
        lambda: {user: membership(room, user) for user in histories} == expected,
        message=f"every membership at its latest change: {expected}",
    )
    eventlet.sleep(0.5)  # nothing handled late moves any of them back
    assert {user: membership(room, user) for user in histories} == expected
