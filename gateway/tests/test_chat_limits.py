"""Origin allow-list (D8), frame size and rate (D9) for the chat socket and subscriptions."""

from __future__ import annotations

import pytest

from gateway.chat.limits import RateLimiter, frame_size, origin_allowed

HOSTS = ("localhost", "127.0.0.1")


@pytest.mark.parametrize(
    "origin",
    ["http://localhost", "https://localhost", "http://localhost:5173", "http://127.0.0.1:8000", "HTTP://LOCALHOST"],
)
def test_allowed_origins_any_scheme_and_port(origin):
    assert origin_allowed(origin, HOSTS)


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "",
        "null",
        "http://evil.example",
        "http://localhost.evil.example",
        "http://evil.example/localhost",
        "http://user@evil.example",
        "http://[::1]",
        "localhost",  # no scheme: no host name
        "http://[broken",
    ],
)
def test_refused_origins(origin):
    assert not origin_allowed(origin, HOSTS)


def test_frame_size_counts_utf8_bytes():
    assert frame_size({"type": "websocket.receive", "text": "é" * 10}) == 20
    assert frame_size({"type": "websocket.receive", "bytes": b"abc"}) == 3
    assert frame_size({"type": "websocket.receive"}) == 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate():
    clock = Clock()
    limiter = RateLimiter(rate=5, burst=10, clock=clock)
    assert [limiter.allow() for _ in range(12)] == [True] * 10 + [False] * 2
    clock.now += 0.2  # one token back
    assert limiter.allow() and not limiter.allow()
    clock.now += 1.0  # five more
    assert sum(limiter.allow() for _ in range(10)) == 5


def test_tokens_never_exceed_the_burst():
    clock = Clock()
    limiter = RateLimiter(rate=5, burst=10, clock=clock)
    clock.now += 3600
    assert sum(limiter.allow() for _ in range(20)) == 10


def test_a_steady_five_per_second_always_passes():
    clock = Clock()
    limiter = RateLimiter(rate=5, burst=10, clock=clock)
    for _ in range(100):
        clock.now += 0.2
        assert limiter.allow()
