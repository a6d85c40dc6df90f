"""``python -m bench``: start the stack, seed it, run the workloads, print the table, write the JSON.

Defaults are the figures of the benchmark issue; ``--quick`` is a smoke run of about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import report, workloads
from bench.platform import BenchPlatform, CpuMeter, machine_busy, machine_info
from bench.profile import Profiler
from bench.seed import Seeder
from bench.workloads import log

QUIET_CORES = 0.25
ALL_WORKLOADS = ["rpc", "readmix", "chat", "search", "fanout", "connections"]

QUICK = {
    "duration": 4.0,
    "warmup": 1.0,
    "chat_duration": 4.0,
    "search_rates": "1",
    "search_step": 3.0,
    "fanout_duration": 4.0,
    "rooms": 4,
    "members": 5,
    "listeners": 50,
    "connections": "300",
    "rpc_calls": 200,
    "rpc_duration": 1.0,
    "grace": 2.0,
    "max_drain": 5.0,
}


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Start the whole EduSphere stack on its own database and virtual host, load it from "
        "separate processes over HTTP and WebSocket, print the figures and write them as JSON.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (about a minute): " + ", ".join(
        f"{key.replace('_', '-')}={value}" for key, value in QUICK.items()))
    parser.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                        help="comma-separated subset of " + ",".join(ALL_WORKLOADS))
    group = parser.add_argument_group("read mix")
    group.add_argument("--clients", default="16,64", help="concurrent clients, one run per value")
    group.add_argument("--duration", type=float, default=30.0, help="measured seconds per read-mix run")
    group.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each read-mix run")
    group.add_argument("--read-rooms", type=int, default=40, help="rooms in the data set")
    group.add_argument("--read-messages", type=int, default=200, help="messages of the busy room")
    group.add_argument("--anonymous", action="store_true", help="read without a token (default: JWT like a logged-in SPA)")
    group.add_argument("--http-client", choices=["raw", "httpx"], default="raw",
                       help="raw: minimal keep-alive client on asyncio streams; httpx: httpx.AsyncClient")
    group.add_argument("--read-procs", type=int, default=1, help="load-generator processes of the read mix")
    group = parser.add_argument_group("chat")
    group.add_argument("--rooms", type=int, default=10, help="chat rooms")
    group.add_argument("--members", type=int, default=10, help="members per chat room (each one a socket)")
    group.add_argument("--rate", type=float, default=3.0, help="messages per second per member")
    group.add_argument("--chat-duration", type=float, default=15.0, help="seconds of sending")
    group.add_argument("--grace", type=float, default=5.0,
                       help="seconds to wait for late deliveries after sending; the wait goes on while frames "
                       "still arrive (until none for 3 s, at most --max-drain)")
    group.add_argument("--max-drain", type=float, default=10.0,
                       help="seconds after sending stops past which a missing delivery counts as lost")
    group.add_argument("--search-rates", default="0.5,1,1.5,2,3,4,5,6,8,10",
                       help="per-member rates the search mode tries, in order, until one fails")
    group.add_argument("--search-step", type=float, default=6.0, help="seconds per search step")
    group.add_argument("--p99-limit", type=float, default=250.0, help="p99 (ms) a search step must stay under")
    group.add_argument("--chat-procs", type=int, default=1, help="load-generator processes for chat and fan-out")
    group.add_argument("--message-bytes", type=int, default=80, help="length of each chat message body")
    group = parser.add_argument_group("fan-out")
    group.add_argument("--listeners", type=int, default=200)
    group.add_argument("--fanout-rate", type=float, default=20.0, help="messages per second of the one sender")
    group.add_argument("--fanout-duration", type=float, default=10.0)
    group = parser.add_argument_group("idle connections")
    group.add_argument("--connections", default="1000,10000", help="socket counts measured, ascending")
    group.add_argument("--socket", choices=["auto", "chat", "graphql-ws"], default="auto",
                       help="auto: the chat socket when it exists, else graphql-transport-ws on /graphql/")
    group.add_argument("--conn-procs", type=int, default=4, help="load-generator processes holding the sockets")
    group.add_argument("--conn-concurrency", type=int, default=100, help="handshakes in flight at once")
    group.add_argument("--settle", type=float, default=3.0, help="seconds before reading the RSS")
    group.add_argument("--ws-compression", choices=["deflate", "none"], default="deflate",
                       help="offer permessage-deflate like browsers do, or not")
    group = parser.add_argument_group("RPC")
    group.add_argument("--rpc-calls", type=int, default=1000, help="sequential calls per method")
    group.add_argument("--rpc-concurrency", type=int, default=16)
    group.add_argument("--rpc-duration", type=float, default=5.0)
    group = parser.add_argument_group("output")
    group.add_argument("--output-dir", default="bench-results", help="JSON, Markdown, logs and profiles go here")
    group.add_argument("--wait-quiet", type=float, default=0.0,
                       help="before each workload, wait up to this many seconds for other processes on the "
                       "machine (not the stack) to stop using CPU")
    group.add_argument("--profile", nargs="?", const="gateway,users,rooms,messages", default="",
                       metavar="PROCESSES",
                       help="sample these processes (default: all four) with py-spy during each workload; "
                       "stacks and a summary go to the output directory (py-spy is not a dependency: "
                       ".venv/bin/pip install py-spy)")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    chosen = {w.strip() for w in args.workloads.split(",") if w.strip()}
    unknown = chosen - set(ALL_WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    args.workload_list = [w for w in ALL_WORKLOADS if w in chosen]  # always in this order (see run())
    return args


async def run(args: argparse.Namespace, platform: BenchPlatform, results: dict[str, Any], output: Path) -> None:
    compression = None if args.ws_compression == "none" else "deflate"
    chat_ok, chat_reason = workloads.chat_available(platform)
    results["stack"]["chat_socket"] = chat_reason

    def profiled(label: str) -> contextlib.AbstractContextManager[Any]:
        if not args.profile:
            return contextlib.nullcontext()
        wanted = {name.strip() for name in args.profile.split(",")}
        pids = {"gateway": platform.gateway_pid()} if "gateway" in wanted else {}
        for name, pids_of in platform.component_pids().items():
            if name in wanted and name in ("users", "rooms", "messages") and pids_of:
                pids[name] = pids_of[0]
        return Profiler(output / "profiles", label, pids)

    async def attempt(name: str, body: Any) -> Any:
        started = time.monotonic()
        try:
            value = await body
        except Exception:  # noqa: BLE001 - one workload failing does not lose the others' figures
            text = traceback.format_exc()
            log(f"{name} FAILED:\n{text}")
            return {"failed": text}
        log(f"{name} done in {time.monotonic() - started:.0f} s")
        return value

    async def wait_quiet(name: str) -> None:
        """Other work on the machine (the stack's own processes aside) distorts the figures: note it, and
        with --wait-quiet wait for it to end first."""
        deadline = time.monotonic() + args.wait_quiet
        while True:
            meter = CpuMeter(platform)
            meter.start()
            await asyncio.sleep(1.5)
            other = meter.stop()["cores"]["other processes"]
            if other <= QUIET_CORES or time.monotonic() >= deadline:
                break
            log(f"{name}: waiting for other processes to quieten ({other:.2f} cores in use by them)")
            await asyncio.sleep(3)
        results.setdefault("other_cores_before", {})[name] = other
        if other > QUIET_CORES:
            log(f"{name}: other processes use {other:.2f} cores; figures will suffer")

    async with Seeder(platform.gateway_url, platform.amqp_uri, platform.jwt_secret) as seeder:
        log("seeding: users, topics, rooms, participants, messages")
        started = time.monotonic()
        # Only the read mix's rooms exist while it runs (its room list must hold exactly those): the chat
        # and fan-out rooms are created by their workloads, which run after it.
        await seeder.readmix_data(args.read_rooms, args.read_messages)
        login_token = await seeder.login_once(seeder.users[0])
        results["dataset"] = {
            "users": len(seeder.users),
            "read_rooms": len(seeder.readmix_rooms),
            "busy_room_messages": args.read_messages,
            "operation_sizes": await workloads.check_read_dataset(seeder),
            "seed_seconds": round(time.monotonic() - started, 1),
            "real_login_checked": bool(login_token),
        }
        log(f"seeded in {results['dataset']['seed_seconds']} s: {results['dataset']}")

        for name in args.workload_list:
            if name in ("chat", "search", "fanout") and not chat_ok:
                results[{"search": "chat_search"}.get(name, name)] = {"skipped": chat_reason}
                log(f"{name}: skipped ({chat_reason})")
                continue
            await wait_quiet(name)
            with profiled(name) as profiler:
                if name == "rpc":
                    results["rpc"] = await attempt(name, workloads.rpc(
                        platform, seeder, sequential=args.rpc_calls, warmup=min(100, args.rpc_calls),
                        concurrency=args.rpc_concurrency, duration=args.rpc_duration))
                elif name == "readmix":
                    entries = []
                    for clients in _ints(args.clients):
                        entries.append(await attempt(f"read mix {clients}", workloads.readmix(
                            platform, seeder, clients, args.duration, args.warmup, args.read_procs,
                            args.http_client, not args.anonymous)))
                    results["readmix"] = [entry for entry in entries if "failed" not in entry]
                    failed = [entry for entry in entries if "failed" in entry]
                    if failed:
                        results["readmix_failed"] = failed
                elif name == "chat":
                    results["chat"] = await attempt(name, workloads.chat(
                        platform, seeder, rooms=args.rooms, members=args.members, rate=args.rate,
                        duration=args.chat_duration, grace=args.grace, max_drain=args.max_drain, procs=args.chat_procs,
                        compression=compression, message_bytes=args.message_bytes))
                elif name == "search":
                    results["chat_search"] = await attempt(name, workloads.chat_search(
                        platform, seeder, rooms=args.rooms, members=args.members, rates=_floats(args.search_rates),
                        step=args.search_step, grace=args.grace, max_drain=args.max_drain, procs=args.chat_procs, compression=compression,
                        message_bytes=args.message_bytes, p99_limit_ms=args.p99_limit))
                elif name == "fanout":
                    results["fanout"] = await attempt(name, workloads.fanout(
                        platform, seeder, listeners=args.listeners, rate=args.fanout_rate,
                        duration=args.fanout_duration, grace=args.grace, max_drain=args.max_drain, procs=args.chat_procs,
                        compression=compression, message_bytes=args.message_bytes))
                elif name == "connections":
                    mode = args.socket if args.socket != "auto" else ("chat" if chat_ok else "graphql-ws")
                    results["connections"] = await attempt(name, workloads.connections(
                        platform, seeder, levels=_ints(args.connections), mode=mode, compression=compression,
                        procs=args.conn_procs, settle=args.settle, concurrency=args.conn_concurrency,
                        rooms=args.rooms, members=args.members, listeners=args.listeners))
            if profiler is not None:
                results.setdefault("profiles", {})[name] = profiler.summaries()
        results["dataset"].update(
            users=len(seeder.users),
            chat_rooms=len(seeder.chat_rooms),
            fanout_room_members=len(seeder.fanout_room.members) if seeder.fanout_room else 0,
        )


def background_cores(seconds: float = 2.0) -> float:
    """Cores in use on the machine before the benchmark starts anything (other work disturbs figures)."""
    busy, total = machine_busy()
    time.sleep(seconds)
    busy2, total2 = machine_busy()
    return round((busy2 - busy) / max(total2 - total, 1) * (os.cpu_count() or 1), 2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    output = Path(args.output_dir).resolve()
    results: dict[str, Any] = {
        "started": started,
        "command": "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(),
        "parameters": {k: v for k, v in vars(args).items() if k != "workload_list"},
        "stack": {},
    }
    background = background_cores()
    results["machine"]["busy_cores_before_start"] = background
    if background > 0.25:
        log(f"warning: the machine is already busy ({background:.2f} cores in use before the stack starts); "
            "figures will be lower than on a quiet machine (see 'other processes' in the CPU table)")
    clock = time.monotonic()
    workdir = output / f"run-{started.replace(':', '')}"
    log(f"starting the stack (logs in {workdir})")
    exit_code = 0
    try:
        with BenchPlatform(workdir) as platform:
            results["stack"].update(
                database=platform.name,
                gateway_url=platform.gateway_url,
                gateway_pid=platform.gateway_pid(),
                fd_limit=list(platform.fd_limit),
                gateway_env={k: v for k, v in platform.stack.gateway_env.items() if k != "JWT_SECRET"},
            )
            log(f"stack ready in {time.monotonic() - clock:.0f} s: {platform.gateway_url}")
            asyncio.run(run(args, platform, results, output))
    except KeyboardInterrupt:
        log("interrupted")
        exit_code = 130
    except Exception:  # noqa: BLE001 - reported with whatever figures exist
        log("FAILED:\n" + traceback.format_exc())
        results["failed"] = traceback.format_exc()
        exit_code = 1
    results["total_seconds"] = round(time.monotonic() - clock, 1)
    results["targets"] = report.evaluate_targets(results)
    if any(isinstance(v, dict) and v.get("failed") for v in results.values()):
        exit_code = exit_code or 1
    path, markdown = report.write(results, output)
    print()
    print(report.render_text(results))
    print()
    print(f"total {results['total_seconds']:.0f} s; figures in {path} (Markdown: {markdown})")
    return exit_code
