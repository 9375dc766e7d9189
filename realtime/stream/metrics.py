"""Live figures: per-stage times, processing rate, frame age; and the exit summary."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

STAGES = ("decode", "preprocess", "backbone", "head")


class StageStats:
    """Running count/mean over the whole run, plus a bounded recent sample for p95."""

    def __init__(self, recent: int = 2000):
        self.count = 0
        self.total = 0.0
        self._recent: deque[float] = deque(maxlen=recent)

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self._recent.append(value)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def recent_mean(self, n: int = 30) -> float:
        values = list(self._recent)[-n:]
        return float(np.mean(values)) if values else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(list(self._recent), q)) if self._recent else 0.0


class RateMeter:
    """Events per second over a sliding time span (processing fps)."""

    def __init__(self, span_s: float = 2.0, clock=time.monotonic):
        self.span_s = span_s
        self.clock = clock
        self._times: deque[float] = deque(maxlen=1000)

    def tick(self) -> None:
        self._times.append(self.clock())

    def rate(self) -> float:
        now = self.clock()
        while self._times and now - self._times[0] > self.span_s:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        elapsed = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / elapsed if elapsed > 0 else 0.0


class WindowPace:
    """How much source time the frames in the window span, against the model's sampling rate.

    The model was trained on windows of `length` frames sampled at `model_fps`. When frames
    are dropped (an overloaded machine) or the source is slower than that, a window spans more
    time than in training, and its predictions may not mean what they did. `push(t)` takes
    each classified frame's source time in seconds; `reset()` restarts at a gap. `slow` turns
    True once the window's frame rate has stayed below `ratio` x `model_fps` for `hold_s`
    seconds of source time, and False as soon as it is back above.
    """

    def __init__(self, length: int, model_fps: float | None, ratio: float = 0.9, hold_s=5.0):
        self.model_fps = model_fps
        self.ratio = ratio
        self.hold_s = hold_s
        self._times: deque[float] = deque(maxlen=length)
        self._slow_since: float | None = None

    def reset(self) -> None:
        self._times.clear()
        self._slow_since = None

    def push(self, t: float) -> None:
        self._times.append(t)
        rate = self.effective_fps
        if self.model_fps is None or rate is None or rate >= self.ratio * self.model_fps:
            self._slow_since = None
        elif self._slow_since is None:
            self._slow_since = t

    @property
    def span_s(self) -> float:
        """Source seconds from the window's first frame to its last (0 for one frame)."""
        return self._times[-1] - self._times[0] if self._times else 0.0

    @property
    def effective_fps(self) -> float | None:
        """Frames per source second inside the window; None below two frames."""
        span = self.span_s
        return (len(self._times) - 1) / span if len(self._times) > 1 and span > 0 else None

    @property
    def slow(self) -> bool:
        return self._slow_since is not None and self._times[-1] - self._slow_since >= self.hold_s


@dataclass(frozen=True)
class MetricsSnapshot:
    """The live figures at one moment (recent means), as the UIs and the status show them."""

    fps: float  # classified frames per second, recently
    stages_ms: dict[str, float]  # stage -> recent mean time
    frame_age_ms: float  # capture -> prediction, recent mean
    classified: int  # frames classified so far


@dataclass(frozen=True)
class Distribution:
    """One figure over the run, as monitoring reads it: every value's count and sum, and
    quantiles of the recent ones (StageStats' bounded sample); milliseconds."""

    count: int
    total_ms: float
    p50_ms: float
    p95_ms: float


class PipelineMetrics:
    """All figures of one run; written by the inference loop, read by the UI (under a lock)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.started = clock()
        self.stages = {name: StageStats() for name in STAGES}
        self.frame_age = StageStats()
        self.rate = RateMeter(clock=clock)
        self.classified = 0
        self._lock = threading.Lock()

    def elapsed_s(self) -> float:
        """Seconds since the run's figures started."""
        return self.clock() - self.started

    def record(self, timings_ms: dict[str, float], frame_age_ms: float) -> None:
        with self._lock:
            for name, value in timings_ms.items():
                if name in self.stages:
                    self.stages[name].add(value)
            self.frame_age.add(frame_age_ms)
            self.rate.tick()
            self.classified += 1

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(
                fps=self.rate.rate(),
                stages_ms={k: v.recent_mean() for k, v in self.stages.items()},
                frame_age_ms=self.frame_age.recent_mean(),
                classified=self.classified,
            )

    def distributions(self) -> dict[str, Distribution]:
        """Every stage's and the frame age's (key "frame_age") `Distribution`, at one moment."""
        with self._lock:
            figures = {**self.stages, "frame_age": self.frame_age}
            return {
                name: Distribution(s.count, s.total, s.percentile(50), s.percentile(95))
                for name, s in figures.items()
            }

    def summary_rows(self) -> list[tuple[str, str, str]]:
        """(figure, mean, p95) rows for the exit summary."""
        with self._lock:
            rows = [
                (f"{name} ms", f"{s.mean:.2f}", f"{s.percentile(95):.2f}")
                for name, s in self.stages.items()
            ]
            rows.append(
                (
                    "frame age ms",
                    f"{self.frame_age.mean:.1f}",
                    f"{self.frame_age.percentile(95):.1f}",
                )
            )
            return rows
