"""What each address of the server answers, built from the run's cameras and the feed.

Everything here reads: `Camera.status()`, `Camera.latest()` and `WebFeed` copies. The costly
answers (a camera's picture, the page's state) are made at most once per `min_interval_s`
whatever the number of viewers, and shared by all of them (`Shared`), so twenty browsers cost
what one does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2

from realtime.outputs.overlay import PALETTE, blank_tile, draw_overlay
from realtime.stream.pipeline import Pipeline
from realtime.stream.reconnect import SourceState
from realtime.web.broadcast import BOUNDARY, Broadcaster
from realtime.web.feed import WebFeed

JPEG_QUALITY = 80
MAX_PICTURE_WIDTH = 960  # a 4K camera is shown at this width: the encode stays cheap


@dataclass(frozen=True)
class Stream:
    """A response that goes on: the camera's MJPEG stream, written by its `Broadcaster`."""

    broadcaster: Broadcaster
    status: int = 200
    content_type: str = f"multipart/x-mixed-replace; boundary={BOUNDARY}"


@dataclass(frozen=True)
class Answer:
    """One response: status code, content type and body."""

    status: int
    content_type: str
    body: bytes

    @classmethod
    def json(cls, value, status: int = 200) -> Answer:
        return cls(status, "application/json", json.dumps(value).encode())


class Shared:
    """A value made at most once per `min_interval_s` (or when `key()` changes, not sooner than
    that), by one thread while the others wait for it; every caller gets the newest made."""

    def __init__(self, make: Callable[[], bytes], key: Callable[[], object], min_interval_s):
        self.make = make
        self.key = key
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._value: bytes | None = None
        self._key: object = None
        self._made_at = 0.0

    def get(self) -> bytes:
        with self._lock:
            now = time.monotonic()
            if self._value is not None and now - self._made_at < self.min_interval_s:
                return self._value
            key = self.key()
            if self._value is None or key != self._key:
                self._key, self._value, self._made_at = key, self.make(), now
            return self._value


def _prediction(camera):
    latest = camera.latest()
    return latest[0] if latest else None


def _point(point) -> list:
    probs = None if point.probs is None else [round(p, 3) for p in point.probs]
    return [round(point.wall_time, 2), probs]


def _colour(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


class Views:
    """The answers of one run's server: page state, API, pictures, health."""

    def __init__(
        self,
        pipeline: Pipeline,
        feed: WebFeed,
        stop: threading.Event,
        min_interval_s: float = 0.1,
        timeout_s: float = 15.0,
        clock: Callable[[], float] = time.time,
    ):
        self.pipeline = pipeline
        self.feed = feed
        self.clock = clock
        self.cameras = {camera.name: camera for camera in pipeline.cameras}
        self.pictures = {
            name: Shared(
                lambda camera=camera: self._picture(camera),
                lambda camera=camera: (_prediction(camera), camera.status().state_detail),
                min_interval_s,
            )
            for name, camera in self.cameras.items()
        }
        self.state = Shared(self._state, lambda: self.clock(), min_interval_s * 2)
        self.broadcasters = {
            name: Broadcaster(
                shared.get,
                lambda name=name: feed.count(name),
                lambda seen, timeout, name=name: feed.wait_newer(name, seen, timeout),
                stop,
                timeout_s=timeout_s,
                min_interval_s=min_interval_s,
            )
            for name, shared in self.pictures.items()
        }

    # -- JSON ------------------------------------------------------------------------------
    def latest(self) -> Answer:
        """`/api/latest`: each camera's newest result, the fields of its JSONL line (null
        before its first)."""
        answer = {}
        for name, camera in self.cameras.items():
            latest = camera.latest()
            answer[name] = latest[0].to_record() if latest else None
        return Answer.json(answer)

    def events(self) -> Answer:
        """`/api/events`: the recent action segments, as `--events` writes them."""
        return Answer.json({"events": self.feed.events()})

    def health(self) -> Answer:
        """`/healthz`: 200 while every camera is live, else 503 naming those that are not."""
        states = {name: camera.capture.state for name, camera in self.cameras.items()}
        down = [name for name, state in states.items() if state is not SourceState.LIVE]
        body = {
            "status": "unhealthy" if down else "ok",
            "cameras": {name: state.value for name, state in states.items()},
            "not_live": down,
        }
        return Answer.json(body, 503 if down else 200)

    def page_state(self) -> Answer:
        """`/api/state`: what the page draws, for every camera (shared between viewers)."""
        return Answer(200, "application/json", self.state.get())

    def _state(self) -> bytes:
        now = self.clock()
        labels = self.pipeline.labels
        cameras = []
        for name, camera in self.cameras.items():
            status = camera.status()
            latest = camera.latest()
            timeline = self.feed.timeline(name, now)
            cameras.append(
                {
                    "name": name,
                    "source": status.source,
                    "state": status.state.value,
                    "state_detail": status.state_text,
                    "fps": round(status.fps, 2),
                    "frame_age_ms": round(status.frame_age_ms, 1),
                    "frames_read": status.frames_read,
                    "classified": status.classified,
                    "dropped": status.dropped,
                    "skipped": status.frames_skipped,
                    "reconnects": status.reconnects,
                    "latest": latest[0].to_record() if latest else None,
                    "pace_warning": latest[0].pace_warning if latest else None,
                    "timeline": [_point(point) for point in timeline],
                }
            )
        state = {
            "now": round(now, 2),
            "span_s": self.feed.span_s,
            "model": self.pipeline.model_label,
            "labels": labels,
            "colours": [_colour(PALETTE[k % len(PALETTE)]) for k in range(len(labels))],
            "cameras": cameras,
        }
        return json.dumps(state).encode()

    # -- pictures --------------------------------------------------------------------------
    def picture(self, name: str) -> Answer | None:
        """`/api/frame/<camera>.jpg`: the camera's newest frame with its overlay (None: no
        such camera)."""
        shared = self.pictures.get(name)
        return None if shared is None else Answer(200, "image/jpeg", shared.get())

    def video(self, name: str) -> Stream | None:
        """`/api/video/<camera>.mjpg`: the camera's pictures as they change, at most one per
        `min_interval_s` (None: no such camera)."""
        broadcaster = self.broadcasters.get(name)
        return None if broadcaster is None else Stream(broadcaster)

    def _picture(self, camera) -> bytes:
        status = camera.status()
        state = status.state_text
        latest = camera.latest()
        if latest is None or latest[1].display is None:
            image = blank_tile((640, 360), camera.name, state)
        else:
            prediction, frame = latest
            image = frame.display
            height, width = image.shape[:2]
            if width > MAX_PICTURE_WIDTH:
                size = (MAX_PICTURE_WIDTH, round(height * MAX_PICTURE_WIDTH / width))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            image = draw_overlay(image, prediction, status.fps, state)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:  # pragma: no cover - OpenCV encodes any 8-bit BGR image
            raise RuntimeError("JPEG encoding failed")
        return encoded.tobytes()
