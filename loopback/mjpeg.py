"""An HTTP MJPEG camera on 127.0.0.1, the way many IP cameras serve video.

    python tests/mjpeg_server.py --port 8080 --fps 25

`GET /video.mjpg` answers `multipart/x-mixed-replace` with one JPEG per part, paced on the
wall clock (each client gets frames as they are produced; nothing is queued for a slow
client: a client that reads slowly makes the server skip frames, as a camera would).
Each frame carries its send time (Unix time in milliseconds, 40 bits) as a row of black and
white blocks along its bottom edge (`decode_stamp()` reads it back), so a client can measure
true end-to-end latency, including every buffer between the server and the classifier.
It prints `READY http://127.0.0.1:PORT/video.mjpg` once it listens.
"""

from __future__ import annotations

import argparse
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

STAMP_BITS = 40
STAMP_BLOCK = 8  # pixels per bit, horizontally
STAMP_HEIGHT = 16


def draw_stamp(frame: np.ndarray, millis: int) -> None:
    """Write `millis` (mod 2**40) into the bottom STAMP_HEIGHT rows of a BGR frame."""
    h = frame.shape[0]
    for bit in range(STAMP_BITS):
        value = 255 if (millis >> (STAMP_BITS - 1 - bit)) & 1 else 0
        x = bit * STAMP_BLOCK
        frame[h - STAMP_HEIGHT :, x : x + STAMP_BLOCK] = value


def decode_stamp(frame: np.ndarray) -> int:
    """Read back what draw_stamp wrote (samples each block's centre, threshold at mid-grey)."""
    h = frame.shape[0]
    row = frame[h - STAMP_HEIGHT // 2]
    millis = 0
    for bit in range(STAMP_BITS):
        x = bit * STAMP_BLOCK + STAMP_BLOCK // 2
        millis = (millis << 1) | int(int(row[x].mean()) > 127)
    return millis


def render(i: int, width: int, height: int) -> np.ndarray:
    """A square sweeping over a gradient: moving, varied content."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = np.linspace(30, 120, width, dtype=np.uint8)[None, :, None]
    x = (i * 6) % (width - 40)
    cv2.rectangle(frame, (x, height // 3), (x + 40, height // 3 + 40), (40, 200, 240), -1)
    return frame


def make_handler(fps: float, width: int, height: int):
    period = 1.0 / fps

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            if self.path.split("?")[0] != "/video.mjpg":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            start = time.monotonic()
            i = 0
            try:
                while True:
                    # the frame due now (frames a slow client missed are skipped, not queued)
                    i = max(i, int((time.monotonic() - start) / period))
                    frame = render(i, width, height)
                    draw_stamp(frame, int(time.time() * 1000) % (1 << STAMP_BITS))
                    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
                    data = jpeg.tobytes()
                    self.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\n"
                        + f"Content-Length: {len(data)}\r\n\r\n".encode()
                        + data
                        + b"\r\n"
                    )
                    self.wfile.flush()
                    i += 1
                    delay = start + i * period - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args()
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), make_handler(args.fps, args.width, args.height)
    )
    port = server.server_address[1]  # --port 0: the one the system gave
    print(f"READY http://127.0.0.1:{port}/video.mjpg", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
