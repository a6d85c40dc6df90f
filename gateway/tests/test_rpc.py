"""RpcClient against a real RabbitMQ virtual host and a real nameko service process.

The nameko service runs as a subprocess (`nameko run`), so these tests never import eventlet or nameko
and nothing is monkey patched. (nameko's own pytest11 plugin still imports eventlet into every pytest
run, without patching; a test checks that.)
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import aio_pika
import pytest
import pytest_asyncio

import gateway.rpc
from gateway.rpc import (
    BrokerUnavailable,
    RemoteError,
    RpcClient,
    RpcError,
    RpcTimeout,
    ServiceUnavailable,
    dumps,
    loads,
)
from testing.infra import close_vhost_connections, isolated_vhost

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE = "rpctest"
SERVICE_MODULE = "gateway.tests.rpc_test_service"
READY_WITHIN = 20.0  # seconds for the service (re)start or a reconnection to answer


class ServiceProcess:
    """`nameko run` of the test service, its output kept in a log file."""

    def __init__(self, amqp_uri: str, workdir: Path) -> None:
        self.config = workdir / "config.yaml"
        self.config.write_text(f"AMQP_URI: '{amqp_uri}'\nmax_workers: 50\n")
        self.log_path = workdir / "nameko.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        nameko = Path(sys.executable).with_name("nameko")
        command = [str(nameko)] if nameko.exists() else [sys.executable, "-m", "nameko"]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                [*command, "run", "--config", str(self.config), SERVICE_MODULE],
                cwd=REPO_ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


async def wait_until_answers(client: RpcClient, service: ServiceProcess, within: float = READY_WITHIN) -> None:
    """Poll `health` until the service answers; fail (with its log) after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not service.running():
            pytest.fail(f"nameko service exited (code {service.proc and service.proc.returncode}):\n{service.log()}")
        if await client.ping(SERVICE, timeout=1.0):
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"nameko service did not answer within {within} s:\n{service.log()}")


@pytest.fixture(scope="module")
def rpc_vhost(rabbit_server: tuple[str, str | None], vhost_name: str) -> Iterator[tuple[str, str]]:
    """(name, AMQP URI) of a virtual host for this module alone.

    The tests below drop and refuse every connection of their vhost; on the run's shared vhost that
    would also cut off whatever other gateway or end-to-end tests keep connected there.
    """
    uri, management = rabbit_server
    name = f"{vhost_name}_rpc"
    with isolated_vhost(uri, management, name) as vhost_uri:
        yield name, vhost_uri


@pytest.fixture(scope="module")
def rpc_amqp_uri(rpc_vhost: tuple[str, str]) -> str:
    return rpc_vhost[1]


@pytest.fixture(scope="module")
def rpc_vhost_name(rpc_vhost: tuple[str, str]) -> str:
    return rpc_vhost[0]


