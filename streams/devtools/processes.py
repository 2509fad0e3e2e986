"""Worker processes the bench starts, and what it reads of them from ``/proc``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.devtools.broker import free_port

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def peak_rss(pid: int) -> int:
    """The peak resident set size of process ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class WorkerProcess:
    """One ``fraudmon worker`` subprocess."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()  # workers of one deployment share a config, not a web port
        handle = log.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "streams.cli", "worker", "--config", str(config)],
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "FRAUDMON_WEB__PORT": str(self.port)})
        handle.close()
        self.log = log

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"worker exited; log:\n{tail}")
        url = f"http://127.0.0.1:{self.port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def peak_rss(self) -> int:
        return peak_rss(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


async def wait_for(condition: Callable[[], Any], limit: float, what: str) -> None:
    """Poll the coroutine function ``condition`` until it is true; raise after ``limit``
    seconds, naming ``what``."""
    deadline = time.monotonic() + limit
    while not await condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting for {what}")
        await asyncio.sleep(0.2)  # polling a condition with a deadline
