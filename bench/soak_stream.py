"""Soak test: `python -m realtime` on a live network camera for minutes, with the camera
restarted on a schedule. Not a CI test; run it by hand:

    PYTHONPATH=. python bench/soak_stream.py --minutes 10 --restart-every 120 --kind rtsp

It starts a real camera server on 127.0.0.1 (GStreamer RTSP, or the HTTP MJPEG server), runs
the CLI against it (`--ui none --jsonl FILE`, the shared LiteRT backbone, an untrained head),
SIGKILLs and restarts the camera every `--restart-every` seconds (down for `--outage` s), and
samples the CLI process's memory (RSS), threads and open file descriptors every few seconds.
At the end it interrupts the CLI (SIGINT, as Ctrl-C) and reports, per minute: predictions,
frame age (mean, p95, max), RSS, threads, fds; and over the run: reconnects, window restarts,
time from the camera coming back to the first new prediction, and the exit time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the checkout (loopback/, realtime/)

from loopback.servers import MjpegCamera, RtspCamera, rtsp_available  # noqa: E402


def proc_figures(pid: int) -> dict:
    figures = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                figures["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                figures["threads"] = int(line.split()[1])
    figures["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return figures


def build_model(shared: Path, folder: Path) -> Path:
    from conftest import MOBILENET_V1_EMBEDDER, build_model_dir

    from realtime.backbones.litert import LiteRTBackbone

    backbone = LiteRTBackbone(shared / "models" / MOBILENET_V1_EMBEDDER)
    return build_model_dir(folder / "soak_model", backbone)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--restart-every", type=float, default=120.0, metavar="S")
    parser.add_argument("--outage", type=float, default=3.0, metavar="S")
    parser.add_argument("--kind", choices=("rtsp", "mjpeg"), default="rtsp")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--sample-every", type=float, default=5.0, metavar="S")
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--model", help="model dir (default: build one on the shared backbone)")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()

    if args.kind == "rtsp" and rtsp_available():
        print(f"cannot run: {rtsp_available()}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="soak_"))
    model = Path(args.model) if args.model else build_model(Path(args.shared), work)
    camera = RtspCamera(fps=args.fps) if args.kind == "rtsp" else MjpegCamera(fps=args.fps)
    camera.start()
    jsonl = work / "predictions.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cli = subprocess.Popen(
        [sys.executable, "-m", "realtime", "--source", camera.url, "--model", str(model),
         "--ui", "none", "--jsonl", str(jsonl), "--read-timeout", "2", "--open-timeout", "3"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    start = time.monotonic()
    duration = args.minutes * 60
    samples: list[dict] = []
    restarts: list[dict] = []
    next_restart = start + args.restart_every
    next_sample = start
    print(f"soak: {args.kind} camera {camera.url}, {args.minutes:g} min, restart every "
          f"{args.restart_every:g} s, JSONL {jsonl}", flush=True)  # fmt: skip
    try:
        while time.monotonic() - start < duration:
            now = time.monotonic()
            if cli.poll() is not None:
                print(f"CLI exited early with {cli.returncode}", file=sys.stderr)
                break
            if now >= next_sample:
                figures = proc_figures(cli.pid)
                figures["t"] = now - start
                samples.append(figures)
                next_sample += args.sample_every
            if now >= next_restart:
                camera.kill()
                down_at = time.time()
                time.sleep(args.outage)
                camera.start()
                restarts.append({"t": time.monotonic() - start, "down": down_at,
                                 "up": time.time()})  # fmt: skip
                print(f"  {restarts[-1]['t']:6.1f} s: camera restarted", flush=True)
                next_restart += args.restart_every
            time.sleep(0.2)
        cli.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        cli.wait(30)
        exit_s = time.monotonic() - t0
    finally:
        if cli.poll() is None:
            cli.kill()
        camera.stop()
    stderr = cli.stderr.read()

    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    predictions = [r for r in records if "label" in r]
    states = [r for r in records if r.get("type") == "source_state"]
    t_first = predictions[0]["wall_time"] if predictions else 0.0
    minutes = int(np.ceil(args.minutes))
    rows = []
    for m in range(minutes):
        in_min = [p for p in predictions if m * 60 <= p["wall_time"] - t_first < (m + 1) * 60]
        ages = np.array([p["frame_age_ms"] for p in in_min]) if in_min else np.zeros(1)
        in_samples = [s for s in samples if m * 60 <= s["t"] < (m + 1) * 60] or samples[-1:]
        rows.append({
            "minute": m + 1,
            "predictions": len(in_min),
            "age_mean_ms": round(float(ages.mean()), 1),
            "age_p95_ms": round(float(np.percentile(ages, 95)), 1),
            "age_max_ms": round(float(ages.max()), 1),
            "rss_mb": round(max(s["rss_mb"] for s in in_samples), 1),
            "threads": max(s["threads"] for s in in_samples),
            "fds": max(s["fds"] for s in in_samples),
        })  # fmt: skip
    recovery = []
    for restart in restarts:
        after = [p["wall_time"] for p in predictions if p["wall_time"] > restart["up"]]
        if after:
            recovery.append(round(after[0] - restart["up"], 2))
    steady = [s for s in samples if s["t"] >= min(60.0, samples[-1]["t"])]
    summary = {
        "kind": args.kind,
        "minutes": args.minutes,
        "restarts": len(restarts),
        "reconnects": sum(
            1 for s in states if s["source_state"] == "live" and s["previous"] == "reconnecting"
        ),
        "reconnect_attempts": sum(1 for s in states if s["source_state"] == "reconnecting"),
        "window_restarts": sum(1 for p in predictions[1:] if p["window"] == 1),
        "stalls": sum(1 for s in states if s["source_state"] == "stalled"),
        "failed": any(s["source_state"] == "failed" for s in states),
        "recovery_s_after_camera_up": recovery,
        "predictions": len(predictions),
        "exit_s_after_sigint": round(exit_s, 2),
        "exit_code": cli.returncode,
        # after the first minute (model loaded, warmed up) to the end
        "rss_mb_after_1min_last": [round(steady[0]["rss_mb"], 1), round(steady[-1]["rss_mb"], 1)],
        "threads_min_max": [min(s["threads"] for s in steady), max(s["threads"] for s in steady)],
        "fds_min_max": [min(s["fds"] for s in steady), max(s["fds"] for s in steady)],
        "per_minute": rows,
        "stderr_tail": stderr.strip().splitlines()[-3:],
    }
    header = f"{'min':>3} {'preds':>6} {'age mean':>9} {'p95':>7} {'max':>7} {'RSS MB':>7} "
    print(header + f"{'threads':>7} {'fds':>4}")
    for r in rows:
        print(f"{r['minute']:>3} {r['predictions']:>6} {r['age_mean_ms']:>9} {r['age_p95_ms']:>7} "
              f"{r['age_max_ms']:>7} {r['rss_mb']:>7} {r['threads']:>7} {r['fds']:>4}")  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "per_minute"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))
    return 0 if cli.returncode == 0 and not summary["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
