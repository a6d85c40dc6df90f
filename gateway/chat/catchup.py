"""No gap and no duplicate when a socket catches up (B7b ``since``, B7 ``after``).

The socket subscribes first, so live events buffer while the catch-up is read and sent; then it
streams the buffer and whatever comes next through :meth:`CatchUp.admits`:

* a message the catch-up sent is never announced as ``new`` again, and no change older than what was
  sent of it (a smaller ``seq``) is sent after it: it would revert the client to a stale body;
* after ``since``, the catch-up reflects every change up to its highest ``seq`` (``covered_through``),
  so a buffered event at or below it is a repeat;
* an ``update`` carrying exactly the ``seq`` already sent is a repeat while buffered, but once live it
  is a new announcement: an edit that left the body unchanged re-announces the message with its
  existing ``seq`` (C6, C7), and must reach every socket.
"""

from __future__ import annotations

from gateway.chat.events import NEW, UPDATE, ChatEvent


class CatchUp:
    """What a catch-up sent, deciding which live events still go out."""

    def __init__(self, covered_through: int | None = None) -> None:
        self.covered_through = covered_through
        """``since`` catch-up: every change with ``seq`` up to this is reflected in what was sent."""
        self.sent: dict[str, int] = {}
        """Message id → the ``seq`` of what the catch-up sent of it."""

    @classmethod
    def since(cls, since: int, changes: list[ChatEvent]) -> CatchUp:
        """After ``changes_since(since)`` returned ``changes`` (and they were sent)."""
        catch_up = cls(max([since, *(change.seq for change in changes)]))
        for change in changes:
            catch_up.record(change)
        return catch_up

    @classmethod
    def after(cls, replayed: list[ChatEvent]) -> CatchUp:
        """After ``messages_after`` returned ``replayed`` (and they were sent as ``new``)."""
        catch_up = cls()
        for event in replayed:
            catch_up.record(event)
        return catch_up

    def record(self, event: ChatEvent) -> None:
        """``event`` was sent as part of the catch-up."""
        self.sent[event.message_id] = max(event.seq, self.sent.get(event.message_id, -1))

    def admits(self, event: ChatEvent, *, buffered: bool) -> bool:
        """Whether a live ``event`` is sent; ``buffered`` when it arrived before the catch-up was sent."""
        sent = self.sent.get(event.message_id)
        if sent is not None:
            if event.action == NEW or event.seq < sent:
                return False
            if event.seq == sent:
                return not buffered and event.action == UPDATE
            return True
        if self.covered_through is not None and event.seq <= self.covered_through:
            return not buffered and event.action == UPDATE
        return True
