"""Scenarios of `--serve` run inside a network namespace of their own (`unshare -n`), where only
loopback is up, so neither the run nor the browser can reach anything else:

    unshare -n python tests/web_namespace.py token  VIDEO MODEL OUT.json
    unshare -n python tests/web_namespace.py browser VIDEO MODEL OUT.json SCREENSHOT.png

`token`: the run bound beyond loopback (an address the scenario adds to the namespace's own
loopback device): without a token it is refused; with one, what answers with and without it.
`browser`: Debian's Chromium, headless, opens the page during a paced replay and takes a
screenshot. Each writes what it saw to OUT.json; every process it starts is stopped, bounded
in time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEYOND = "10.123.0.1"  # exists only inside this namespace
TOKEN = "namespace-test-token"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, timeout=10)


class Cli:
    """`python -m realtime ... --serve ...` in the background; its URL from the first line."""

    def __init__(self, *args: str, env=None):
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        full_env.pop("DISPLAY", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "realtime", "--ui", "none", "-q", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=full_env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line)

    def url(self, timeout: float = 120.0) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            for line in self.lines:
                if line.startswith("serving http://"):
                    return line.split()[1]
            time.sleep(0.05)
        return None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode


def get(url: str, headers=None, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for_state(base: str, ready, timeout: float = 120.0, query: str = "") -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = get(base + "api/state" + query)
        if status == 200:
            state = json.loads(body)
            if ready(state):
                return state
        time.sleep(0.2)
    return None


def token_scenario(video: str, model: str) -> dict:
    sh("ip", "addr", "add", f"{BEYOND}/32", "dev", "lo")
    run = ["--source", video, "--model", model, "--loop"]
    refused = subprocess.run(
        [sys.executable, "-m", "realtime", "--ui", "none", *run, "--serve", f"{BEYOND}:0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k != "REALTIME_SERVE_TOKEN"},
             "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    result = {"refused": {"code": refused.returncode, "stderr": refused.stderr}}
    cli = Cli(*run, "--serve", f"{BEYOND}:0", env={"REALTIME_SERVE_TOKEN": TOKEN})
    try:
        base = cli.url()
        result["url"] = base
        if base is None:
            result["stderr"] = "".join(cli.lines)
            return result
        answers = {}
        for path in ("", "api/state", "api/latest", "api/events", "metrics", "api/frame/cam1.jpg"):
            answers[path] = {
                "none": get(base + path)[0],
                "wrong": get(base + path, {"Authorization": "Bearer not-the-token"})[0],
                "bearer": get(base + path, {"Authorization": f"Bearer {TOKEN}"})[0],
                "query": get(f"{base}{path}?token={TOKEN}")[0],
            }
        answers["healthz"] = {"none": get(base + "healthz")[0]}
        result["answers"] = answers
    finally:
        result["exit"] = cli.stop()
    return result


def browser_scenario(video: str, model: str, screenshot: str) -> dict:
    cli = Cli("--source", video, "--model", model, "--loop", "--serve", "0")
    result: dict = {}
    try:
        base = cli.url()
        result["url"] = base
        if base is None:
            result["stderr"] = "".join(cli.lines)
            return result

        def ready(state):  # a prediction, and a timeline of at least 6 s
            camera = state["cameras"][0]
            return camera["latest"] is not None and len(camera["timeline"]) >= 30

        state = wait_for_state(base, ready)
        result["ready"] = state is not None
        if state is None:
            return result
        with tempfile.TemporaryDirectory() as profile:
            shot = subprocess.run(
                [
                    "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1300,900",
                    "--virtual-time-budget=5000", f"--screenshot={screenshot}", base,
                ],
                capture_output=True,
                text=True,
                timeout=90,
            )  # fmt: skip
        result["chromium"] = {"code": shot.returncode, "stderr": shot.stderr[-2000:]}
        result["labels"] = state["labels"]
        result["colours"] = state["colours"]
    finally:
        result["exit"] = cli.stop()
    return result


def main(argv: list[str]) -> int:
    mode, video, model, out, *rest = argv
    sh("ip", "link", "set", "lo", "up")
    if mode == "token":
        result = token_scenario(video, model)
    elif mode == "browser":
        result = browser_scenario(video, model, rest[0])
    else:
        raise SystemExit(f"unknown scenario {mode}")
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
