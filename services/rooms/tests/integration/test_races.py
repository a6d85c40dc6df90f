"""C14: concurrent duplicates behave as if they ran one after the other, and no database error escapes.

Each race is forced, not hoped for: the contenders are held just before the contested write until all
of them have passed their checks.
"""

from __future__ import annotations

import itertools
import threading  # green: services/conftest.py monkey-patches before anything imports it

import eventlet
import pytest

from common.errors import Conflict
from services.rooms.storage import RoomStorage
from services.rooms.tests.integration.conftest import new_id, topic_name

pytestmark = pytest.mark.integration


@pytest.fixture
def hold(monkeypatch):
    """``hold("create_room", 2)``: the first 2 calls of that storage verb wait for each other, so both
    contenders go on from the same point; later calls (a retry) pass straight through."""

    def install(verb: str, parties: int, when=lambda *args, **kwargs: True) -> threading.Barrier:
        barrier = threading.Barrier(parties, timeout=10)
        arrivals = itertools.count()
        real = getattr(RoomStorage, verb)

        def held(self, *args, **kwargs):
            if when(*args, **kwargs) and next(arrivals) < parties:
                barrier.wait()
            return real(self, *args, **kwargs)

        monkeypatch.setattr(RoomStorage, verb, held)
        return barrier

    return install


def concurrently(rpc_proxy, method: str, *calls: tuple) -> list:
    """Run each call on its own proxy at once; returns each result or the exception it raised."""

    def attempt(args):
        with rpc_proxy() as proxy:
            try:
                return getattr(proxy, method)(*args)
            except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
                return exc

    threads = [eventlet.spawn(attempt, args) for args in calls]
    return [thread.wait() for thread in threads]


def test_same_host_and_name(rooms, rpc_proxy, hold, sql):
    host, topic = new_id(), topic_name()
    # Both have passed the name check; then each gets the (same, new) topic and inserts its room.
    hold("host_slugs_starting_with", 2)
    outcomes = concurrently(
        rpc_proxy, "create_room", (host, "Race Room", topic, "first"), (host, "  Race  Room ", topic, "second")
    )
    winners = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    losers = [outcome for outcome in outcomes if not isinstance(outcome, dict)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert isinstance(losers[0], Conflict), losers[0]
    assert (losers[0].errors, losers[0].raw) == ({"__all__": ["You already have a room with this name."]}, True)
    assert [room["id"] for room in rooms.list_rooms(host_id=host)] == [winners[0]["id"]]
    assert sql("SELECT count(*) FROM rooms.topics WHERE name = :name", name=topic)[0][0] == 1


def test_names_that_slugify_alike(rooms, rpc_proxy, hold):
    host = new_id()
    hold("create_room", 2)
    outcomes = concurrently(
        rpc_proxy, "create_room", (host, "Race Room", topic_name(), ""), (host, "race room", topic_name(), "")
    )
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert sorted(room["slug"] for room in outcomes) == ["race-room", "race-room-2"]
    assert {room["name"] for room in outcomes} == {"Race Room", "race room"}


def test_creates_naming_the_same_new_topic_share_it(rooms, rpc_proxy, hold, sql):
    topic = topic_name()
    hold("get_or_create_topic", 4)
    outcomes = concurrently(rpc_proxy, "create_room", *[(new_id(), "Same Topic", topic, "") for _ in range(4)])
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert len({room["topic_id"] for room in outcomes}) == 1
    assert sql("SELECT count(*) FROM rooms.topics WHERE name = :name", name=topic)[0][0] == 1
    assert rooms.get_topics([outcomes[0]["topic_id"]])[0]["room_count"] == 4


def test_concurrent_joins(rooms, rpc_proxy, hold, published):
    room = rooms.create_room(new_id(), "Crowded", topic_name(), "")
    repeated, others = new_id(), [new_id() for _ in range(4)]
    joiners = [repeated] * 4 + others
    hold("get_room", len(joiners), when=lambda room_id, lock=False: lock)
    outcomes = concurrently(rpc_proxy, "join_room", *[(room["id"], user) for user in joiners])

    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert rooms.get_room(room["id"])["participant_count"] == 1 + 1 + len(others)
    assert sorted(rooms.members(room["id"])) == sorted([room["host_id"], repeated, *others])
    published.wait_for("participant_joined", count=2 + len(others), room_id=room["id"])
    published.drain()
    assert len(published.matching("participant_joined", room_id=room["id"], user_id=repeated)) == 1


def test_concurrent_joins_and_leaves_are_versioned_in_commit_order(rooms, rpc_proxy, hold, published):
    """Membership versions follow commit order: sorted by version, one membership's events alternate
    join, leave, join, … and the last one is the final state, so a consumer that keeps the highest
    version it has seen ends where the rooms service does, whatever order the events arrive in."""
    room = rooms.create_room(new_id(), "Busy", topic_name(), "")
    user = new_id()
    calls = ["join_room", "leave_room"] * 5
    hold("get_room", len(calls), when=lambda room_id, lock=False: lock)

    def attempt(method):
        with rpc_proxy() as proxy:
            return getattr(proxy, method)(room["id"], user)

    threads = [eventlet.spawn(attempt, method) for method in calls]
    assert all(isinstance(thread.wait(), dict) for thread in threads)

    rooms.join_room(room["id"], marker := new_id())  # everything emitted before it has arrived once it has
    published.wait_for("participant_joined", room_id=room["id"], user_id=marker)
    published.drain()
    changes = sorted(
        (event["membership_version"], kind)
        for kind in ("participant_joined", "participant_left")
        for event in published.matching(kind, room_id=room["id"], user_id=user)
    )
    assert changes, "no membership change at all"
    assert len({number for number, _ in changes}) == len(changes)
    kinds = [kind for _, kind in changes]
    assert kinds == ["participant_joined", "participant_left"] * (len(kinds) // 2) + ["participant_joined"] * (
        len(kinds) % 2
    )
    assert rooms.is_participant(room["id"], user) is (kinds[-1] == "participant_joined")