@pytest.fixture(scope="module")
def service_process(rpc_amqp_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = ServiceProcess(rpc_amqp_uri, tmp_path_factory.mktemp("rpctest"))
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest_asyncio.fixture(scope="module")
async def client(rpc_amqp_uri: str, service_process: ServiceProcess) -> AsyncIterator[RpcClient]:
    rpc = RpcClient(rpc_amqp_uri, default_timeout=5.0, exchange="nameko-rpc")
    await rpc.start()
    try:
        await wait_until_answers(rpc, service_process)
        yield rpc
    finally:
        await rpc.close()


@pytest.fixture(scope="module")
def management_url(rabbit_server: tuple[str, str | None]) -> str | None:
    return rabbit_server[1]


async def drop_connections(management_url: str | None, vhost: str) -> None:
    try:
        await asyncio.to_thread(close_vhost_connections, management_url, vhost)
    except NotImplementedError:
        pytest.skip("closing connections needs rabbitmqctl")


async def rabbitmqctl(*args: str) -> None:
    await asyncio.to_thread(
        subprocess.run, ["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60
    )


# --- codec, no broker ---------------------------------------------------------------------------


def test_json_matches_kombu_envelopes() -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    payload = {"when": when, "day": date(2024, 5, 1), "price": Decimal("1.10"), "id": ident, "raw": b"\xff"}
    encoded = dumps(payload)
    assert b'{"__type__": "datetime", "__value__": "2024-05-01T12:30:00+00:00"}' in encoded
    assert b'{"__type__": "uuid", "__value__": {"hex": "12345678123456781234567812345678"}}' in encoded
    assert b'{"__type__": "base64", "__value__": "/w=="}' in encoded
    assert loads(encoded) == payload
    assert loads(dumps({"__type__": "unknown", "__value__": 1})) == {"__type__": "unknown", "__value__": 1}


def python_calls_of(function: Callable[..., object], action: Callable[[], object]) -> int:
    """How many times ``action()`` runs ``function`` (also when C code such as the json module calls it)."""
    calls = 0

    def count(frame, event, _arg):
        nonlocal calls
        if event == "call" and frame.f_code is function.__code__:
            calls += 1

    sys.setprofile(count)
    try:
        action()
    finally:
        sys.setprofile(None)
    return calls


def test_plain_json_is_decoded_without_a_python_call_per_object() -> None:
    rooms = [{"id": str(uuid.uuid4()), "name": f"room {i}", "note": 'says "__type__"'} for i in range(50)]
    plain = dumps({"result": rooms, "error": None})
    assert python_calls_of(gateway.rpc._json_object_hook, lambda: loads(plain)) == 0
    assert loads(plain) == {"result": rooms, "error": None}
    enveloped = dumps({"result": [date(2024, 1, day) for day in range(1, 31)]})
    assert python_calls_of(gateway.rpc._json_object_hook, lambda: loads(enveloped)) == 31  # 30 dates, 1 reply


def test_plain_replies_are_decoded_by_orjson_and_the_rest_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    stdlib_decodes: list[str] = []
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda text, **kw: stdlib_decodes.append(text) or real_loads(text, **kw))
    rooms = [{"id": str(uuid.uuid4()), "name": f"ro\u00f6m {i}", "seq": 2**63 - 1, "score": 0.1} for i in range(20)]
    assert loads(dumps({"result": rooms, "error": None})) == {"result": rooms, "error": None}
    assert stdlib_decodes == []
    # What orjson refuses goes through json: NaN (Python's json writes it), lone surrogates.
    odd = loads(b'{"result": [NaN, "\\ud800"], "error": null}')["result"]
    assert math.isnan(odd[0]) and odd[1] == "\ud800"
    assert len(stdlib_decodes) == 1
    for malformed in (b"{not json", b"\xff\xfe"):
        with pytest.raises(ValueError):
            loads(malformed)


def test_pytest_process_is_not_monkey_patched() -> None:
    # nameko's pytest11 plugin imports eventlet into every pytest run; it must not have patched anything.
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None:
        assert not patcher.is_monkey_patched("socket")
        assert not patcher.is_monkey_patched("thread")


async def test_start_without_broker_raises_broker_unavailable() -> None:
    rpc = RpcClient("amqp://guest:guest@127.0.0.1:1/", connect_timeout=3)
    with pytest.raises(BrokerUnavailable):
        await asyncio.wait_for(rpc.start(), timeout=10)


# --- calls against the service ------------------------------------------------------------------


async def test_round_trip_with_args_kwargs_and_unicode(client: RpcClient) -> None:
    text = "héllo wörld ✓ 🚀 日本語"
    result = await client.call(SERVICE, "echo", 1, text, [1.5, None, True], key=text, nested={"a": [text]})
    assert result == {"args": [1, text, [1.5, None, True]], "kwargs": {"key": text, "nested": {"a": [text]}}}


async def test_kombu_typed_values_round_trip_through_nameko(client: RpcClient) -> None:
    when = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=timezone.utc)
    ident = uuid.uuid4()
    result = await client.call(SERVICE, "echo", when, Decimal("3.14"), ident, day=date(2024, 2, 29), blob=b"abc")
    assert result == {
        "args": [when, Decimal("3.14"), ident],
        "kwargs": {"day": date(2024, 2, 29), "blob": b"abc"},
    }


