"""The targets, and the results as text tables (terminal), Markdown (README) and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

PASS, MISS, NOT_RUN = "pass", "MISS", "not run"  # and OTHER_SHAPE: run with other parameters


def _get(results: dict[str, Any], *path: Any) -> Any:
    value: Any = results
    for key in path:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return None
        if value is None:
            return None
    return value


def _readmix_at(results: dict[str, Any], clients: int) -> dict[str, Any] | None:
    for entry in results.get("readmix") or []:
        if entry.get("clients") == clients:
            return entry
    return None


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


# --- targets --------------------------------------------------------------------------------------------


OTHER_SHAPE = "other shape"


def _target(name: str, goal: str, measure: Callable[[], tuple[Any, bool] | None],
            shape: Callable[[], bool] = lambda: True) -> dict[str, Any]:
    """``measure`` gives (measured text, ok) or None when not run; ``shape`` says whether the run had
    the parameters the target is about (otherwise it is reported, but neither passes nor misses)."""
    try:
        outcome = measure()
    except (KeyError, TypeError):
        outcome = None
    if outcome is None:
        return {"target": name, "goal": goal, "measured": None, "result": NOT_RUN}
    measured, ok = outcome
    try:
        same = shape()
    except (KeyError, TypeError):
        same = False
    return {"target": name, "goal": goal, "measured": measured,
            "result": (PASS if ok else MISS) if same else OTHER_SHAPE}


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    def readmix_rate() -> tuple[Any, bool] | None:
        entry = _readmix_at(results, 16)
        if entry is None:
            return None
        return f"{entry['req_per_s']:.0f} req/s ({entry['errors']} errors)", entry["req_per_s"] >= 340 and entry["errors"] == 0

    def readmix_p99() -> tuple[Any, bool] | None:
        entry = _readmix_at(results, 16)
        if entry is None:
            return None
        return f"p99 {entry['p99_ms']:.0f} ms", entry["p99_ms"] <= 150

    def chat_latency() -> tuple[Any, bool] | None:
        chat = results.get("chat")
        if not chat or "latency" not in chat:
            return None
        p99 = chat["latency"]["p99_ms"]
        text = (
            f"{chat['offered_msg_per_s']:.0f} msg/s, {chat['deliveries_per_s']:.0f} deliveries/s, p99 "
            f"{_fmt(p99, ' ms', 0)}"
        )
        return text, p99 is not None and p99 < 250

    def chat_loss() -> tuple[Any, bool] | None:
        chat = results.get("chat")
        if not chat or "latency" not in chat:
            return None
        bad = chat["lost"] + chat["duplicated"] + chat["unacknowledged"] + chat["stored_missing"]
        text = (
            f"lost {chat['lost']}, duplicated {chat['duplicated']}, unacknowledged {chat['unacknowledged']}, "
            f"not stored {chat['stored_missing']}"
        )
        return text, bad == 0 and chat["connect_failures"] == 0

    def fanout_latency() -> tuple[Any, bool] | None:
        fan = results.get("fanout")
        if not fan or "latency" not in fan:
            return None
        p99 = fan["latency"]["p99_ms"]
        ok = p99 is not None and p99 < 100 and fan["lost"] == 0 and fan["duplicated"] == 0
        return f"p99 {_fmt(p99, ' ms', 0)}, lost {fan['lost']}, duplicated {fan['duplicated']}", ok

    def fanout_connect() -> tuple[Any, bool] | None:
        fan = results.get("fanout")
        if not fan or "latency" not in fan:
            return None
        seconds = fan["connect_all_s"]
        ok = seconds is not None and seconds <= 2.0 and fan["connected"] == fan["sockets"]
        return f"{fan['connected']}/{fan['sockets']} in {_fmt(seconds, ' s', 2)}", ok

    def idle_memory() -> tuple[Any, bool] | None:
        levels = _get(results, "connections", "levels")
        if not levels:
            return None
        last = levels[-1]
        text = f"{last['kib_per_socket']:.1f} KiB/socket at {last['alive']:,} sockets"
        return text, last["kib_per_socket"] <= 40 and last["alive"] >= last["target"]

    def rpc_p50() -> tuple[Any, bool] | None:
        health = _get(results, "rpc", "sequential", "users.health")
        if not health:
            return None
        return f"p50 {health['p50_ms']:.2f} ms (p99 {health['p99_ms']:.2f} ms)", health["p50_ms"] <= 2.0

    def readmix_shape() -> bool:
        entry = _readmix_at(results, 16)
        return bool(entry) and entry["duration_s"] >= 30 and results["dataset"]["read_rooms"] == 40

    def chat_shape() -> bool:
        chat = results["chat"]
        return (chat["rooms"], chat["members"], chat["rate_per_member"]) == (10, 10, 3.0) and chat["duration_s"] >= 15

    def fanout_shape() -> bool:
        fan = results["fanout"]
        return (fan["listeners"], fan["rate"]) == (200, 20.0) and fan["duration_s"] >= 10

    def connections_shape() -> bool:
        return max(level["target"] for level in results["connections"]["levels"]) >= 10000

    def rpc_shape() -> bool:
        return results["rpc"]["sequential"]["users.health"]["count"] >= 1000

    return [
        _target("Read mix, 16 clients: throughput", ">= 340 req/s, no errors", readmix_rate, readmix_shape),
        _target("Read mix, 16 clients: latency", "p99 <= 150 ms", readmix_p99, readmix_shape),
        _target("Chat 10x10 at 3 msg/s per member: latency", "p99 < 250 ms", chat_latency, chat_shape),
        _target("Chat 10x10: delivery", "nothing lost, duplicated or unstored", chat_loss, chat_shape),
        _target("Fan-out, 200 listeners at 20 msg/s: latency", "p99 < 100 ms, nothing lost", fanout_latency, fanout_shape),
        _target("Fan-out: connect 201 sockets", "all within 2 s", fanout_connect, fanout_shape),
        _target("Idle sockets: gateway memory", "<= 40 KiB per socket (10,000)", idle_memory, connections_shape),
        _target("RPC round trip gateway -> service", "p50 <= 2 ms", rpc_p50, rpc_shape),
    ]


# --- tables ------------------------------------------------------------------------------------------------


class Table:
    def __init__(self, title: str, headers: list[str], numeric: bool = True) -> None:
        self.title = title
        self.headers = headers
        self.numeric = numeric  # columns after the first are right-aligned
        self.rows: list[list[str]] = []

    def add(self, *cells: Any) -> None:
        self.rows.append([c if isinstance(c, str) else _fmt(c) for c in cells])

    def text(self) -> str:
        widths = [max(len(str(row[i])) for row in [self.headers, *self.rows]) for i in range(len(self.headers))]
        line = "  ".join("-" * w for w in widths)
        out = [self.title, line]
        out.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(self.headers, widths, strict=True))))
        out.append(line)
        for row in self.rows:
            out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"**{self.title}**", "", "| " + " | ".join(self.headers) + " |"]
        out.append("|" + "|".join("---" if i == 0 or not self.numeric else "---:" for i in range(len(self.headers))) + "|")
        for row in self.rows:
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        return "\n".join(out)


def _ms(summary: dict[str, Any] | None, key: str) -> str:
    if not summary:
        return "-"
    value = summary.get(key)
    return "-" if value is None else f"{value:.1f}"


CPU_ORDER = ["gateway", "users", "rooms", "messages", "postgres", "rabbitmq", "load generator", "other processes",
             "machine (all processes)"]


def tables(results: dict[str, Any]) -> list[Table]:
    out: list[Table] = []
    cpu_rows: list[tuple[str, dict[str, float]]] = []

    readmix = results.get("readmix") or []
    if readmix:
        table = Table("Read mix (closed loop, GraphQL over HTTP/1.1 keep-alive)",
                      ["clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "gateway CPU ms/req"])
        for entry in readmix:
            table.add(str(entry["clients"]), entry["req_per_s"], _ms(entry, "p50_ms"), _ms(entry, "p95_ms"),
                      _ms(entry, "p99_ms"), _ms(entry, "max_ms"), entry["errors"], entry["gateway_cpu_ms_per_request"])
            cpu_rows.append((f"read mix {entry['clients']} clients", entry["cpu"]["cores"]))
        out.append(table)
        first = readmix[0]
        table = Table(f"Read mix per operation ({first['clients']} clients; server = gateway request log)",
                      ["operation", "req/s", "p50 ms", "p99 ms", "errors", "server p50", "server p99", "RPCs/req"])
        log_by_op = first.get("gateway_log") or {}
        names = {"rooms (nested, 40)": "RoomsNested", "rooms by topic": "RoomsByTopic", "rooms by search": "RoomsBySearch",
                 "room by host+slug": "Room", "messages (200)": "RoomMessages", "topics": "Topics"}
        for operation, figures in first["operations"].items():
            server = log_by_op.get(names.get(operation, operation), {})
            table.add(operation, figures["req_per_s"], _ms(figures, "p50_ms"), _ms(figures, "p99_ms"), figures["errors"],
                      _ms(server, "p50_ms"), _ms(server, "p99_ms"), _fmt(server.get("rpc_calls"), digits=1))
        out.append(table)

    chats = []
    if results.get("chat") and "latency" in results["chat"]:
        chats.append(("chat", results["chat"]))
    if results.get("fanout") and "latency" in results["fanout"]:
        chats.append(("fan-out", results["fanout"]))
    if chats:
        table = Table("Chat and fan-out (WebSocket /ws/chat, latency = send -> receipt at each other member)",
                      ["run", "sockets", "connect s", "msg/s", "deliveries/s", "p50 ms", "p95 ms", "p99 ms", "max ms",
                       "lost", "dup", "unacked", "not stored"])
        for name, figures in chats:
            lat = figures["latency"]
            table.add(f"{name} {figures['label']}", f"{figures['connected']}/{figures['sockets']}",
                      _fmt(figures["connect_all_s"], digits=2), figures["offered_msg_per_s"], figures["deliveries_per_s"],
                      _ms(lat, "p50_ms"), _ms(lat, "p95_ms"), _ms(lat, "p99_ms"), _ms(lat, "max_ms"), figures["lost"],
                      figures["duplicated"], figures["unacknowledged"], figures["stored_missing"])
            cpu_rows.append((name, figures["cpu"]["cores"]))
        out.append(table)

    search = results.get("chat_search")
    if search and search.get("steps"):
        table = Table(
            f"Chat search ({search['rooms']}x{search['members']}, {search['step_s']:g} s per step; highest rate with "
            f"p99 < {search['p99_limit_ms']:g} ms and nothing lost: "
            f"{_fmt(search['highest_ok_rate_per_member'], ' msg/s per member', 1)})",
            ["msg/s per member", "msg/s", "deliveries/s", "p50 ms", "p99 ms", "max ms", "lost", "dup", "gateway cores",
             "messages cores", "machine cores", "other cores", "ok"],
        )
        for step in search["steps"]:
            table.add(_fmt(step["rate_per_member"], digits=1), step["msg_per_s"], step["deliveries_per_s"],
                      _fmt(step["p50_ms"]), _fmt(step["p99_ms"]), _fmt(step["max_ms"]), step["lost"], step["duplicated"],
                      _fmt(step["gateway_cores"], digits=2), _fmt(step["messages_cores"], digits=2),
                      _fmt(step["machine_cores"], digits=2), _fmt(step.get("other_cores"), digits=2),
                      "yes" if step["ok"] else "no")
        out.append(table)

    conns = results.get("connections")
    if conns and conns.get("levels"):
        table = Table(
            f"Idle authenticated sockets on a fresh gateway ({conns['mode']}, compression {conns['compression']}; "
            f"baseline RSS {conns['baseline_rss_kib'] / 1024:.1f} MiB)",
            ["sockets", "open", "RSS MiB", "KiB/socket", "marginal KiB/socket", "connect s", "handshakes/s",
             "CPU ms/handshake", "idle cores"],
        )
        for level in conns["levels"]:
            table.add(_fmt(level["target"]), level["alive"], round(level["gateway_rss_kib"] / 1024, 1),
                      level["kib_per_socket"], level["marginal_kib_per_socket"], level["connect_s"], level["handshakes_per_s"],
                      level["gateway_cpu_ms_per_handshake"], _fmt(level["gateway_idle_cores"], digits=3))
        out.append(table)

    rpc = results.get("rpc")
    if rpc and rpc.get("sequential"):
        table = Table("RPC round trip (gateway RpcClient from a separate process; CPU = per call)",
                      ["call", "calls", "calls/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "service CPU ms",
                       "broker CPU ms", "client CPU ms"])
        per_call = rpc.get("cpu_ms_per_call") or {}

        def cpu_cells(key: str) -> list[str]:
            cost = per_call.get(key) or {}
            return [_fmt(cost.get(name), digits=2) for name in ("users", "rabbitmq", "load generator")]

        for name, figures in rpc["sequential"].items():
            rate = 1000 / figures["mean_ms"] if figures.get("mean_ms") else None
            table.add(f"{name} (sequential)", figures["count"], _fmt(rate, digits=0), _fmt(figures["p50_ms"], digits=2),
                      _fmt(figures["p95_ms"], digits=2), _fmt(figures["p99_ms"], digits=2), _fmt(figures["max_ms"], digits=2),
                      *cpu_cells(name))
        con = rpc["concurrent"]
        table.add(f"{con['call']} ({con['concurrency']} concurrent)", con["count"], _fmt(con["calls_per_s"], digits=0),
                  _fmt(con["p50_ms"], digits=2), _fmt(con["p95_ms"], digits=2), _fmt(con["p99_ms"], digits=2),
                  _fmt(con["max_ms"], digits=2), *cpu_cells(f"{con['call']} (concurrent)"))
        out.append(table)

    if cpu_rows:
        names = [name for name in CPU_ORDER if any(name in cores for _, cores in cpu_rows)]
        table = Table("CPU cores used during each run (CPU seconds / wall seconds; the machine has "
                      f"{_get(results, 'machine', 'nproc')} cores)", ["run", *names])
        for label, cores in cpu_rows:
            table.add(label, *(_fmt(cores.get(name), digits=2) for name in names))
        out.append(table)

    targets = results.get("targets") or []
    if targets:
        table = Table("Targets", ["target", "goal", "measured", "result"], numeric=False)
        for target in targets:
            table.add(target["target"], target["goal"], target["measured"] or "-", target["result"])
        out.append(table)
    return out


def skipped_notes(results: dict[str, Any]) -> list[str]:
    notes = []
    for name in ("readmix", "chat", "chat_search", "fanout", "connections", "rpc"):
        value = results.get(name)
        if isinstance(value, dict) and value.get("skipped"):
            notes.append(f"{name}: skipped ({value['skipped']})")
        if isinstance(value, dict) and value.get("failed"):
            notes.append(f"{name}: FAILED ({value['failed'].splitlines()[-1] if value['failed'] else ''})")
    for name, other in (results.get("other_cores_before") or {}).items():
        if other > 0.25:
            notes.append(f"{name}: other processes on the machine used {other:.2f} cores just before it ran")
    if _get(results, "connections", "limit_reason"):
        notes.append(f"connections: {results['connections']['limit_reason']}")
    return notes


def machine_line(results: dict[str, Any]) -> str:
    machine = results.get("machine") or {}
    return (
        f"Machine: {machine.get('nproc')} cores ({machine.get('cpu_model')}), {machine.get('mem_total_gib')} GiB RAM, "
        f"Linux {machine.get('kernel')}, Python {machine.get('python')}; whole stack and load generator on this machine."
    )


def render_text(results: dict[str, Any]) -> str:
    parts = [machine_line(results), ""]
    for table in tables(results):
        parts += [table.text(), ""]
    for note in skipped_notes(results):
        parts.append("note: " + note)
    return "\n".join(parts)


def render_markdown(results: dict[str, Any]) -> str:
    parts = [f"Measured {results.get('started')} with `{results.get('command')}`.", "", machine_line(results), ""]
    for table in tables(results):
        parts += [table.markdown(), ""]
    for note in skipped_notes(results):
        parts.append(f"* {note}")
    return "\n".join(parts).rstrip() + "\n"


def write(results: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = results["started"].replace(":", "").replace("-", "")
    path = directory / f"bench-{stamp}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    markdown = directory / "latest.md"
    markdown.write_text(render_markdown(results))
    return path, markdown
