"""Ray's node processes, started and stopped by `head` and `worker`.

Each runs `ray start ... --block` as its child, in this command's process group (a worker killed
with its whole process group takes its Ray node with it: Ray sees the machine die). Stopping sends
that child SIGTERM, on which Ray stops the node's processes, then SIGKILL after a grace period.
`ray stop` is never used: it stops every Ray process of the machine, other clusters' too.

Node failure detection (how soon a dead machine's cameras move) is set on the head
(`HEALTH_CHECK`): the head asks each node every 0.5 s, a node missing 3 answers in a row
(0.5 s each) is dead: about 2 s after a machine dies Ray restarts its cameras elsewhere (Ray's
defaults check less often).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from realtime.core.errors import InputError

DEFAULT_PORT = 6390  # not Ray's 6379 (Redis's port): a cluster of ours is not someone else's
NAMESPACE = "realtime"
RESOURCE = "camera_fps"  # a worker's capacity; each camera reserves its sampling rate of it
CONTROLLER = "controller"
MODEL_KEY = b"model"
ADDRESS_ENV = "REALTIME_CLUSTER"  # up/status/down: the head's HOST:PORT when not given

HEALTH_CHECK = {
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
    "health_check_initial_delay_ms": 0,
}

NATIVE_WARNING = re.compile(r"\[[\d-]+ [\d:,]+ [WI] \d+ \d+\]")

#: Ray without its telemetry (no call home) and without its dashboard
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


@dataclass(frozen=True)
class HeadAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: str | None) -> HeadAddress:
    """HOST:PORT (or HOST: the default port); None: $REALTIME_CLUSTER, else 127.0.0.1."""
    text = text or os.environ.get(ADDRESS_ENV) or f"127.0.0.1:{DEFAULT_PORT}"
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(DEFAULT_PORT))
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"{text!r} is not HOST:PORT (the head's address, e.g. 10.0.0.5:6390)")
    return HeadAddress(host, int(port))


def ray_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ray.scripts.scripts", *args]


def _deaf_to_the_terminal() -> None:
    """In the node's process (and the processes it starts): a Ctrl-C or a closed terminal, sent
    to the whole foreground process group, is for our command, which then stops the node in
    order (cameras, last lines, then `stop`); a node stopped first would lose them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


class RayNode:
    """One Ray node (head or worker) run by this process, stopped with it."""

    def __init__(self, argv: list[str], what: str):
        self.argv = argv
        self.what = what
        self.process: subprocess.Popen | None = None
        self.output: deque[str] = deque(maxlen=40)
        self._started = threading.Event()

    @classmethod
    def head(cls, address: HeadAddress) -> RayNode:
        host, port = address.host, address.port
        return cls(
            ray_command(
                "start",
                "--head",
                "--block",
                f"--node-ip-address={host}",
                f"--port={port}",
                "--num-cpus=0",
                "--num-gpus=0",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--system-config={json.dumps(HEALTH_CHECK)}",
            ),
            f"the head node on {address}",
        )

    @classmethod
    def worker(cls, address: HeadAddress, host: str, capacity_fps: int) -> RayNode:
        return cls(
            ray_command(
                "start",
                "--block",
                f"--address={address}",
                f"--node-ip-address={host}",
                "--num-cpus=0",
                "--num-gpus=0",
                f"--resources={json.dumps({RESOURCE: capacity_fps})}",
            ),
            f"a worker node on {host}",
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start it and return once Ray says it runs; InputError with Ray's last lines if it
        exits first (a port in use, an unreachable head...)."""
        env = {**os.environ, **RAY_ENV}
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            errors="replace",
            preexec_fn=_deaf_to_the_terminal,
        )
        threading.Thread(target=self._read, name="ray-node-output", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._started.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise InputError(f"could not start {self.what}: {self.reason()}")

    def _read(self) -> None:
        for line in self.process.stdout:
            line = line.strip()
            if line:
                self.output.append(line)
            if "Ray runtime started" in line:
                self._started.set()

    def reason(self) -> str:
        """Ray's last words worth one line (not its native warnings: `[date time W pid] ...`)."""
        for line in reversed(self.output):
            if NATIVE_WARNING.match(line):
                continue
            lowered = line.lower()
            if "error" in lowered or "failed" in lowered or "unable" in lowered:
                return line[:300]
        if self.process is not None and self.process.poll() is not None:
            return f"ray start exited with status {self.process.returncode}"
        return "it did not start in time"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM (Ray stops the node's processes), then SIGKILL to every process of the node
        still there after `grace` seconds (Ray's own stop waits for a drain that can take 15 s
        and more; our cameras are already stopped, and Ray notices the node's death within
        about 2 s either way)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        tree = descendants(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            tree |= descendants(process.pid)
            process.kill()
            process.wait()
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def descendants(pid: int) -> set[int]:
    """Every process below `pid` now (read from /proc: Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
