"""The services' ``@rpc`` (``common.rpc``) in a real nameko container on the real broker: replies are
serialised once, published without waiting for a publisher confirm, and keep nameko's answers for
errors, unknown methods and results that cannot be serialised."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import amqp
import pytest
from nameko.exceptions import MethodNotFound, RemoteError
from nameko.rpc import rpc as nameko_rpc
from nameko.standalone.rpc import ServiceRpcProxy

from common.rpc import RpcConsumer, rpc

pytestmark = pytest.mark.integration


class Refused(Exception):
    pass


class CountedValue:
    """A value that counts how often kombu's JSON encoder turns it into JSON."""

    encoded = 0

    def __json__(self) -> str:
        CountedValue.encoded += 1
        return "counted"


class ReplyProbe:
    name = "reply_probe"

    @rpc
    def echo(self, value):
        return value

    @rpc
    def counted(self):
        return {"value": CountedValue()}

    @rpc
    def unserialisable(self):
        return {"value": object()}

    @rpc(expected_exceptions=Refused)
    def refuse(self):
        raise Refused("no", 42)


class MixedProbe:
    name = "mixed_probe"

    @rpc
    def ours(self):
        return 1

    @nameko_rpc
    def theirs(self):
        return 2


@pytest.fixture
def publishes(monkeypatch) -> list[tuple[str, bool]]:
    """``(routing key, waited for a confirm)`` of every AMQP publish in this process (py-amqp channels
    in confirm mode bind ``basic_publish_confirm`` when they open, so this patches before any does)."""
    seen: list[tuple[str, bool]] = []
    plain, confirmed = amqp.Channel.basic_publish, amqp.Channel.basic_publish_confirm

    def routing_key_of(args, kwargs) -> str:
        return kwargs["routing_key"] if "routing_key" in kwargs else args[2]

    def publish(self, *args, **kwargs):
        seen.append((routing_key_of(args, kwargs), False))
        return plain(self, *args, **kwargs)

    def publish_confirm(self, *args, **kwargs):
        seen.append((routing_key_of(args, kwargs), True))
        return confirmed(self, *args, **kwargs)

    monkeypatch.setattr(amqp.Channel, "basic_publish", publish)
    monkeypatch.setattr(amqp.Channel, "basic_publish_confirm", publish_confirm)
    return seen


@pytest.fixture
def probe(publishes, container_factory, amqp_uri) -> Iterator[tuple[ServiceRpcProxy, object]]:
    config = {"AMQP_URI": amqp_uri}
    container = container_factory(ReplyProbe, config)
    container.start()
    with ServiceRpcProxy("reply_probe", config, timeout=10) as proxy:
        yield proxy, container


def reply_consumer(container) -> RpcConsumer:
    (consumer,) = [ext for ext in container.subextensions if isinstance(ext, RpcConsumer)]
    return consumer


def test_replies_are_published_without_waiting_for_a_confirm(probe, publishes):
    proxy, _ = probe
    assert proxy.echo({"text": "héllo", "n": [1, 2.5, None]}) == {"text": "héllo", "n": [1, 2.5, None]}
    # (The standalone proxy's request may go out on a pooled channel opened before the patch.)
    replies = [confirmed for routing_key, confirmed in publishes if not routing_key.startswith("reply_probe.")]
    assert replies == [False]


def test_a_result_is_serialised_once(probe):
    proxy, _ = probe
    CountedValue.encoded = 0
    assert proxy.counted() == {"value": "counted"}
    assert CountedValue.encoded == 1  # nameko's own responder encodes it twice


def test_a_result_that_cannot_be_serialised_still_gets_a_reply(probe):
    proxy, _ = probe
    with pytest.raises(RemoteError) as raised:
        proxy.unserialisable()
    assert raised.value.exc_type == "UnserializableValueError"
    assert proxy.echo("next") == "next"


def test_errors_travel_as_nameko_serialises_them(probe):
    proxy, _ = probe
    with pytest.raises(RemoteError) as raised:
        proxy.refuse()
    assert raised.value.exc_type == "Refused"
    assert raised.value.value == "('no', 42)"
    with pytest.raises(MethodNotFound):
        proxy.no_such_method()


def test_concurrent_replies_each_reach_their_caller(probe):
    proxy, container = probe
    calls = [(i, proxy.echo.call_async(i)) for i in range(40)]
    assert [call.result() for _, call in calls] == [i for i, _ in calls]
    # One reply producer per reply in flight at once, at most one per worker, kept for later replies.
    assert 1 <= len(reply_consumer(container).reply_producers._idle) <= container.max_workers


def test_a_reply_connection_lost_while_idle_is_replaced(probe):
    proxy, container = probe
    assert proxy.echo(1) == 1
    for producer in reply_consumer(container).reply_producers._idle:
        producer.connection.connection.sock.shutdown(socket.SHUT_RDWR)  # as a broker restart leaves it
    assert proxy.echo(2) == 2


def test_a_service_cannot_mix_both_kinds_of_rpc(container_factory, amqp_uri):
    container = container_factory(MixedProbe, {"AMQP_URI": amqp_uri})
    with pytest.raises(RuntimeError, match="mixed_probe: every @rpc"):
        container.start()
