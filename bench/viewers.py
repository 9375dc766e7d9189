"""Viewers never slow the inference loop: the same run without `--serve`, with `--serve` and no
viewer, and with 20 viewers (one of them stuck, never reading), side by side in one run:
`python -m bench.viewers` (or `python -m bench --viewers`).

The run: two cameras, each a paced 640x360 H.264 video at 25 fps replayed in a loop
(`--loop`, as a live source delivers it: frames the model has no time for are dropped), one
backbone (InceptionV3 on the default backend, its weights seeded random since ImageNet's
cannot be downloaded here, and the shared `.tflite` on LiteRT). The variants alternate (A B C
C B A ...), each measured for `--seconds` after every camera's first prediction and a warm-up.

A viewer does what the page does in a browser: `/api/state` every 0.5 s and `/api/events`
every 2 s on a keep-alive connection, and each camera's MJPEG stream (`/api/video/CAM.mjpg`,
up to 10 pictures a second) read as it comes. The stuck viewer opens both cameras' streams and
never reads. Figures from the JSONL lines written in the measured span (dropped
frames, frame age) and from /proc (the run's CPU), and the viewers' own count of answers.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cameras import (  # noqa: E402
    cpu_seconds,
    read_records,
    realtime_command,
    report,
    setup,
)
from bench.startup import cpu_name  # noqa: E402

VARIANTS = ("no --serve", "--serve, no viewer", "--serve, 20 viewers")
WARMUP_S = 3.0


class Viewer(threading.Thread):
    """One browser's polls (`/api/state` every 0.5 s, `/api/events` every 2 s) on one
    keep-alive connection, and each camera's MJPEG stream read as it comes, until `stop`."""

    def __init__(self, host: str, port: int, cameras: list[str], stop: threading.Event):
        super().__init__(daemon=True)
        self.host, self.port, self.cameras, self.stop = host, port, cameras, stop
        self.answers = 0  # polls answered and pictures received
        self.failures = 0
        self.streams = [threading.Thread(target=self._watch, args=(c,), daemon=True)
                        for c in cameras]  # fmt: skip

    def _watch(self, camera: str) -> None:
        marker = b"--frame\r\n"
        with socket.create_connection((self.host, self.port), timeout=10) as s:
            s.sendall(f"GET /api/video/{camera}.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            tail = b""
            while not self.stop.is_set():
                try:
                    chunk = s.recv(262144)
                except OSError:
                    self.failures += 1
                    return
                if not chunk:
                    self.failures += 1
                    return
                data = tail + chunk
                self.answers += data.count(marker)
                tail = data[-(len(marker) - 1) :]

    def run(self) -> None:
        for stream in self.streams:
            stream.start()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        due = {"/api/state": 0.0, "/api/events": 0.0}
        periods = {"/api/state": 0.5, "/api/events": 2.0}
        while not self.stop.is_set():
            now = time.monotonic()
            path = min(due, key=due.get)
            if due[path] > now:
                self.stop.wait(due[path] - now)
                continue
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                self.answers += response.status == 200
                self.failures += response.status != 200
            except (OSError, http.client.HTTPException):
                self.failures += 1
                connection.close()
                connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            due[path] = time.monotonic() + periods[path]  # the next once this one arrived
        connection.close()
        for stream in self.streams:
            stream.join(15)


def stuck_viewer(host: str, port: int, cameras: list[str]) -> list[socket.socket]:
    """Connections that open every camera's stream and never read (closed by the caller)."""
    stuck = []
    for camera in cameras:
        s = socket.create_connection((host, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /api/video/{camera}.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        stuck.append(s)
    return stuck


def measure(command: list[str], env: dict, jsonl: Path, viewers: int, seconds: float) -> dict:
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    stop = threading.Event()
    clients: list[Viewer] = []
    stuck: list[socket.socket] = []
    try:
        url = None
        if "--serve" in command:
            for line in proc.stderr:
                if line.startswith("serving http://"):
                    url = line.split()[1]
                    break
            if url is None:
                raise RuntimeError("the run did not say where it serves")
        deadline = time.monotonic() + 180
        while len({r["camera"] for r in read_records(jsonl)}) < 2:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the run did not start")
            time.sleep(0.5)
        if viewers:
            host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
            stuck = stuck_viewer(host, int(port), ["cam1", "cam2"])
            clients = [Viewer(host, int(port), ["cam1", "cam2"], stop) for _ in range(viewers - 1)]
            for client in clients:
                client.start()
        time.sleep(WARMUP_S)
        answers0 = sum(c.answers for c in clients)
        t0, cpu0 = time.time(), cpu_seconds(proc.pid)
        time.sleep(seconds)
        t1, cpu1 = time.time(), cpu_seconds(proc.pid)
        answers1 = sum(c.answers for c in clients)
    finally:
        stop.set()
        for client in clients:
            client.join(15)
        for s in stuck:
            s.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    records = read_records(jsonl)
    classified, dropped, ages = 0, 0, []
    for camera in ("cam1", "cam2"):
        mine = [r for r in records if r["camera"] == camera]
        inside = [r for r in mine if t0 <= r["wall_time"] <= t1]
        before = [r for r in mine if r["wall_time"] < t0]
        classified += len(inside)
        if inside:
            start = before[-1]["dropped"] if before else inside[0]["dropped"]
            dropped += inside[-1]["dropped"] - start
        ages += [r["frame_age_ms"] for r in inside]
    span = t1 - t0
    return {
        "fps_total": round(classified / span, 1),
        "dropped_pct": round(100.0 * dropped / max(dropped + classified, 1), 2),
        "age_p50_ms": round(float(np.percentile(ages, 50)), 1),
        "age_p95_ms": round(float(np.percentile(ages, 95)), 1),
        "cores": round((cpu1 - cpu0) / span, 2),
        "answers_per_s": round((answers1 - answers0) / span, 1),
        "viewer_failures": sum(c.failures for c in clients),
        "seconds": round(span, 1),
    }


def run(args) -> dict:
    _, _, video, env, backbones = setup(args.work, "bench-viewers-")
    order = ("InceptionV3, auto", "litert (.tflite)")  # the table's rows
    backbones = {name: backbones[name] for name in order}
    if args.backbones:
        backbones = {k: v for k, v in backbones.items() if k in args.backbones}
    extras = {VARIANTS[0]: ([], 0), VARIANTS[1]: (["--serve", "0"], 0),
              VARIANTS[2]: (["--serve", "0"], 20)}  # fmt: skip
    rows = []
    for name, (model, extra) in backbones.items():
        order = []
        for k in range(args.repeats):
            order += list(VARIANTS) if k % 2 == 0 else list(reversed(VARIANTS))
        for variant in order:
            flags, viewers = extras[variant]
            with tempfile.TemporaryDirectory() as tmp:
                jsonl = Path(tmp) / "run.jsonl"
                command = realtime_command(model, video, 2, jsonl, [*extra, "--loop", *flags])
                result = measure(command, env, jsonl, viewers, args.seconds)
            row = {"backbone": name, "variant": variant, **result}
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    return {"rows": rows, "cpu": cpu_name(), "cores": os.cpu_count(), "seconds": args.seconds}


def summary(result: dict) -> list[dict]:
    """Per backbone and variant: the mean over repeats, and the ratios to `no --serve`."""
    out = []
    for backbone in dict.fromkeys(r["backbone"] for r in result["rows"]):
        base = None
        for variant in VARIANTS:
            key = (backbone, variant)
            rows = [r for r in result["rows"] if (r["backbone"], r["variant"]) == key]
            if not rows:
                continue
            mean = {key: round(float(np.mean([r[key] for r in rows])), 2)
                    for key in ("fps_total", "dropped_pct", "age_p50_ms", "age_p95_ms", "cores",
                                "answers_per_s", "viewer_failures")}  # fmt: skip
            base = base or mean
            ratio = mean["age_p95_ms"] / base["age_p95_ms"] if base["age_p95_ms"] else None
            out.append({"backbone": backbone, "variant": variant, "runs": len(rows), **mean,
                        "p95_ratio": None if ratio is None else round(ratio, 3)})  # fmt: skip
    return out


def markdown(result: dict, command: str) -> str:
    rows = summary(result)
    lines = [
        f"# Viewers against the inference loop\n\n`{command}` on {result['cpu']} "
        f"({result['cores']} cores); each row the mean of {rows[0]['runs'] if rows else 0} "
        f"runs of {result['seconds']:g} s measured, variants alternating. Two cameras, 640x360 "
        "H.264 at 25 fps, paced, looped. Goal with 20 viewers (one stuck): dropped <= 1 %, "
        "frame age p95 <= 1.1x the run without `--serve`.\n",
        "| backbone | variant | fps | dropped % | age p50 ms | age p95 ms | p95 / no serve "
        "| run's cores | answers/s | viewer failures |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backbone']} | {r['variant']} | {r['fps_total']:.1f} | {r['dropped_pct']:.2f} "
            f"| {r['age_p50_ms']:.1f} | {r['age_p95_ms']:.1f} | {r['p95_ratio']:.2f} "
            f"| {r['cores']:.2f} | {r['answers_per_s']:.0f} | {r['viewer_failures']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.viewers", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="measured span per run")
    p.add_argument("--repeats", type=int, default=2, help="runs of each variant (alternating)")
    p.add_argument("--backbones", nargs="+", help="only these (names as in the table)")
    p.add_argument("--work", help="weights, models, video, cache (default: a temporary folder)")
    p.add_argument(
        "--out", default=str(ROOT / "bench" / "results" / "viewers"), help="OUT.md and OUT.json"
    )
    args = p.parse_args(argv)
    report("bench.viewers", argv, run(args), markdown, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
