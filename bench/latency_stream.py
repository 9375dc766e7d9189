"""Frame age on a network camera with a consumer slower than the camera: a naive reader
(read one frame whenever the consumer is ready, as most demos do) against the capture
thread + FrameRing (newest frame wins). Not a CI test:

    PYTHONPATH=. python bench/latency_stream.py --seconds 20 --consumer-hz 5

The camera is tests/mjpeg_server.py (25 fps by default); every frame carries its send time,
so the age measured is end to end: server send -> the consumer holding the frame.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the checkout (loopback/, realtime/)

from loopback.mjpeg import STAMP_BITS, decode_stamp  # noqa: E402
from loopback.servers import MjpegCamera  # noqa: E402
from realtime.frames.sources import CaptureOptions, open_source  # noqa: E402
from realtime.stream.capture import CaptureThread, FrameRing  # noqa: E402


def age_ms(frame) -> int:
    return int(time.time() * 1000) % (1 << STAMP_BITS) - decode_stamp(frame)


def naive(url: str, seconds: float, period: float) -> list[int]:
    source = open_source(url, CaptureOptions(5, 5))
    ages = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(period)  # the consumer's work
            frame = source.read()
            ages.append(age_ms(frame))
    finally:
        source.release()
    return ages


def ring(url: str, seconds: float, period: float) -> list[int]:
    stop = threading.Event()
    frames = FrameRing(20)
    capture = CaptureThread(
        open_source(url, CaptureOptions(5, 5)),
        frames,
        image_size=64,
        sampling_fps=None,
        stop=stop,
        pace=False,
        keep_display=True,
    )
    capture.start()
    ages = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(period)
            item = frames.take(timeout=5)
            ages.append(age_ms(item.display))
    finally:
        stop.set()
        capture.join(5)
    return ages


def describe(name: str, ages: list[int]) -> str:
    a = np.array(ages)
    third = max(1, len(a) // 3)
    return (
        f"{name:>22}: first third mean {a[:third].mean():7.0f} ms, last third mean "
        f"{a[-third:].mean():7.0f} ms, max {a.max():6.0f} ms ({len(a)} frames)"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--consumer-hz", type=float, default=5)
    parser.add_argument("--fps", type=float, default=25)
    args = parser.parse_args()
    period = 1.0 / args.consumer_hz
    with MjpegCamera(fps=args.fps) as camera:
        ours = ring(camera.url, args.seconds, period)
        theirs = naive(camera.url, args.seconds, period)
    print(f"camera {args.fps:g} fps, consumer {args.consumer_hz:g} Hz, {args.seconds:g} s each")
    print(describe("naive read()", theirs))
    print(describe("CaptureThread+FrameRing", ours))
    print(
        f"last-third age ratio naive/ours: {np.mean(theirs[-5:]) / max(1, np.mean(ours[-5:])):.0f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
