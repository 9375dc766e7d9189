"""The sliding window of per-frame features the GRU reads."""

from __future__ import annotations

import numpy as np


class FeatureWindow:
    """A ring buffer of the last `length` feature vectors and the mask the GRU needs.

    Each new frame's feature vector is pushed once (one backbone call per frame; nothing is
    recomputed). `arrays()` returns the window in arrival order, oldest first, with the filled
    frames at the start and the mask False for empty slots: the layout the head was trained
    on, so a partial window ("7/20") gives a real prediction from the first frame on.
    """

    def __init__(self, length: int, feature_size: int):
        self.length = length
        self._ring = np.zeros((length, feature_size), np.float32)
        self._next = 0  # slot the next feature goes into
        self._fill = 0
        self._features = np.zeros((length, feature_size), np.float32)
        self._mask = np.zeros(length, bool)

    @property
    def fill(self) -> int:
        """How many slots hold a feature (0..length)."""
        return self._fill

    def push(self, feature: np.ndarray) -> None:
        self._ring[self._next] = feature
        self._next = (self._next + 1) % self.length
        self._fill = min(self._fill + 1, self.length)

    def reset(self) -> None:
        """Forget every feature (after a gap in the source, say)."""
        self._next = 0
        self._fill = 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(features, mask): (length, D) oldest first, zero-padded at the end; (length,) bool.

        The returned arrays are reused by the next call: copy them to keep them.
        """
        fill, start = self._fill, self._next
        if fill < self.length:
            self._features[:fill] = self._ring[:fill]
            self._features[fill:] = 0.0
        else:
            tail = self.length - start
            self._features[:tail] = self._ring[start:]
            self._features[tail:] = self._ring[:start]
        self._mask[:fill] = True
        self._mask[fill:] = False
        return self._features, self._mask


class WindowStream:
    """Per-frame inference over a sliding `FeatureWindow`: `push` a frame, get probabilities.
    Subclasses say what the window holds and how a window becomes probabilities."""

    def __init__(self, window: FeatureWindow):
        self._window = window
        self.length = window.length

    @property
    def fill(self) -> int:
        """How many frames the window holds (0..length)."""
        return self._window.fill

    def reset(self) -> None:
        """Forget every frame (after a gap in the source, say)."""
        self._window.reset()
