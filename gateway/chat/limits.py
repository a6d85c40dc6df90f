"""What every chat socket and subscription connection is held to: an allowed ``Origin`` (D8), a frame
size cap and a frame rate (D9)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit


def origin_allowed(origin: str | None, hosts: Collection[str]) -> bool:
    """D8: an ``Origin`` is required and its host name must be on the list (any scheme, any port).
    ``hosts`` are lower-case; ``null`` and unparsable origins are refused."""
    if not origin:
        return False
    try:
        hostname = urlsplit(origin.strip()).hostname
    except ValueError:
        return False
    return hostname is not None and hostname in hosts


def frame_size(message: dict[str, Any]) -> int:
    """The payload size in bytes of an ASGI ``websocket.receive`` message (text counts as UTF-8)."""
    text = message.get("text")
    if text is not None:
        return len(text.encode("utf-8", "surrogatepass"))
    data = message.get("bytes")
    return len(data) if data is not None else 0


class RateLimiter:
    """A token bucket: ``burst`` frames at once, refilled at ``rate`` frames per second (D9)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def allow(self) -> bool:
        """Take a token for one frame; ``False`` when the frame is over the limit."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
