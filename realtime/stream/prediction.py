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
    effective_fps: float | None = None  # frames per source second inside the window
    window_span_s: float = 0.0  # source seconds the window spans
    slow: bool = False  # effective_fps below 0.9x the model's rate for 5 s (not in JSONL)
    camera: str = ""  # the camera's name (`realtime.cameras`)

    @property
    def pace_warning(self) -> str | None:
        """What the UIs say while the window's frames are slower than the model's rate."""
        if not self.slow or self.effective_fps is None:
            return None
        return (
            f"slow window: {self.effective_fps:.1f} fps over {self.window_span_s:.2f} s "
            "(frames dropped or a slow source)"
        )

    @property
    def is_action(self) -> bool:
        return self.label != NO_ACTION

    def to_json(self) -> str:
        return json.dumps(self.to_record())

    def to_record(self) -> dict:
        """The JSONL line's fields, in its order (docs/jsonl.md)."""
        return {
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
            "effective_fps": None if self.effective_fps is None else round(self.effective_fps, 2),
            "window_span_s": round(self.window_span_s, 4),
            "camera": self.camera,
        }


def probs_dict(labels: list[str], probs: np.ndarray) -> dict[str, float]:
    return {label: float(p) for label, p in zip(labels, probs, strict=False)}
