"""Which frames enter the model: one every 1 / fps seconds on the source's own clock."""

from __future__ import annotations


class SamplingClock:
    """Admits frames at `fps` on the source's clock; `fps=None` admits every frame.

    A frame is admitted when its timestamp reaches the next tick (with a small tolerance for
    timestamp jitter); the tick then advances by one period. After a long gap the clock
    re-anchors on the next frame instead of admitting a burst.
    """

    def __init__(self, fps: float | None):
        self.period = 1.0 / fps if fps else 0.0
        self._next_tick: float | None = None

    def admit(self, t: float) -> bool:
        if self.period <= 0:
            return True
        tolerance = 0.2 * self.period
        if self._next_tick is None or t - self._next_tick > self.period:
            self._next_tick = t + self.period
            return True
        if t >= self._next_tick - tolerance:
            self._next_tick += self.period
            return True
        return False

    def reset(self) -> None:
        self._next_tick = None
