"""The five workloads, run from the orchestrator: each seeds what it needs, starts worker processes
(:mod:`bench.workers`), synchronises their start, collects their samples and computes the figures."""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import workers
from bench.http import graphql_request
from bench.platform import BenchPlatform, CpuMeter, cpu_seconds, ensure_fd_limit, open_fds, status_kib
from bench.seed import SEARCH_TERM, TOPICS, Room, Seeder, client_address
from bench.stats import summary

CTX = multiprocessing.get_context("spawn")
ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class WorkloadError(RuntimeError):
    pass


# --- worker processes ---------------------------------------------------------------------------------


@dataclass
class Worker:
    process: Any
    conn: Any

    def expect(self, kind: str, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise WorkloadError(f"worker {self.process.pid} sent nothing for {timeout:.0f} s (waiting for {kind})")
        message = self.conn.recv()
        if message[0] == "error":
            raise WorkloadError(f"worker {self.process.pid} failed:\n{message[1]}")
        if message[0] != kind:
            raise WorkloadError(f"worker {self.process.pid} sent {message[0]!r}, expected {kind!r}")
        return message[1] if len(message) == 2 else tuple(message[1:])

    def send(self, *message: Any) -> None:
        self.conn.send(message)

    def stop(self) -> None:
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def spawn(target: Callable[..., None], params: list[dict[str, Any]]) -> list[Worker]:
    started = []
    for item in params:
        parent, child = CTX.Pipe()
        process = CTX.Process(target=target, args=(child, item), daemon=True)
        process.start()
        child.close()
        started.append(Worker(process, parent))
    return started


def run_synchronised(
    platform: BenchPlatform, target: Callable[..., None], params: list[dict[str, Any]], timeout: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Start workers, wait until each is ready, start them together, return (infos, results, cpu)."""
    pool = spawn(target, params)
    try:
        infos = [worker.expect("ready", 120) for worker in pool]
        meter = CpuMeter(platform, {"load generator": []})
        meter.start()
        t0 = time.monotonic() + 0.3
        for worker in pool:
            worker.send("go", t0)
        results = [worker.expect("result", timeout) for worker in pool]
        cpu = meter.stop(workers=0.0)
    finally:
        for worker in pool:
            worker.stop()
    wall = cpu["wall_seconds"]
    # The workers report the CPU they used from "go" to their result.
    cpu["cores"]["load generator"] = round(sum(r["cpu_seconds"] for r in results) / wall, 3)
    return infos, results, cpu


# --- read mix -------------------------------------------------------------------------------------------

ROOM_LIST = "id name slug description created topic { name } host { username }"
READ_OPERATIONS = {
    "rooms (nested, 40)": (
        "query RoomsNested { rooms { id name slug description created updated "
        "topic { id name } host { id username name avatar } participants { id username avatar } } }"
    ),
    "rooms by topic": f"query RoomsByTopic($topic: [String]) {{ rooms(topic: $topic) {{ {ROOM_LIST} }} }}",
    "rooms by search": f"query RoomsBySearch($search: String) {{ rooms(search: $search) {{ {ROOM_LIST} }} }}",
    "room by host+slug": (
        "query Room($hostSlug: String!, $roomSlug: String!) { room(hostSlug: $hostSlug, roomSlug: $roomSlug) "
        "{ id name slug description created host { id username name avatar } participants { id username avatar } "
        "topic { name } } }"
    ),
    "messages (200)": (
        "query RoomMessages($hostSlug: String!, $roomSlug: String!) { messages(hostSlug: $hostSlug, roomSlug: $roomSlug) "
        "{ id user { id username avatar } body edited created updated } }"
    ),
    "topics": "query Topics { topics { name } }",
}


def _read_variables(name: str, seeder: Seeder, index: int) -> dict[str, Any] | None:
    rooms = seeder.readmix_rooms
    if name == "rooms by topic":
        return {"topic": [TOPICS[index % len(TOPICS)]]}
    if name == "rooms by search":
        return {"search": SEARCH_TERM}
    if name == "room by host+slug":
        room = rooms[(index * 7) % len(rooms)]
        return {"hostSlug": room.host.username, "roomSlug": room.slug}
    if name == "messages (200)":
        assert seeder.busy_room is not None
        return {"hostSlug": seeder.busy_room.host.username, "roomSlug": seeder.busy_room.slug}
    return None


async def check_read_dataset(seeder: Seeder) -> dict[str, int]:
    """Each operation once, with the sizes it returns (so the figures are about the promised data)."""
    sizes = {}
    for name, query in READ_OPERATIONS.items():
        data = await seeder.gql(query, _read_variables(name, seeder, 0))
        value = next(iter(data.values()))
        sizes[name] = len(value) if isinstance(value, list) else 1
    if sizes["rooms (nested, 40)"] != len(seeder.readmix_rooms) or sizes["messages (200)"] < 1:
        raise WorkloadError(f"unexpected read-mix data set: {sizes}")
    return sizes


def _gateway_log_offset(platform: BenchPlatform) -> int:
    path = platform.workdir / "gateway-1.log"
    return path.stat().st_size if path.exists() else 0


def _gateway_request_log(platform: BenchPlatform, offset: int) -> dict[str, Any]:
    """Server-side durations and RPC calls per operation, from the gateway's request log lines."""
    path = platform.workdir / "gateway-1.log"
    durations: dict[str, list[float]] = {}
    rpc_calls: dict[str, list[int]] = {}
    with open(path, "rb") as handle:
        handle.seek(offset)
        for line in handle:
            if b'"duration_ms"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            operation = entry.get("operation") or "(anonymous)"
            durations.setdefault(operation, []).append(entry["duration_ms"] / 1000)
            rpc_calls.setdefault(operation, []).append(int(entry.get("rpc_calls", 0)))
    return {
        operation: {
            **{k: v for k, v in summary(samples).items() if k in ("count", "p50_ms", "p99_ms")},
            "rpc_calls": round(sum(rpc_calls[operation]) / len(rpc_calls[operation]), 2),
        }
        for operation, samples in durations.items()
    }


async def readmix(platform: BenchPlatform, seeder: Seeder, clients: int, duration: float, warmup: float,
            procs: int, http_client: str, authenticated: bool) -> dict[str, Any]:
    log(f"read mix: {clients} clients, {duration:g} s (+{warmup:g} s warm-up), {procs} load process(es)")
    users = seeder.users[:30]
    client_specs = []
    for index in range(clients):
        headers = {"X-Forwarded-For": client_address()}
        if authenticated:
            headers["Authorization"] = f"JWT {users[index % len(users)].token}"
        requests = [
            (name, graphql_request(platform.gateway_url + "/graphql/", query, _read_variables(name, seeder, index), headers))
            for name, query in READ_OPERATIONS.items()
        ]
        client_specs.append({"requests": requests})
    params = [
        {
            "url": platform.gateway_url,
            "clients": client_specs[p::procs],
            "warmup": warmup,
            "duration": duration,
            "http_client": http_client,
        }
        for p in range(procs)
        if client_specs[p::procs]
    ]
    offset = _gateway_log_offset(platform)
    _, results, cpu = await asyncio.to_thread(
        run_synchronised, platform, workers.readmix_worker, params, duration + warmup + 120
    )
    latencies: dict[str, list[float]] = {}
    completed: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    for result in results:
        for operation, values in result["latencies"].items():
            latencies.setdefault(operation, []).extend(values)
        completed.update(result["completed"])
        errors.update(result["errors"])
        for operation, text in result["error_samples"].items():
            samples.setdefault(operation, text)
    timeline: Counter[int] = Counter()
    for result in results:
        timeline.update({int(k): v for k, v in result["timeline"].items()})
    total = sum(completed.values())
    everything = [value for values in latencies.values() for value in values]
    operations = {
        operation: {
            "requests": completed[operation],
            "req_per_s": round(completed[operation] / duration, 1),
            "errors": errors[operation],
            **summary(latencies.get(operation, [])),
            **({"error_sample": samples[operation]} if operation in samples else {}),
        }
        for operation in READ_OPERATIONS
    }
    gateway_cores = cpu["cores"].get("gateway", 0.0)
    return {
        "clients": clients,
        "duration_s": duration,
        "warmup_s": warmup,
        "authenticated": authenticated,
        "http_client": http_client,
        "load_processes": len(params),
        "requests": total,
        "req_per_s": round(total / duration, 1),
        "errors": sum(errors.values()),
        **summary(everything),
        "gateway_cpu_ms_per_request": round(gateway_cores * 1000 / max(total / duration, 1e-9), 2),
        "operations": operations,
        "req_per_s_by_second": [timeline.get(second, 0) for second in range(int(duration))],
        "gateway_rss_kib": status_kib(platform.gateway_pid(), "VmRSS"),
        "gateway_log": _gateway_request_log(platform, offset),
        "cpu": cpu,
    }


# --- chat and fan-out ------------------------------------------------------------------------------------


STACK = ("gateway", "users", "rooms", "messages", "postgres")


async def settle(platform: BenchPlatform, busy_cores: float = 0.15, timeout: float = 30.0) -> float:
    """Wait (at most ``timeout``) until the stack is idle, so a run does not inherit the previous run's
    backlog; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        meter = CpuMeter(platform)
        meter.start()
        await asyncio.sleep(1.0)
        cores = meter.stop()["cores"]
        if sum(value for name, value in cores.items() if name in STACK) < busy_cores:
            break
    return round(time.monotonic() - started, 1)


def chat_available(platform: BenchPlatform) -> tuple[bool, str]:
    """Whether the chat socket exists: its module is present and the gateway upgrades the path."""
    if not (ROOT / "gateway" / "chat" / "socket.py").exists():
        return False, "gateway/chat/socket.py is not present yet"
    return True, "gateway/chat/socket.py present"


def _socket_specs(rooms: list[Room], senders: Callable[[Room, int], float]) -> list[dict[str, Any]]:
    specs = []
    sid = 0
    for room in rooms:
        for position, member in enumerate(room.members):
            specs.append(
                {
                    "sid": sid,
                    "room": room.id,
                    "host": room.host.username,
                    "slug": room.slug,
                    "token": member.token,
                    "rate": senders(room, position),
                    "sender_index": sid + 1,
                }
            )
            sid += 1
    return specs


def _split_by_room(specs: list[dict[str, Any]], procs: int) -> list[list[dict[str, Any]]]:
    rooms = list(dict.fromkeys(spec["room"] for spec in specs))
    if len(rooms) == 1 and procs > 1:  # one room (fan-out): split its sockets, sender in the first share
        return [part for part in (specs[p::procs] for p in range(procs)) if part]
    shares: list[list[dict[str, Any]]] = [[] for _ in range(min(procs, len(rooms)))]
    for number, room in enumerate(rooms):
        shares[number % len(shares)].extend(spec for spec in specs if spec["room"] == room)
    return shares


async def run_chat(platform: BenchPlatform, seeder: Seeder, rooms: list[Room], specs: list[dict[str, Any]], *,
             duration: float, grace: float, max_drain: float, procs: int, compression: str | None, message_bytes: int,
             label: str) -> dict[str, Any]:
    """One chat run: connect every socket, send for ``duration``, drain, then compute latencies, losses
    and duplicates, and check that every acknowledged message is stored."""
    settled = await settle(platform)
    run = f"r{int(time.time() * 1000) % 10**9}"
    base = len(f"bench {run} {10**9} {time.monotonic():.6f}")
    filler = "x" * max(message_bytes - base - 1, 0)
    params = [
        {
            "url": platform.gateway_url,
            "run": run,
            "compression": compression,
            "duration": duration,
            "grace": grace,
            "max_drain": max_drain,
            "sockets": share,
            "filler": filler,
        }
        for share in _split_by_room(specs, procs)
    ]
    infos, results, cpu = await asyncio.to_thread(
        run_synchronised, platform, workers.chat_worker, params, duration + grace + 180
    )

    spec_of = {spec["sid"]: spec for spec in specs}
    room_of_sender = {spec["sender_index"]: spec["room"] for spec in specs}
    sid_of_sender = {spec["sender_index"]: spec["sid"] for spec in specs}
    connected: dict[str, list[int]] = {}
    connect_start, connect_end = math.inf, 0.0
    sent: dict[int, float] = {}
    acks: dict[int, tuple[str, float]] = {}
    received: dict[int, list[int]] = {}
    latencies: list[float] = []
    echoes: list[float] = []
    failures: dict[int, str] = {}
    error_frames: Counter[str] = Counter()
    other_frames: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    send_failures: Counter[str] = Counter()
    reordered = 0
    max_lag = 0.0
    drain = 0.0
    for result in results:
        for sid, (start, end) in result["connect_times"].items():
            connected.setdefault(spec_of[sid]["room"], []).append(sid)
            connect_start, connect_end = min(connect_start, start), max(connect_end, end)
        failures.update(result["connect_failures"])
        sent.update(result["sent"])
        acks.update(result["acks"])
        received.update(result["received"])
        latencies.extend(result["latencies"])
        echoes.extend(result["echo_latencies"])
        error_frames.update(result["error_frames"])
        other_frames.update(result["other_frames"])
        closes.update(result["closes"])
        send_failures.update(result["send_failures"])
        reordered += result["reordered"]
        max_lag = max(max_lag, result["max_send_lag"])
        drain = max(drain, result["drain_seconds"])

    counts = {sid: Counter(keys) for sid, keys in received.items()}
    lost = duplicated = delivered = expected = 0
    for key in acks:
        sender = key // 10**7
        for sid in connected.get(room_of_sender[sender], []):
            count = counts.get(sid, Counter()).get(key, 0)
            duplicated += max(count - 1, 0)
            if sid == sid_of_sender[sender]:
                continue
            expected += 1
            if count == 0:
                lost += 1
            else:
                delivered += 1
    unacknowledged = len(set(sent) - set(acks))

    # Every acknowledged message must be stored (the messages query, through the gateway).
    acked_ids: dict[str, set[str]] = {}
    for key, (message_id, _) in acks.items():
        acked_ids.setdefault(room_of_sender[key // 10**7], set()).add(message_id)
    missing = 0
    room_by_id = {room.id: room for room in rooms}

    sent_stored = 0
    for room_id in {spec["room"] for spec in specs}:
        stored = await seeder.stored_messages(room_by_id[room_id])
        missing += len(acked_ids.get(room_id, set()) - stored.keys())
        sent_stored += sum(1 for body in stored.values() if body.startswith(f"bench {run} "))
    sockets = len(specs)
    rate_total = sum(spec["rate"] for spec in specs)
    figures = {
        "label": label,
        "sockets": sockets,
        "connected": sum(len(v) for v in connected.values()),
        "connect_failures": len(failures),
        "connect_failure_sample": next(iter(failures.values()), None),
        "connect_all_s": round(connect_end - connect_start, 3) if connect_end else None,
        "duration_s": duration,
        "offered_msg_per_s": round(rate_total, 1),
        "sent": len(sent),
        "acknowledged": len(acks),
        "unacknowledged": unacknowledged,
        "expected_deliveries": expected,
        "delivered": delivered,
        "deliveries_per_s": round(delivered / duration, 1),
        "lost": lost,
        "duplicated": duplicated,
        "reordered": reordered,
        "stored_missing": missing,
        "sent_and_stored_at_check": sent_stored,
        "latency": summary(latencies),
        "echo_latency": summary(echoes),
        "error_frames": dict(error_frames),
        "other_frames": dict(other_frames),
        "closes": dict(closes),
        "send_failures": dict(send_failures),
        "max_send_lag_ms": round(max_lag * 1000, 1),
        "drain_s": round(drain, 2),
        "load_processes": len(params),
        "stack_settled_s": settled,
        "cpu": cpu,
    }
    return figures


def chat_ok(figures: dict[str, Any], p99_limit_ms: float) -> bool:
    p99 = figures["latency"]["p99_ms"]
    return (
        p99 is not None
        and p99 < p99_limit_ms
        and figures["lost"] == 0
        and figures["duplicated"] == 0
        and figures["unacknowledged"] == 0
        and figures["stored_missing"] == 0
        and figures["connect_failures"] == 0
    )


async def chat(platform: BenchPlatform, seeder: Seeder, *, rooms: int, members: int, rate: float, duration: float,
         grace: float, max_drain: float, procs: int, compression: str | None, message_bytes: int) -> dict[str, Any]:
    chat_rooms = await seeder.chat_data(rooms, members)
    log(f"chat: {rooms} rooms x {members} members at {rate:g} msg/s per member for {duration:g} s")
    specs = _socket_specs(chat_rooms, lambda room, position: rate)
    figures = await run_chat(platform, seeder, chat_rooms, specs, duration=duration, grace=grace, max_drain=max_drain, procs=procs,
                       compression=compression, message_bytes=message_bytes, label=f"{rooms}x{members} @ {rate:g}/s")
    figures.update(rooms=rooms, members=members, rate_per_member=rate)
    return figures


async def chat_search(platform: BenchPlatform, seeder: Seeder, *, rooms: int, members: int, rates: list[float],
                step: float, grace: float, max_drain: float, procs: int, compression: str | None, message_bytes: int,
                p99_limit_ms: float) -> dict[str, Any]:
    """Raise the per-member rate step by step; the highest rate with p99 under the limit and nothing lost."""
    chat_rooms = await seeder.chat_data(rooms, members)
    steps = []
    best = None
    for rate in rates:
        log(f"chat search: {rate:g} msg/s per member for {step:g} s")
        specs = _socket_specs(chat_rooms, lambda room, position, rate=rate: rate)
        figures = await run_chat(platform, seeder, chat_rooms, specs, duration=step, grace=grace, max_drain=max_drain, procs=procs,
                           compression=compression, message_bytes=message_bytes, label=f"search @ {rate:g}/s")
        ok = chat_ok(figures, p99_limit_ms)
        steps.append(
            {
                "rate_per_member": rate,
                "msg_per_s": round(rate * rooms * members, 1),
                "deliveries_per_s": figures["deliveries_per_s"],
                "p50_ms": figures["latency"]["p50_ms"],
                "p99_ms": figures["latency"]["p99_ms"],
                "max_ms": figures["latency"]["max_ms"],
                "lost": figures["lost"],
                "duplicated": figures["duplicated"],
                "unacknowledged": figures["unacknowledged"],
                "stored_missing": figures["stored_missing"],
                "gateway_cores": figures["cpu"]["cores"].get("gateway"),
                "messages_cores": figures["cpu"]["cores"].get("messages"),
                "machine_cores": figures["cpu"]["cores"].get("machine (all processes)"),
                "other_cores": figures["cpu"]["cores"].get("other processes"),
                "ok": ok,
            }
        )
        if not ok:
            break
        best = rate
        await asyncio.sleep(1.0)
    return {
        "rooms": rooms,
        "members": members,
        "step_s": step,
        "p99_limit_ms": p99_limit_ms,
        "highest_ok_rate_per_member": best,
        "highest_ok_msg_per_s": round(best * rooms * members, 1) if best else None,
        "steps": steps,
    }


async def fanout(platform: BenchPlatform, seeder: Seeder, *, listeners: int, rate: float, duration: float,
           grace: float, max_drain: float, procs: int, compression: str | None, message_bytes: int) -> dict[str, Any]:
    room = await seeder.fanout_data(listeners)
    log(f"fan-out: 1 room, {listeners} listeners, 1 sender at {rate:g} msg/s for {duration:g} s")
    # The host (the sender) is the room's first member.
    specs = _socket_specs([room], lambda r, position: rate if position == 0 else 0.0)
    figures = await run_chat(platform, seeder, [room], specs, duration=duration, grace=grace, max_drain=max_drain, procs=procs,
                       compression=compression, message_bytes=message_bytes, label=f"{listeners} listeners @ {rate:g}/s")
    figures.update(listeners=listeners, rate=rate)
    return figures


# --- idle connections ---------------------------------------------------------------------------------------


async def connections(platform: BenchPlatform, seeder: Seeder, *, levels: list[int], mode: str, compression: str | None,
                procs: int, settle: float, concurrency: int, rooms: int, members: int,
                listeners: int) -> dict[str, Any]:
    """RSS of a fresh gateway process holding ``levels`` idle authenticated sockets (chat sockets of the
    chat rooms' and the fan-out room's members, in turn)."""
    if mode == "chat":
        rooms = [*await seeder.chat_data(rooms, members), await seeder.fanout_data(listeners)]
        targets = [(room.host.username, room.slug, member.token) for room in rooms for member in room.members]
    else:
        users = await seeder.ensure_users(30)
        targets = [("", "", user.token) for user in users]
    return await asyncio.to_thread(_connections, platform, targets, levels, mode, compression, procs, settle, concurrency)


def _connections(platform: BenchPlatform, targets: list[tuple[str, str, str]], levels: list[int], mode: str,
                 compression: str | None, procs: int, settle: float, concurrency: int) -> dict[str, Any]:
    top = max(levels)
    url, pid = platform.start_extra_gateway()
    gateway_fd_limit = ensure_fd_limit(pid, top + 2048)
    log(f"connections: fresh gateway pid {pid} (fd limit {gateway_fd_limit}), {mode} sockets, levels {levels}")
    procs = max(1, min(procs, math.ceil(top / 2500)))
    pool = spawn(
        workers.idle_worker,
        [
            {"url": url, "mode": mode, "targets": targets[p::procs] or targets, "compression": compression,
             "concurrency": max(concurrency // procs, 1)}
            for p in range(procs)
        ],
    )
    results: dict[str, Any] = {
        "mode": mode,
        "compression": compression or "none",
        "gateway_pid": pid,
        "gateway_fd_limit": gateway_fd_limit,
        "load_processes": procs,
        "levels": [],
    }
    try:
        for worker in pool:
            worker.expect("ready", 120)
        # Warm-up: a few sockets opened and counted in the baseline, so first-use allocations (imports,
        # caches, the RPC channel) are not charged to the sockets measured.
        warm = 20
        for worker in pool:
            worker.send("grow", max(warm // procs, 1))
        warm_open = sum(worker.expect("held", 300)["open"] for worker in pool)
        time.sleep(settle)
        baseline = status_kib(pid, "VmRSS") or 0
        results.update(baseline_rss_kib=baseline, warmup_sockets=warm_open)
        log(f"connections: baseline RSS {baseline / 1024:.1f} MiB with {warm_open} warm-up sockets")
        previous = (warm_open, baseline)
        for level in levels:
            started = time.monotonic()
            cpu_before = cpu_seconds(pid) or 0.0
            meter = CpuMeter(platform, {"load generator": [worker.process.pid for worker in pool]})
            meter.start()
            shares = [level // procs + (1 if p < level % procs else 0) for p in range(procs)]
            for worker, share in zip(pool, shares, strict=True):
                worker.send("grow", share)
            held = [worker.expect("held", 1800) for worker in pool]
            connect_s = time.monotonic() - started
            connect_cpu = (cpu_seconds(pid) or 0.0) - cpu_before
            connect_cores = meter.stop()["cores"]
            time.sleep(settle)
            idle_cpu_before = cpu_seconds(pid) or 0.0
            idle_started = time.monotonic()
            time.sleep(max(settle, 3.0))
            idle_cores = ((cpu_seconds(pid) or 0.0) - idle_cpu_before) / (time.monotonic() - idle_started)
            rss = status_kib(pid, "VmRSS") or 0
            for worker in pool:
                worker.send("check")
            alive = sum(worker.expect("checked", 120)["open"] for worker in pool)
            opened = sum(item["open"] for item in held)
            failures: Counter[str] = Counter()
            for item in held:
                failures.update(item["failures"])
            per_socket = (rss - baseline) / max(alive - warm_open, 1)
            marginal = (rss - previous[1]) / max(alive - previous[0], 1)
            entry = {
                "target": level,
                "opened": opened,
                "alive": alive,
                "failures": dict(failures),
                "connect_s": round(connect_s, 2),
                "handshakes_per_s": round((opened - previous[0]) / max(connect_s, 1e-9), 1),
                "gateway_cpu_ms_per_handshake": round(connect_cpu * 1000 / max(opened - previous[0], 1), 2),
                "gateway_rss_kib": rss,
                "gateway_open_fds": open_fds(pid),
                "kib_per_socket": round(per_socket, 2),
                "marginal_kib_per_socket": round(marginal, 2),
                "gateway_idle_cores": round(idle_cores, 3),
                "connect_cpu_cores": connect_cores,
            }
            results["levels"].append(entry)
            log(
                f"connections: {alive} open (target {level}), RSS {rss / 1024:.1f} MiB, "
                f"{per_socket:.1f} KiB/socket, connect {connect_s:.1f} s"
                + (f", failures {dict(failures)}" if failures else "")
            )
            previous = (alive, rss)
            if alive < level:
                results["limit_reason"] = (
                    f"only {alive} of {level} sockets open: {dict(failures) or 'closed after opening'}"
                )
                break
        for worker in pool:
            worker.send("close")
        for worker in pool:
            worker.expect("result", 300)
    finally:
        for worker in pool:
            worker.stop()
        platform.stop_gateway(pid)
    return results


# --- RPC ----------------------------------------------------------------------------------------------------


async def rpc(platform: BenchPlatform, seeder: Seeder, *, sequential: int, warmup: int, concurrency: int,
        duration: float) -> dict[str, Any]:
    """Round trips of the gateway's RpcClient from a separate process: ``users.health`` (the transport
    alone) and ``users.get_by_email`` (what every authenticated request asks first), one after another,
    then ``concurrency`` callers at once; with the CPU each call costs the service and the broker."""
    users = await seeder.ensure_users(1)
    log(f"rpc: {sequential} sequential calls each, then {concurrency} concurrent callers for {duration:g} s")
    return await asyncio.to_thread(_rpc, platform, users[0].email, sequential, warmup, concurrency, duration)


def _per_call_cpu(cpu: dict[str, Any], calls: int) -> dict[str, float]:
    seconds = cpu["wall_seconds"]
    return {
        name: round(cores * seconds * 1000 / max(calls, 1), 3)
        for name, cores in cpu["cores"].items()
        if name in ("users", "rabbitmq", "postgres", "load generator")
    }


def _rpc(platform: BenchPlatform, email: str, sequential: int, warmup: int, concurrency: int,
         duration: float) -> dict[str, Any]:
    pool = spawn(workers.rpc_worker, [{"amqp_uri": platform.amqp_uri}])
    worker = pool[0]
    results: dict[str, Any] = {"client": "gateway.rpc.RpcClient in a separate process (uvloop)", "sequential": {},
                               "cpu_ms_per_call": {}}
    try:
        worker.expect("ready", 120)
        extra = {"load generator": [worker.process.pid]}
        for service, method, args in (("users", "health", []), ("users", "get_by_email", [email])):
            worker.send("sequential", service, method, args, warmup, 0)
            worker.expect("done", 300)
            meter = CpuMeter(platform, extra)
            meter.start()
            worker.send("sequential", service, method, args, 0, sequential)
            samples = worker.expect("done", sequential + 120)
            cpu = meter.stop()
            name = f"{service}.{method}"
            results["sequential"][name] = summary(samples)
            results["cpu_ms_per_call"][name] = _per_call_cpu(cpu, len(samples))
        meter = CpuMeter(platform, extra)
        meter.start()
        worker.send("concurrent", "users", "health", [], concurrency, duration)
        message = worker.expect("done", duration + 120)
        cpu = meter.stop()
        samples, seconds = message if isinstance(message, tuple) else (message, duration)
        results["concurrent"] = {
            "call": "users.health",
            "concurrency": concurrency,
            "calls_per_s": round(len(samples) / seconds, 1),
            **summary(samples),
        }
        results["cpu_ms_per_call"]["users.health (concurrent)"] = _per_call_cpu(cpu, len(samples))
        results["cpu"] = cpu
        worker.send("close")
        worker.expect("result", 60)
    finally:
        worker.stop()
    return results