async def test_a_request_is_published_without_building_an_aio_pika_message(client: RpcClient) -> None:
    """The request's AMQP properties are built directly; an ``aio_pika.Message`` per call, converted into
    them, cost ~40 Python calls. The reply still arrives as one (aio-pika's consumer builds it)."""
    built = 0

    def count(frame, event, _arg):
        nonlocal built
        if event == "call" and frame.f_code is aio_pika.Message.__init__.__code__:
            built += 1

    sys.setprofile(count)
    try:
        assert await client.call(SERVICE, "echo", "x") == {"args": ["x"], "kwargs": {}}
    finally:
        sys.setprofile(None)
    assert built == 1


async def test_call_id_stack_header_reaches_the_worker(client: RpcClient) -> None:
    seen = await client.call(SERVICE, "whoami")
    parent, own = seen["call_id_stack"]
    assert parent.startswith("gateway.whoami.")
    assert own.startswith("rpctest.whoami.")
    assert seen["immediate_parent_call_id"] == parent == seen["origin_call_id"]

    given = ["gateway.request.r-1", "gateway.resolver.r-2"]
    seen = await client.call(SERVICE, "whoami", call_id_stack=given)
    assert seen["call_id_stack"][:2] == given
    assert seen["call_id_stack"][2].startswith("rpctest.whoami.")
    assert seen["origin_call_id"] == "gateway.request.r-1"
    assert seen["immediate_parent_call_id"] == "gateway.resolver.r-2"


async def test_many_concurrent_calls_each_get_their_own_answer(client: RpcClient) -> None:
    n = 500
    results = await asyncio.wait_for(
        asyncio.gather(*(client.call(SERVICE, "echo", i, tag=f"t{i}", timeout=20) for i in range(n))),
        timeout=30,
    )
    assert results == [{"args": [i], "kwargs": {"tag": f"t{i}"}} for i in range(n)]
    assert client.pending_calls == 0


async def test_mixed_outcomes_concurrently_do_not_cross_wires(client: RpcClient) -> None:
    """Sanity check of dispatch: successes, remote errors and unroutable calls interleaved."""
    calls = []
    for i in range(60):
        match i % 3:
            case 0:
                calls.append(client.call(SERVICE, "echo", i))
            case 1:
                calls.append(client.call(SERVICE, "fail"))
            case _:
                calls.append(client.call(f"ghost{i}", "echo", i))
    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=20)
    for i, outcome in enumerate(outcomes):
        match i % 3:
            case 0:
                assert outcome == {"args": [i], "kwargs": {}}
            case 1:
                assert isinstance(outcome, RemoteError) and outcome.exc_type == "ValidationFailed"
            case _:
                assert isinstance(outcome, ServiceUnavailable) and outcome.service == f"ghost{i}"
    assert client.pending_calls == 0


