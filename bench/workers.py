"""The load generators. Each function here is the body of a worker *process* (multiprocessing, spawn):
it runs an asyncio loop (uvloop when available) of HTTP or WebSocket clients and talks to the
orchestrator over a pipe:

    worker -> ("ready", info)        connections are open
    orch   -> ("go", t0)             start at monotonic time t0 (CLOCK_MONOTONIC is machine-wide)
    worker -> ("result", data)       figures, including the worker's own CPU seconds
    worker -> ("error", traceback)   anything failed

:func:`idle_worker` takes commands instead (``grow``, ``check``, ``close``).
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
import traceback
from collections import Counter
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import quote, urlsplit

ORIGIN = "http://127.0.0.1"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_cpu_at_go = 0.0  # CPU this worker had used when the measured phase began (start-up is not load)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _main(body: Callable[[Connection, dict[str, Any]], Coroutine[Any, Any, Any]], conn: Connection,
          params: dict[str, Any]) -> None:
    _raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        pass
    try:
        result = asyncio.run(body(conn, params))
        result["cpu_seconds"] = _cpu() - _cpu_at_go
        conn.send(("result", result))
    except BaseException:  # noqa: BLE001 - reported to the orchestrator, which fails the workload
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


async def _recv(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def _wait_go(conn: Connection, info: dict[str, Any]) -> float:
    global _cpu_at_go
    conn.send(("ready", info))
    message = await _recv(conn)
    assert message[0] == "go", message
    _cpu_at_go = _cpu()
    return float(message[1])


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def ws_url(base_url: str, path: str) -> str:
    parts = urlsplit(base_url)
    return f"ws://{parts.netloc}{path}"


def chat_path(host: str, slug: str) -> str:
    return f"/ws/chat/{quote(host)}/{quote(slug)}"


# --- read mix ------------------------------------------------------------------------------------


def readmix_worker(conn: Connection, params: dict[str, Any]) -> None:
    _main(_readmix, conn, params)


async def _readmix(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """Closed loop: each client sends its next operation as soon as the previous one answered.

    params: url, clients [{requests: [(operation, bytes)]}], warmup, duration, http_client."""
    from bench.http import HttpError, HttpxConnection, RawConnection

    factory = HttpxConnection if params.get("http_client") == "httpx" else RawConnection
    clients = params["clients"]
    connections = [factory(params["url"]) for _ in clients]
    latencies: dict[str, list[float]] = {}
    errors: Counter[str] = Counter()
    error_samples: dict[str, str] = {}
    completed: Counter[str] = Counter()
    timeline: Counter[int] = Counter()  # completions per second of the measured window
    t0 = await _wait_go(conn, {"clients": len(clients)})
    measure_from = t0 + params["warmup"]
    measure_to = measure_from + params["duration"]

    async def client(index: int) -> None:
        requests = clients[index]["requests"]
        connection = connections[index]
        position = index % len(requests)
        await _sleep_until(t0 + random.random() * 0.05)
        while True:
            operation, request = requests[position]
            position = (position + 1) % len(requests)
            started = time.monotonic()
            if started >= measure_to:
                return
            problem = None
            try:
                status, body = await connection.send(request)
                if status != 200:
                    problem = f"HTTP {status}: {body[:200]!r}"
                elif b'"errors":' in body:
                    problem = f"GraphQL error: {body[:300]!r}"
            except HttpError as exc:
                problem = str(exc)
            finished = time.monotonic()
            if measure_from <= finished < measure_to:
                timeline[int(finished - measure_from)] += 1
                completed[operation] += 1
                latencies.setdefault(operation, []).append(finished - started)
                if problem:
                    errors[operation] += 1
                    error_samples.setdefault(operation, problem)

    await asyncio.gather(*(client(i) for i in range(len(clients))))
    for connection in connections:
        await connection.close()
    return {
        "latencies": latencies,
        "completed": dict(completed),
        "timeline": dict(timeline),
        "errors": dict(errors),
        "error_samples": error_samples,
    }


# --- chat and fan-out --------------------------------------------------------------------------------


def chat_worker(conn: Connection, params: dict[str, Any]) -> None:
    _main(_chat, conn, params)


async def _open_socket(url: str, token: str, compression: str | None, timeout: float = 30.0) -> Any:
    from websockets.asyncio.client import connect

    return await connect(
        url,
        origin=ORIGIN,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"JWT={token}"},
        compression=compression,
        ping_interval=None,
        open_timeout=timeout,
        max_size=2**20,
        max_queue=None,
    )


async def _chat(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """Chat sockets of whole rooms: senders send ``text`` frames at a fixed rate (open loop), every socket
    records what it receives.

    params: url, run, compression, duration, grace, sockets [{sid, room, host, slug, token, rate,
    sender_index}] (rate 0: listens only). A message body is ``bench <run> <key> <t_send>`` where key is
    ``sender_index * 10**7 + n``; each receiver computes latency from the embedded send time.
    """
    run = params["run"]
    compression = params.get("compression")
    sockets_spec = params["sockets"]
    sockets: dict[int, Any] = {}
    connect_times: dict[int, tuple[float, float]] = {}
    connect_failures: dict[int, str] = {}

    # Everything a socket receives: keys in arrival order, latencies (first arrival only), errors.
    received: dict[int, list[int]] = {spec["sid"]: [] for spec in sockets_spec}
    latencies: list[float] = []
    echo_latencies: list[float] = []
    acks: dict[int, tuple[str, float]] = {}  # key -> (message id, t_ack), from the sender's own echo
    error_frames: Counter[str] = Counter()
    other_frames: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    reordered = 0
    sender_of_socket = {spec["sid"]: spec["sender_index"] for spec in sockets_spec}
    go_at = 0.0
    last_recv = {"t": 0.0}

    async def open_one(spec: dict[str, Any]) -> None:
        url = ws_url(params["url"], chat_path(spec["host"], spec["slug"]))
        started = time.monotonic()
        try:
            sockets[spec["sid"]] = await _open_socket(url, spec["token"], compression)
            connect_times[spec["sid"]] = (started, time.monotonic())
        except Exception as exc:  # noqa: BLE001 - a failed handshake is a figure, not a crash
            connect_failures[spec["sid"]] = f"{type(exc).__name__}: {exc}"[:200]

    connect_started = time.monotonic()
    await asyncio.gather(*(open_one(spec) for spec in sockets_spec))
    connect_finished = time.monotonic()

    async def reader(sid: int, ws: Any) -> None:
        nonlocal reordered
        own_sender = sender_of_socket[sid]
        arrivals = received[sid]
        seen: set[int] = set()
        last_n: dict[int, int] = {}
        try:
            async for raw in ws:
                now = time.monotonic()
                last_recv["t"] = now
                try:
                    frame = json.loads(raw)
                except ValueError:
                    other_frames["not json"] += 1
                    continue
                if "error" in frame:
                    error_frames[str(frame["error"])] += 1
                    continue
                if frame.get("type") != "chat_message" or frame.get("action") != "new":
                    other_frames[f"{frame.get('type')}/{frame.get('action')}"] += 1
                    continue
                parts = str(frame.get("body", "")).split(" ")
                if len(parts) < 4 or parts[0] != "bench" or parts[1] != run:
                    other_frames["foreign message"] += 1
                    continue
                key, sent_at = int(parts[2]), float(parts[3])
                arrivals.append(key)
                if key in seen:
                    continue
                seen.add(key)
                sender, n = divmod(key, 10**7)
                if last_n.get(sender, -1) > n:
                    reordered += 1
                last_n[sender] = n
                if sender == own_sender:
                    acks[key] = (str(frame.get("id")), now)
                    echo_latencies.append(now - sent_at)
                else:
                    latencies.append(now - sent_at)
        except Exception as exc:  # noqa: BLE001 - the close reason is reported
            if not stopping:  # our own close at the end may time out on a busy server: not a figure
                closes[type(exc).__name__] += 1
        else:
            code = ws.close_code
            if code not in (1000, 1001, None) or not stopping:
                closes[f"closed {code}"] += 1

    stopping = False
    readers = [asyncio.create_task(reader(sid, ws)) for sid, ws in sockets.items()]
    go_at = await _wait_go(
        conn,
        {
            "connected": len(sockets),
            "failures": len(connect_failures),
            "connect_seconds": connect_finished - connect_started,
        },
    )
    stop_at = go_at + params["duration"]
    sent: dict[int, float] = {}
    max_lag = 0.0
    send_failures: Counter[str] = Counter()
    filler = params.get("filler", "")

    async def sender(spec: dict[str, Any]) -> None:
        nonlocal max_lag
        ws = sockets.get(spec["sid"])
        rate = spec["rate"]
        if ws is None or rate <= 0:
            return
        interval = 1.0 / rate
        moment = go_at + random.random() * interval
        n = 0
        base = spec["sender_index"] * 10**7
        while moment < stop_at:
            await _sleep_until(moment)
            now = time.monotonic()
            max_lag = max(max_lag, now - moment)
            key = base + n
            n += 1
            frame = json.dumps({"type": "text", "message": f"bench {run} {key} {now:.6f} {filler}".rstrip()})
            try:
                await ws.send(frame)
                sent[key] = now
            except Exception as exc:  # noqa: BLE001
                send_failures[type(exc).__name__] += 1
                return
            moment += interval

    await asyncio.gather(*(sender(spec) for spec in sockets_spec))
    send_finished = time.monotonic()

    # Drain: wait until every sent message has been echoed to its sender and has reached every socket
    # of the room, or the grace period is over.
    room_of = {spec["sid"]: spec["room"] for spec in sockets_spec}
    room_sockets: dict[str, list[int]] = {}
    for sid in sockets:
        room_sockets.setdefault(room_of[sid], []).append(sid)
    sender_room = {spec["sender_index"]: spec["room"] for spec in sockets_spec if spec["rate"] > 0}
    expected_total = sum(len(room_sockets.get(sender_room[key // 10**7], [])) for key in sent)
    # A backlog still draining is late, not lost: keep waiting while frames arrive (no frame for
    # ``quiet`` seconds after the grace period ends the wait), at most ``max_drain`` seconds.
    grace_until = send_finished + params["grace"]
    hard_stop = send_finished + max(params.get("max_drain", 15.0), params["grace"])
    quiet = params.get("quiet", 3.0)
    while True:
        now = time.monotonic()
        if sum(len(v) for v in received.values()) >= expected_total or now >= hard_stop:
            break
        if now >= grace_until and now - max(last_recv["t"], send_finished) >= quiet:
            break
        await asyncio.sleep(0.05)
    drained = time.monotonic()
    stopping = True
    await asyncio.gather(*(ws.close() for ws in sockets.values()), return_exceptions=True)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)

    return {
        "connect_times": connect_times,
        "connect_failures": connect_failures,
        "sent": sent,
        "acks": acks,
        "received": received,
        "latencies": latencies,
        "echo_latencies": echo_latencies,
        "error_frames": dict(error_frames),
        "other_frames": dict(other_frames),
        "closes": dict(closes),
        "send_failures": dict(send_failures),
        "reordered": reordered,
        "max_send_lag": max_lag,
        "go_at": go_at,
        "send_finished": send_finished,
        "drain_seconds": drained - send_finished,
        "last_receipt": last_recv["t"],
    }


# --- idle connections -------------------------------------------------------------------------------


def idle_worker(conn: Connection, params: dict[str, Any]) -> None:
    _main(_idle, conn, params)


async def _idle(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """Hold authenticated sockets that send nothing. Commands: ("grow", n) opens sockets until this worker
    holds n (answer ("held", figures)); ("check",) counts those still open; ("close",) ends.

    params: url, mode ("chat" | "graphql-ws"), targets [(host, slug, token)], compression, concurrency."""
    from websockets.asyncio.client import connect

    mode = params["mode"]
    targets = params["targets"]
    compression = params.get("compression")
    held: list[Any] = []
    failures: Counter[str] = Counter()
    next_target = 0
    semaphore = asyncio.Semaphore(params.get("concurrency", 50))

    async def open_one(host: str, slug: str, token: str) -> None:
        async with semaphore:
            try:
                if mode == "chat":
                    ws = await _open_socket(ws_url(params["url"], chat_path(host, slug)), token, compression, 60)
                else:
                    ws = await connect(
                        ws_url(params["url"], "/graphql/"),
                        origin=ORIGIN,  # type: ignore[arg-type]
                        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                        additional_headers={"Cookie": f"JWT={token}"},
                        compression=compression,
                        ping_interval=None,
                        open_timeout=60,
                    )
                    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"JWT {token}"}}))
                    answer = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if answer.get("type") != "connection_ack":
                        await ws.close()
                        raise RuntimeError(f"no connection_ack: {answer}")
                held.append(ws)
            except Exception as exc:  # noqa: BLE001 - counted by kind
                text = str(exc)
                failures[f"{type(exc).__name__}: {text[:80]}"] += 1

    conn.send(("ready", {}))
    while True:
        command = await _recv(conn)
        if command[0] == "grow":
            wanted = int(command[1])
            started = time.monotonic()
            batch = []
            while len(held) + len(batch) < wanted and next_target < 10**9:
                host, slug, token = targets[next_target % len(targets)]
                next_target += 1
                batch.append(open_one(host, slug, token))
                if len(batch) + len(held) >= wanted:
                    break
            await asyncio.gather(*batch)
            conn.send(("held", {"open": len(held), "failures": dict(failures), "seconds": time.monotonic() - started}))
        elif command[0] == "check":
            alive = sum(1 for ws in held if ws.close_code is None)
            conn.send(("checked", {"open": alive, "held": len(held)}))
        elif command[0] == "close":
            for ws in held:
                ws.transport.abort()
            return {"open": len(held), "failures": dict(failures)}


# --- RPC ------------------------------------------------------------------------------------------------


def rpc_worker(conn: Connection, params: dict[str, Any]) -> None:
    _main(_rpc, conn, params)


async def _rpc(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """The gateway's RpcClient, in a process of its own. Commands:
    ("sequential", service, method, args, warmup, n) -> ("done", samples): n round trips one after another;
    ("concurrent", service, method, args, callers, seconds) -> ("done", samples, seconds);
    ("close",) ends.

    params: amqp_uri."""
    from gateway.rpc import RpcClient

    client = RpcClient(params["amqp_uri"], default_timeout=10, name="bench")
    await client.start()
    conn.send(("ready", {}))
    try:
        while True:
            command = await _recv(conn)
            if command[0] == "sequential":
                _, service, method, args, warmup, count = command
                for _ in range(warmup):
                    await client.call(service, method, *args)
                samples = []
                for _ in range(count):
                    started = time.perf_counter()
                    await client.call(service, method, *args)
                    samples.append(time.perf_counter() - started)
                conn.send(("done", samples))
            elif command[0] == "concurrent":
                _, service, method, args, callers, seconds = command
                concurrent: list[float] = []
                stop_at = time.monotonic() + seconds

                async def caller() -> None:
                    while time.monotonic() < stop_at:
                        started = time.perf_counter()
                        await client.call(service, method, *args)
                        concurrent.append(time.perf_counter() - started)

                began = time.monotonic()
                await asyncio.gather(*(caller() for _ in range(callers)))
                conn.send(("done", concurrent, time.monotonic() - began))
            else:
                return {}
    finally:
        await client.close()
