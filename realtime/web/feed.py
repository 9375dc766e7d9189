"""What the page and the API show beyond a camera's newest result: each camera's last minute
of probabilities and its recent action segments.

`WebFeed` is a sink (`realtime.stream.engine.Sink`): the inference thread hands it every
prediction and it keeps a bounded, thinned copy (O(1) per prediction, under its own lock);
the server's threads read copies. A viewer therefore never holds the inference loop for
longer than one append.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from realtime.stream.capture import Frame
from realtime.stream.engine import Sink
from realtime.stream.postprocess import SegmentTracker
from realtime.stream.prediction import Prediction


@dataclass(frozen=True)
class TimelinePoint:
    """One point of a camera's timeline: Unix time, and the probability of every class in the
    model's order (None: the source had a gap here and the window restarted)."""

    wall_time: float
    probs: tuple[float, ...] | None


class WebFeed(Sink):
    """Each camera's recent timeline (at most one point per `step_s`, `span_s` long) and its
    last `keep_events` action segments (found as `--events` finds them)."""

    def __init__(
        self,
        cameras: list[str],
        labels: list[str],
        span_s: float = 60.0,
        step_s: float = 0.2,
        hysteresis: int = 3,
        min_duration: float = 0.5,
        keep_events: int = 50,
    ):
        self.labels = list(labels)
        self.span_s = span_s
        self.step_s = step_s
        points = int(span_s / step_s) + 2
        self._timelines = {name: deque(maxlen=points) for name in cameras}
        self._trackers = {name: SegmentTracker(hysteresis, min_duration) for name in cameras}
        self._events = {name: deque(maxlen=keep_events) for name in cameras}
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(cameras, 0)  # predictions so far, per camera
        self._new = {name: threading.Condition(self._lock) for name in cameras}

    # -- the inference thread's side --------------------------------------------------------
    def handle(self, prediction: Prediction, frame: Frame) -> None:
        p = prediction
        with self._lock:
            timeline = self._timelines[p.camera]
            last = timeline[-1] if timeline else None
            if last is None or last.probs is None or p.wall_time - last.wall_time >= self.step_s:
                probs = tuple(p.probs.get(label, 0.0) for label in self.labels)
                timeline.append(TimelinePoint(p.wall_time, probs))
            finished = self._trackers[p.camera].update(p.label, p.score, p.timestamp, p.frame)
            self._keep(p.camera, finished)
            self._counts[p.camera] += 1
            self._new[p.camera].notify_all()

    def on_gap(self, camera: str) -> None:
        with self._lock:
            timeline = self._timelines[camera]
            if timeline and timeline[-1].probs is not None:
                timeline.append(TimelinePoint(timeline[-1].wall_time, None))
            self._keep(camera, self._trackers[camera].reset())

    def _keep(self, camera: str, segment) -> None:
        if segment is not None:
            self._events[camera].append(segment.to_record(camera=camera))

    # -- the server's side ------------------------------------------------------------------
    def count(self, camera: str) -> int:
        """`camera`'s number of predictions so far."""
        with self._lock:
            return self._counts[camera]

    def wait_newer(self, camera: str, seen: int, timeout: float) -> int:
        """Wait until `camera` has had more than `seen` predictions, or `timeout` seconds;
        returns its count (a camera's video thread waits here, not polling)."""
        with self._new[camera]:
            self._new[camera].wait_for(lambda: self._counts[camera] != seen, timeout)
            return self._counts[camera]

    def timeline(self, camera: str, now: float) -> list[TimelinePoint]:
        """`camera`'s points of the last `span_s` seconds before `now` (Unix time)."""
        with self._lock:
            points = list(self._timelines[camera])
        return [point for point in points if now - point.wall_time <= self.span_s]

    def events(self) -> list[dict]:
        """Every camera's recent segments, finished ones (`closed: true`) then the one under
        way (`closed: false`), camera by camera, as `--events` writes them."""
        with self._lock:
            events = []
            for camera, finished in self._events.items():
                events.extend(finished)
                current = self._trackers[camera].current
                if current is not None:
                    events.append(current.to_record(closed=False, camera=camera))
            return events
