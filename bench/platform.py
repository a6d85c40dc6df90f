"""The platform under test: every service and a gateway as real processes (``testing.stack``) on a
database and a RabbitMQ virtual host made for this run (``testing.infra``), plus what the benchmark reads
about those processes (CPU time, resident memory, file descriptor limits) from ``/proc``."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from testing import infra
from testing.stack import Stack, existing_services

CLK_TCK = os.sysconf("SC_CLK_TCK")

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_RABBIT = "amqp://guest:guest@127.0.0.1:5672/"

# What every gateway of the bench stack runs with. The gateway trusts the loopback proxy so each simulated
# client can present its own address (D7 counts login attempts per address). The per-connection socket
# rate limit (D9: 5 frames/s, bursts of 10) is a policy, not a capacity: the fan-out sender (20 msg/s) and
# the chat search mode (rates above 5 msg/s per member) would hit it, so the bench raises it.
SOCKET_RATE = "1000"


def gateway_env(jwt_secret: str) -> dict[str, str]:
    return {
        "EDUSPHERE_ENV": "development",
        "JWT_SECRET": jwt_secret,
        "TRUSTED_PROXIES": "127.0.0.1",
        "SOCKET_RATE": SOCKET_RATE,
        "SOCKET_BURST": SOCKET_RATE,
    }


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; children (the stack's processes and the
    load workers) inherit it. Returns the (soft, hard) pair now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def ensure_fd_limit(pid: int, wanted: int) -> int:
    """Make sure process ``pid`` may open ``wanted`` descriptors (prlimit, up to its hard limit); returns
    its soft limit afterwards."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(OSError, ValueError):
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (target, hard))
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    return soft