async def test_timeout_raises_and_late_reply_is_dropped(client: RpcClient) -> None:
    started = time.monotonic()
    with pytest.raises(RpcTimeout) as info:
        await client.call(SERVICE, "slow", 1.0, timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert "rpctest.slow" in str(info.value)
    assert info.value.call_id and info.value.call_id.startswith("gateway.slow.")
    assert client.pending_calls == 0

    await asyncio.sleep(1.2)  # the late reply arrives meanwhile and must be ignored
    assert await client.call(SERVICE, "echo", "after") == {"args": ["after"], "kwargs": {}}


async def test_default_timeout_applies(rpc_amqp_uri: str, client: RpcClient) -> None:
    quick = RpcClient(rpc_amqp_uri, default_timeout=0.3)
    await quick.start()
    try:
        with pytest.raises(RpcTimeout):
            await asyncio.wait_for(quick.call(SERVICE, "slow", 1.0), timeout=3)
    finally:
        await quick.close()


async def test_remote_exception_maps_to_remote_error(client: RpcClient) -> None:
    with pytest.raises(RemoteError) as info:
        await client.call(SERVICE, "fail")
    error = info.value
    assert error.exc_type == "ValidationFailed"
    assert error.exc_path == "gateway.tests.rpc_test_service.ValidationFailed"
    # nameko stringifies every non-str scalar in exc_args (42 -> "42", False -> "False").
    assert error.exc_args == [{"title": ["This field is required."], "count": ["42"]}, "False"]
    assert error.value.startswith("({'title'")
    assert (error.service, error.method) == (SERVICE, "fail")
    assert isinstance(error, RpcError)


async def test_unknown_method_is_a_remote_method_not_found(client: RpcClient) -> None:
    with pytest.raises(RemoteError) as info:
        await client.call(SERVICE, "no_such_method")
    assert info.value.exc_type == "MethodNotFound"
    assert info.value.exc_args == ["no_such_method"]


async def test_unknown_service_fails_fast(client: RpcClient) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        await client.call("nosuchservice", "anything", timeout=5.0)
    assert time.monotonic() - started < 2.0
    assert "nosuchservice.anything" in str(info.value)
    assert client.pending_calls == 0


async def test_ping(client: RpcClient) -> None:
    assert await client.ping(SERVICE) is True
    assert await client.ping("nosuchservice") is False


async def test_close_fails_pending_and_later_calls(rpc_amqp_uri: str, client: RpcClient) -> None:
    other = RpcClient(rpc_amqp_uri)
    with pytest.raises(RpcError):
        await other.call(SERVICE, "echo")  # not started
    await other.start()
    pending = asyncio.create_task(other.call(SERVICE, "slow", 1.0, timeout=10))
    await asyncio.sleep(0.3)
    await other.close()
    with pytest.raises(BrokerUnavailable):
        await asyncio.wait_for(pending, timeout=2)
    with pytest.raises(BrokerUnavailable):
        await asyncio.wait_for(other.call(SERVICE, "echo"), timeout=2)
    await other.close()  # idempotent


# --- broker connection loss ---------------------------------------------------------------------


async def wait_for_recovery(client: RpcClient, service: ServiceProcess) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if not service.running():  # nameko gave up reconnecting: restart it, the client must not care
            service.stop()
            service.start()
        try:
            if await client.call(SERVICE, "echo", "back", timeout=1.0) == {"args": ["back"], "kwargs": {}}:
                return
        except RpcError:
            pass
        await asyncio.sleep(0.3)
    pytest.fail(f"no recovery within {READY_WITHIN} s; nameko log:\n{service.log()}")


async def test_connection_drop_fails_pending_calls_then_recovers(
    client: RpcClient, service_process: ServiceProcess, management_url: str | None, rpc_vhost_name: str
) -> None:
    calls = [asyncio.create_task(client.call(SERVICE, "slow", 2.0, timeout=15)) for _ in range(5)]
    await asyncio.sleep(0.5)
    assert client.pending_calls == 5
    started = time.monotonic()
    await drop_connections(management_url, rpc_vhost_name)
    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=5)
    assert time.monotonic() - started < 5
    for outcome in outcomes:
        assert isinstance(outcome, BrokerUnavailable), outcome
        assert "connection lost" in str(outcome)
    assert client.pending_calls == 0

    await wait_for_recovery(client, service_process)
    assert client.connected
    # The reply queue is bound again: concurrent calls and unroutable detection work as before.
    results = await asyncio.gather(*(client.call(SERVICE, "echo", i) for i in range(50)))
    assert results == [{"args": [i], "kwargs": {}} for i in range(50)]
    with pytest.raises(ServiceUnavailable):
        await client.call("nosuchservice", "x", timeout=3)


async def test_call_while_disconnected_fails_within_its_timeout(
    client: RpcClient, service_process: ServiceProcess, management_url: str | None, rpc_vhost_name: str
) -> None:
    if management_url or not shutil.which("rabbitmqctl"):
        pytest.skip("refusing connections to the vhost needs rabbitmqctl")
    await rabbitmqctl("set_vhost_limits", "-p", rpc_vhost_name, '{"max-connections": 0}')
    try:
        await drop_connections(management_url, rpc_vhost_name)
        # Reconnection attempts are refused now; wait until the client has noticed the loss.
        deadline = time.monotonic() + 5
        while client.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not client.connected

        started = time.monotonic()
        with pytest.raises(BrokerUnavailable) as info:
            await asyncio.wait_for(client.call(SERVICE, "echo", "x", timeout=1.0), timeout=5)
        assert time.monotonic() - started < 3
        assert "broker unavailable" in str(info.value)
        assert await client.ping(SERVICE, timeout=0.5) is False
    finally:
        await rabbitmqctl("clear_vhost_limits", "-p", rpc_vhost_name)
    await wait_for_recovery(client, service_process)
