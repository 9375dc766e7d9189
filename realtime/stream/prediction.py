"""What the inference loop produces for each classified frame."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from realtime.stream.reconnect import SourceState

NO_ACTION = "no action"


@dataclass
class Prediction:
    """One classified frame.

    `probs` are the probabilities the decision was made on (smoothed when --smooth is on);
    `label` is the top class, or NO_ACTION when its probability is below --threshold.
    """

    frame: int  # the frame's index in the source
    sample: int  # its sampled-frame sequence number
    timestamp: float  # seconds on the source's clock
    wall_time: float  # Unix time when the prediction was made
    label: str
    score: float  # probability of the top class
    probs: dict[str, float]
    window: int  # frames filled in the window (1..window length)
    window_length: int
    frame_age_ms: float  # capture -> prediction
    timings_ms: dict[str, float]
    dropped: int  # sampled frames dropped so far
    source_state: SourceState
    top_label: str = ""  # the top class even when label is NO_ACTION

    @property
    def is_action(self) -> bool:
        return self.label != NO_ACTION

    def to_json(self) -> str:
        record = {
            "frame": self.frame,
            "sample": self.sample,
            "timestamp": round(self.timestamp, 4),
            "wall_time": round(self.wall_time, 4),
            "label": self.label,
            "score": round(self.score, 6),
            "probs": {k: round(v, 6) for k, v in self.probs.items()},
            "window": self.window,
            "window_length": self.window_length,
            "frame_age_ms": round(self.frame_age_ms, 2),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "dropped": self.dropped,
            "source_state": self.source_state.value,
        }
        return json.dumps(record)


def probs_dict(labels: list[str], probs: np.ndarray) -> dict[str, float]:
    return {label: float(p) for label, p in zip(labels, probs, strict=False)}