# --- /proc -------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` (all its threads), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid: int, key: str = "VmRSS") -> int | None:
    """A ``kB`` line of ``/proc/<pid>/status`` (``VmRSS``, ``RssAnon``, ...), or None."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from ``/proc/stat``."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, already counted in user
    return total - idle, total


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def machine_info() -> dict[str, object]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_total = status_like("/proc/meminfo", "MemTotal")
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_total_gib": round(mem_total / 1024 / 1024, 1) if mem_total else None,
        "kernel": os.uname().release,
        "python": ".".join(map(str, sys.version_info[:3])),
    }


def status_like(path: str, key: str) -> int | None:
    with contextlib.suppress(OSError), open(path) as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


# --- the stack -------------------------------------------------------------------------------------


@dataclass
class BenchPlatform:
    """Context manager: the isolated database and vhost, then every service and one gateway, ready."""

    workdir: Path
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    name: str = field(default_factory=lambda: "edusphere_bench_" + uuid.uuid4().hex[:10])
    stack: Stack | None = None
    fd_limit: tuple[int, int] = (0, 0)
    _exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> BenchPlatform:
        os.environ.setdefault(infra.POSTGRES_ENV, LOCAL_POSTGRES)
        os.environ.setdefault(infra.RABBIT_ENV, LOCAL_RABBIT)
        self.fd_limit = raise_fd_limit()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            admin_url = self._exit.enter_context(infra.postgres_server())
            rabbit_uri, management_url = self._exit.enter_context(infra.rabbit_server())
            database_url = self._exit.enter_context(infra.isolated_database(admin_url, self.name))
            amqp_uri = self._exit.enter_context(infra.isolated_vhost(rabbit_uri, management_url, self.name))
            stack = Stack(database_url, amqp_uri, self.workdir, gateway_env=gateway_env(self.jwt_secret))
            self._exit.callback(stack.stop)
            self.stack = stack
            services = existing_services()
            stack.migrate(services)
            for service in services:
                stack.start_service(service)
            stack.start_gateway()
            stack.wait_ready(timeout=90)
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()

    # --- accessors ---------------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        assert self.stack is not None
        return self.stack.gateway_url

    @property
    def amqp_uri(self) -> str:
        assert self.stack is not None
        return self.stack.amqp_uri

    @property
    def database_url(self) -> str:
        assert self.stack is not None
        return self.stack.database_url

    def gateway_pid(self, index: int = 0) -> int:
        assert self.stack is not None
        process = self.stack.gateways[index].process
        assert process is not None
        return process.pid

    def start_extra_gateway(self) -> tuple[str, int]:
        """One more gateway (same settings) for a measurement that wants a fresh process; (url, pid)."""
        assert self.stack is not None
        url = self.stack.start_gateway()
        self.stack.wait_ready(timeout=60)
        process = self.stack.gateways[-1].process
        assert process is not None
        return url, process.pid

    def stop_gateway(self, pid: int) -> None:
        assert self.stack is not None
        for process in self.stack.gateways:
            if process.process is not None and process.process.pid == pid:
                process.stop()

    def component_pids(self) -> dict[str, list[int]]:
        """The processes whose CPU the report breaks down: gateways, services, this run's PostgreSQL
        backends, the RabbitMQ node."""
        assert self.stack is not None
        pids: dict[str, list[int]] = {}
        for index, gateway in enumerate(self.stack.gateways):
            if gateway.running and gateway.process is not None:
                pids["gateway" if index == 0 else f"gateway-{index + 1}"] = [gateway.process.pid]
        for name, process in self.stack.services.items():
            if process.running and process.process is not None:
                pids[name] = [process.process.pid]
        postgres: list[int] = []
        rabbit: list[int] = []
        pattern = re.compile(rf"postgres: (?:\S+: )?\S+ {re.escape(self.name)} ")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            comm = _comm(entry)
            if comm == "postgres" and pattern.search(_cmdline(entry)):
                postgres.append(int(entry))
            elif comm in ("beam.smp", "erl_child_setup", "epmd", "inet_gethost"):
                rabbit.append(int(entry))
        pids["postgres"] = postgres
        pids["rabbitmq"] = rabbit
        return pids

    def log_tail(self, name: str, lines: int = 30) -> str:
        assert self.stack is not None
        for process in [*self.stack.gateways, *self.stack.services.values()]:
            if process.name == name:
                return process.log_tail(lines)
        return ""


class CpuMeter:
    """CPU used by each component (and by the whole machine) between :meth:`start` and :meth:`stop`."""

    def __init__(self, platform: BenchPlatform, extra: dict[str, list[int]] | None = None) -> None:
        self.platform = platform
        self.extra = extra or {}
        self._start: dict[str, dict[int, float]] = {}
        self._machine: tuple[float, float] = (0.0, 0.0)
        self._wall = 0.0

    def _snapshot(self) -> dict[str, dict[int, float]]:
        groups = {**self.platform.component_pids(), **self.extra}
        snapshot: dict[str, dict[int, float]] = {}
        for name, pids in groups.items():
            snapshot[name] = {pid: value for pid in pids if (value := cpu_seconds(pid)) is not None}
        return snapshot

    def start(self) -> None:
        self._start = self._snapshot()
        self._machine = machine_busy()
        self._wall = time.monotonic()

    def stop(self, workers: float = 0.0) -> dict[str, object]:
        """Cores used per component over the interval (CPU seconds / wall seconds), the machine's busy
        share, and ``workers`` (the load generators' own CPU seconds, reported by them)."""
        end = self._snapshot()
        busy, total = machine_busy()
        wall = max(time.monotonic() - self._wall, 1e-9)
        cores: dict[str, float] = {}
        for name, pids in end.items():
            before = self._start.get(name, {})
            used = sum(value - before.get(pid, 0.0) for pid, value in pids.items())
            cores[name] = round(used / wall, 3)
        cores["load generator"] = round(cores.get("load generator", 0.0) + workers / wall, 3)
        busy_share = (busy - self._machine[0]) / max(total - self._machine[1], 1)
        ncpu = os.cpu_count() or 1
        cores["machine (all processes)"] = round(busy_share * ncpu, 3)
        known = sum(v for k, v in cores.items() if k != "machine (all processes)")
        cores["other processes"] = round(max(cores["machine (all processes)"] - known, 0.0), 3)
        return {"wall_seconds": round(wall, 2), "cores": cores}
