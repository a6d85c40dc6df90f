"""Helpers of the nameko service tests (their fixtures are in ``services/conftest.py``): what a service
publishes, as a queue of the test's own receives it, and polling for a condition."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange


class EventQueue:
    """What one service publishes on its ``<service>.events`` exchange, in the order received."""

    def __init__(self, queue) -> None:
        self.queue = queue
        self.received: list[tuple[str, dict[str, Any]]] = []

    def _pull(self, timeout: float) -> bool:
        try:
            message = self.queue.get(block=True, timeout=timeout)
        except self.queue.Empty:
            return False
        message.ack()
        self.received.append((message.delivery_info["routing_key"], message.payload))
        return True

    def matching(self, event_type: str, **fields: Any) -> list[dict[str, Any]]:
        """The payloads received so far of this type that have ``fields``."""
        return [
            payload
            for kind, payload in self.received
            if kind == event_type and all(payload.get(key) == value for key, value in fields.items())
        ]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 10, **fields: Any) -> list[dict[str, Any]]:
        """The first ``count`` events of this type whose payload has ``fields``, waiting at most
        ``timeout`` seconds for them to arrive."""
        deadline = time.monotonic() + timeout
        while len(self.matching(event_type, **fields)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} {event_type} {fields}; received {self.received}")
            self._pull(min(remaining, 0.5))
        return self.matching(event_type, **fields)[:count]

    def drain(self, quiet: float = 0.3) -> list[tuple[str, dict[str, Any]]]:
        """Everything received until the queue stays empty for ``quiet`` seconds."""
        while self._pull(quiet):
            pass
        return self.received


@contextlib.contextmanager
def observe_events(service_name: str, config: Mapping[str, Any]) -> Iterator[EventQueue]:
    """An :class:`EventQueue` on a queue of its own bound to every event of ``service_name``; events
    published once this has entered are all received."""
    exchange = get_event_exchange(service_name, config)
    queue = Queue(
        f"test-{service_name}-events-{uuid.uuid4().hex}", exchange=exchange, routing_key="#", auto_delete=True
    )
    with Connection(config["AMQP_URI"]) as connection:
        simple = connection.SimpleQueue(queue)
        try:
            yield EventQueue(simple)
        finally:
            simple.close()


def wait_until(condition: Callable[[], Any], timeout: float = 10, message: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.05)
