"""``--profile``: sample the stack's processes with py-spy while a workload runs, keep the collapsed
stacks under the results directory, and summarise the frames that take the time.

py-spy is not a dependency of the project: install it into the virtualenv (``.venv/bin/pip install
py-spy``) to use this option.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    if candidate.exists():
        return str(candidate)
    return shutil.which("py-spy")


class Profiler:
    """py-spy ``record`` of each named process (raw collapsed stacks), started and stopped together."""

    def __init__(self, directory: Path, label: str, pids: dict[str, int], rate: int = 97) -> None:
        self.directory = directory
        self.label = label
        self.pids = pids
        self.rate = rate
        self.running: list[tuple[str, Path, subprocess.Popen]] = []

    def __enter__(self) -> Profiler:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            output = self.directory / f"{self.label}-{name}.txt"
            process = subprocess.Popen(
                # --gil: only samples of the thread holding the GIL, i.e. where the process spends CPU in
                # Python (idle threads, such as eventlet's thread pool waiting for work, are left out).
                [binary, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "--gil",
                 "--output", str(output)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.running.append((name, output, process))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for _, _, process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for _, _, process in self.running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    def summaries(self, top: int = 25) -> dict[str, Any]:
        return {name: summarise(output, top) | {"file": str(output)} for name, output, _ in self.running}


def _short(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep the function and the file's tail.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    parts = where.split("/")
    tail = "/".join(parts[-2:]) if len(parts) > 1 else where
    if "site-packages/" in where:
        tail = where.split("site-packages/", 1)[1]
    elif "/python3." in where:
        tail = "stdlib/" + where.split("/python3.", 1)[1].split("/", 1)[-1]
    return f"{name} ({tail})"


def _function(frame: str) -> str:
    """A frame without its line number, so a function counts once however many lines it spans."""
    short = _short(frame)
    name, _, where = short.partition(" (")
    return f"{name} ({where.rstrip(')').rsplit(':', 1)[0]})"


def summarise(path: Path, top: int = 12) -> dict[str, Any]:
    """Top frames by own samples (where the CPU was, by line) and by inclusive samples (what it was
    doing, by function), and own samples by package."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"samples": 0, "own": [], "inclusive": [], "by_package": []}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame and not frame.startswith("process ") and not frame.startswith("thread ")]
        if not frames:
            continue
        total += count
        leaf = _short(frames[-1])
        own[leaf] += count
        for frame in set(_function(frame) for frame in frames):
            inclusive[frame] += count
        modules[_package(frames[-1])] += count

    def ranked(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": frame, "samples": n, "share": round(n / total, 3)} for frame, n in counter.most_common(top)]

    return {"samples": total, "own": ranked(own), "inclusive": ranked(inclusive), "by_package": ranked(modules)}


def _package(frame: str) -> str:
    _, _, where = frame.partition(" (")
    where = where.rstrip(")")
    if "site-packages/" in where:
        return where.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/python3." in where:
        return "stdlib:" + where.split("/python3.", 1)[1].split("/", 2)[1].split(".")[0]
    parts = Path(where).parts
    for anchor in ("gateway", "services", "common", "bench", "testing"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) : parts.index(anchor) + 2])
    return where.split(":")[0] or "?"
