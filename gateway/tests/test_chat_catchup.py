"""No gap, no duplicate after a catch-up (B7, B7b): which live events still go out."""

from __future__ import annotations

from gateway.chat.catchup import CatchUp
from gateway.chat.events import DELETE, NEW, UPDATE, ChatEvent

ROOM = "0d8f9c4e-5f56-4d77-9d0b-1d4f0a6f3c21"


def event(action: str, message_id: str, seq: int) -> ChatEvent:
    message = None if action == DELETE else {"id": message_id, "user_id": "u", "seq": seq}
    return ChatEvent(action, ROOM, message_id, seq, message)


def test_since_drops_buffered_events_the_snapshot_covers():
    # since=3; meanwhile a was created (4), edited (5); b deleted (6). Catch-up, collapsed: a@5 new, b@6 delete.
    catch_up = CatchUp.since(3, [event(NEW, "a", 5), event(DELETE, "b", 6)])
    assert catch_up.covered_through == 6
    buffered = [event(NEW, "a", 4), event(UPDATE, "a", 5), event(DELETE, "b", 6)]
    assert [catch_up.admits(e, buffered=True) for e in buffered] == [False, False, False]
    # a change of another message the snapshot also covered
    assert not catch_up.admits(event(UPDATE, "c", 2), buffered=True)
    # what came after the snapshot goes out
    assert catch_up.admits(event(NEW, "d", 7), buffered=True)
    assert catch_up.admits(event(UPDATE, "a", 8), buffered=False)


def test_live_repeats_of_new_and_delete_are_dropped_but_reannouncements_pass():
    catch_up = CatchUp.since(3, [event(NEW, "a", 5), event(DELETE, "b", 6)])
    assert not catch_up.admits(event(NEW, "a", 4), buffered=False)
    assert not catch_up.admits(event(DELETE, "b", 6), buffered=False)
    assert not catch_up.admits(event(NEW, "x", 6), buffered=False)
    # An edit that left the body unchanged re-announces the message with its current seq (C6, C7).
    assert catch_up.admits(event(UPDATE, "a", 5), buffered=False)
    assert catch_up.admits(event(UPDATE, "old", 2), buffered=False)
    # ...but never an older state of a message than the one sent
    assert not catch_up.admits(event(UPDATE, "a", 4), buffered=False)


def test_since_with_nothing_new():
    catch_up = CatchUp.since(10, [])
    assert catch_up.covered_through == 10
    assert not catch_up.admits(event(NEW, "a", 10), buffered=True)
    assert catch_up.admits(event(NEW, "a", 11), buffered=True)


def test_after_replay_is_never_repeated_nor_reverted():
    # after=m0; a (seq 4) and b (seq 9, edited since creation) were replayed as new.
    catch_up = CatchUp.after([event(NEW, "a", 4), event(NEW, "b", 9)])
    assert catch_up.covered_through is None
    assert not catch_up.admits(event(NEW, "a", 4), buffered=True)
    assert not catch_up.admits(event(UPDATE, "b", 8), buffered=True)  # stale: would revert the body
    assert not catch_up.admits(event(UPDATE, "b", 9), buffered=True)  # the replay already said it
    assert catch_up.admits(event(UPDATE, "b", 9), buffered=False)  # a re-announcement, live
    assert catch_up.admits(event(UPDATE, "b", 10), buffered=True)
    assert catch_up.admits(event(DELETE, "a", 11), buffered=True)
    # messages the replay did not name: older ones edited or deleted, or new ones
    assert catch_up.admits(event(UPDATE, "older", 3), buffered=True)
    assert catch_up.admits(event(NEW, "c", 12), buffered=True)
    assert not catch_up.admits(event(NEW, "a", 4), buffered=False)
