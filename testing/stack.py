"""The whole platform as real processes for end-to-end tests: every service under `nameko run` and any
number of gateways under uvicorn, on the run's own database and virtual host."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def existing_services() -> list[str]:
    """The services the platform runs, in start order."""
    from services import DEPLOYED

    return list(DEPLOYED)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ManagedProcess:
    """One child process with its output in a log file; started and stopped on demand."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if not self.running:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def kill(self) -> None:
        """Die abruptly, as a crash would."""
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@dataclass
class Stack:
    database_url: str
    amqp_uri: str
    workdir: Path
    gateway_env: dict[str, str] = field(default_factory=dict)
    services: dict[str, ManagedProcess] = field(default_factory=dict)
    gateways: list[ManagedProcess] = field(default_factory=list)
    gateway_urls: list[str] = field(default_factory=list)
    named_gateway_urls: dict[str, str] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return self.gateway_urls[0]

    @property
    def media_root(self) -> Path:
        return self.workdir / "media"

    def base_env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("EDUSPHERE_TEST_")}
        env.update(
            DATABASE_URL=self.database_url,
            AMQP_URI=self.amqp_uri,
            PYTHONUNBUFFERED="1",
            OUTBOX_POLL_INTERVAL="0.5",
            LOG_LEVEL="INFO",
        )
        return env

    def migrate(self, services: list[str]) -> None:
        subprocess.run(
            [str(BIN / "python"), "-m", "common.migrations", *services],
            cwd=ROOT, env=self.base_env(), check=True, capture_output=True, timeout=120,
        )

    def start_service(self, name: str) -> ManagedProcess:
        from services import DEPLOYED

        process = self.services.get(name)
        if process is None:
            process = ManagedProcess(
                name,
                [str(BIN / "nameko"), "run", DEPLOYED[name], "--config", "services/config.yml"],
                self.base_env(),
                self.workdir / f"{name}.log",
            )
            self.services[name] = process
        process.start()
        return process

    def start_gateway(self, **settings: str) -> str:
        """Start one more gateway (settings override the stack's gateway environment); returns its URL."""
        port = free_port()
        env = self.base_env()
        env.update(self.gateway_env)
        env.update(GATEWAY_SERVICES=",".join(self.services), MEDIA_ROOT=str(self.media_root))
        env.update(settings)
        process = ManagedProcess(
            f"gateway-{len(self.gateways) + 1}",
            [
                str(BIN / "uvicorn"), "gateway.app:app", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                # D9: frames over 16 KiB close with 1009 (the gateway checks too; see SOCKET_MAX_FRAME_BYTES).
                "--ws-max-size", "16384",
                # Chat frames are small JSON; a compressor per socket would cost ~45 KiB each.
                "--ws-per-message-deflate", "false",
            ],
            env,
            self.workdir / f"gateway-{len(self.gateways) + 1}.log",
        )
        process.start()
        url = f"http://127.0.0.1:{port}"
        self.gateways.append(process)
        self.gateway_urls.append(url)
        return url

    def named_gateway(self, name: str, **settings: str) -> str:
        """A gateway started once per ``name`` for the whole run (with ``settings``), shared by every test
        that asks for it; returns its URL once it is ready."""
        url = self.named_gateway_urls.get(name)
        if url is None:
            url = self.named_gateway_urls[name] = self.start_gateway(**settings)
            self.wait_ready()
        return url

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every gateway reports ready (broker up, every service answering)."""
        deadline = time.monotonic() + timeout
        for process, url in zip(self.gateways, self.gateway_urls):
            while True:
                for child in [process, *self.services.values()]:
                    if not child.running:
                        raise RuntimeError(f"{child.name} exited during start-up:\n{child.log_tail()}")
                try:
                    with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{process.name} not ready after {timeout}s:\n{process.log_tail()}")
                time.sleep(0.2)

    def stop(self) -> None:
        for process in [*self.gateways, *self.services.values()]:
            process.stop()
