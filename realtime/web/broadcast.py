"""One camera's MJPEG viewers, served by one thread.

A thread per viewer would wake twenty threads at once for every picture (each taking the GIL
in turn, on the cores the backbone runs on); measured, that cost the inference loop 14-17 % of
its frame-age p95 with 20 viewers. Here one thread per watched camera waits for the camera's
next result, takes the shared picture (at most one per `min_interval_s`, the last one again
every `keepalive_s`), and writes it to every viewer's socket without blocking:

- a viewer still receiving the previous picture skips this one (a slow link gets fewer
  pictures, never a queue of them);
- a viewer whose socket took nothing for `timeout_s` is dropped, and so is one whose socket
  fails (it went away);
- the thread ends when its last viewer leaves, and starts again with the next one.

Each viewer's own connection thread only waits for its `dropped` event (set here when the
viewer is dropped, or when the server stops).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

BOUNDARY = "frame"


def part(jpeg: bytes) -> bytes:
    """One picture as a part of the multipart stream."""
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode() + jpeg + b"\r\n"


@dataclass(eq=False)
class _Viewer:
    sock: socket.socket
    dropped: threading.Event = field(default_factory=threading.Event)
    pending: memoryview | None = None  # what is left to send of the current picture
    progress_at: float = 0.0  # when its socket last took bytes (or got a picture)


class Broadcaster:
    """`picture()` to every viewer of one camera; `count()` is the camera's number of results
    and `wait_newer(seen, timeout)` waits for it to move (`realtime.web.feed.WebFeed`)."""

    def __init__(
        self,
        picture: Callable[[], bytes],
        count: Callable[[], int],
        wait_newer: Callable[[int, float], int],
        stop: threading.Event,
        timeout_s: float = 15.0,
        min_interval_s: float = 0.1,
        keepalive_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.picture = picture
        self.count = count
        self.wait_newer = wait_newer
        self.stop = stop
        self.timeout_s = timeout_s
        self.min_interval_s = min_interval_s
        self.keepalive_s = keepalive_s
        self.clock = clock
        self._viewers: list[_Viewer] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.sent = 0  # pictures handed to viewers' sockets (a test's and the bench's count)

    @property
    def viewers(self) -> int:
        with self._lock:
            return len(self._viewers)

    def join(self, sock: socket.socket) -> threading.Event:
        """Add a viewer whose response headers were sent; returns the event set when it is
        dropped (it left, stalled, or the server stops)."""
        sock.setblocking(False)
        viewer = _Viewer(sock, progress_at=self.clock())
        with self._lock:
            self._viewers.append(viewer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="web-video", daemon=True)
                self._thread.start()
        if self.stop.is_set():
            self._drop(viewer)
        return viewer.dropped

    def _drop(self, viewer: _Viewer) -> None:
        with self._lock:
            if viewer in self._viewers:
                self._viewers.remove(viewer)
        viewer.dropped.set()

    def _run(self) -> None:
        seen, sent_at = -1, -1e9
        while True:
            with self._lock:
                viewers = list(self._viewers)
                if not viewers or self.stop.is_set():
                    self._thread = None
                    break
            now = self.clock()
            count = self.count()
            if (count != seen or now - sent_at >= self.keepalive_s) and (
                now - sent_at >= self.min_interval_s
            ):
                data = part(self.picture())
                seen, sent_at = count, now
                for viewer in viewers:
                    if viewer.pending is None:
                        viewer.pending = memoryview(data)
                        self.sent += 1
            self._write(viewers, now)
            waiting = [v.sock for v in viewers if v.pending is not None and not v.dropped.is_set()]
            if waiting:  # until some socket takes more, or the next picture is due
                try:
                    select.select([], waiting, [], self.min_interval_s)
                except (OSError, ValueError):
                    pass  # a socket closed meanwhile: the next write drops its viewer
            else:
                wait = max(self.min_interval_s - (self.clock() - sent_at), 0.0)
                if wait and self.stop.wait(wait):
                    continue
                self.wait_newer(seen, self.keepalive_s)
        for viewer in viewers:  # the server stops: every viewer's connection ends
            self._drop(viewer)

    def _write(self, viewers: list[_Viewer], now: float) -> None:
        for viewer in viewers:
            if viewer.pending is None:
                continue
            try:
                sent = viewer.sock.send(viewer.pending)
            except BlockingIOError:
                sent = 0
            except OSError:  # it went away
                self._drop(viewer)
                continue
            if sent:
                viewer.progress_at = now
                viewer.pending = viewer.pending[sent:] if sent < len(viewer.pending) else None
            elif now - viewer.progress_at > self.timeout_s:
                self._drop(viewer)  # it stopped reading
