"""Turning raw per-frame probabilities into what a person wants to see.

- `ProbabilitySmoother`: the mean of the last N probability vectors (--smooth N).
- `decide()`: the top class, or "no action" below a probability threshold (--threshold P).
- `SegmentTracker`: action *segments* (--events): a segment opens when one label has been
  the decision for `hysteresis` consecutive predictions, closes when another decision has held
  as long, and is reported only if it lasted at least `min_duration` seconds.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from realtime.stream.prediction import NO_ACTION


class ProbabilitySmoother:
    """Running mean of the last `size` probability vectors (size 1 = no smoothing)."""

    def __init__(self, size: int = 1):
        if size < 1:
            raise ValueError("smoothing size must be at least 1")
        self.size = size
        self._history: deque[np.ndarray] = deque(maxlen=size)

    def update(self, probs: np.ndarray) -> np.ndarray:
        if self.size == 1:
            return probs
        self._history.append(np.asarray(probs, np.float32))
        return np.mean(self._history, axis=0)

    def reset(self) -> None:
        self._history.clear()


def decide(labels: list[str], probs: np.ndarray, threshold: float = 0.0) -> tuple[str, str, float]:
    """(label or NO_ACTION, top label, top probability)."""
    top = int(np.argmax(probs))
    score = float(probs[top])
    label = labels[top] if score >= threshold else NO_ACTION
    return label, labels[top], score


@dataclass
class Segment:
    label: str
    start: float
    end: float
    scores: list[float] = field(default_factory=list)
    first_frame: int = 0
    last_frame: int = 0

    def to_json(self, closed: bool = True, camera: str = "") -> str:
        return json.dumps(self.to_record(closed, camera))

    def to_record(self, closed: bool = True, camera: str = "") -> dict:
        """The `--events` line's fields, in its order."""
        return {
            "label": self.label,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "duration": round(self.end - self.start, 3),
            "peak_score": round(max(self.scores), 4),
            "mean_score": round(float(np.mean(self.scores)), 4),
            "frames": len(self.scores),
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "closed": closed,
            "camera": camera,
        }


class SegmentTracker:
    """Groups per-frame decisions into action segments with hysteresis and a minimum length.

    `update()` returns a finished segment when one closes; `flush()` returns the open one.
    "no action" never forms a segment.
    """

    def __init__(self, hysteresis: int = 3, min_duration: float = 0.5):
        self.hysteresis = max(1, hysteresis)
        self.min_duration = min_duration
        self.current: Segment | None = None
        self._candidate: str | None = None
        self._run: list[tuple[float, float, int]] = []  # (time, score, frame) of the candidate

    def update(self, label: str, score: float, t: float, frame: int) -> Segment | None:
        finished = None
        if self.current is not None and label == self.current.label:
            self.current.end = t
            self.current.scores.append(score)
            self.current.last_frame = frame
            self._candidate, self._run = None, []
            return None
        if label != self._candidate:
            self._candidate, self._run = label, []
        self._run.append((t, score, frame))
        if len(self._run) >= self.hysteresis:
            finished = self._close()
            if label != NO_ACTION:
                times, scores, frames = zip(*self._run, strict=False)
                self.current = Segment(
                    label, times[0], times[-1], list(scores), frames[0], frames[-1]
                )
            self._candidate, self._run = None, []
        return finished

    def _close(self) -> Segment | None:
        segment, self.current = self.current, None
        if segment is not None and segment.end - segment.start >= self.min_duration:
            return segment
        return None

    def flush(self) -> Segment | None:
        """Close the open segment (at exit); returns it if it is long enough."""
        return self._close()

    def reset(self) -> Segment | None:
        """A gap in the source: what was open ends here."""
        self._candidate, self._run = None, []
        return self._close()
