"""Each frame's grayscale thumbnail after its features, for a head that reads how far the
picture moved (`realtime.head.motion`).

`WithMotion(backbone, size)` is `backbone` with a size x size thumbnail of each model input
appended to its feature vector: the backbone's identity records the size (`motion`), so a
model trained on such features runs only on them, whichever backend computes the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from realtime.backbones.base import Backbone, BackboneIdentity

#: Thumbnail side (pixels) the recipes use: a 224-pixel input averaged over 4 x 4 blocks.
MOTION_SIZE = 56


def thumbnails(frames: np.ndarray, size: int) -> np.ndarray:
    """(N, S, S, 3) uint8 model inputs -> (N, size * size) float32 grayscale thumbnails, 0..1,
    row by row: an area resize, then the mean of the channels."""
    frames = np.asarray(frames)
    out = np.empty((len(frames), size * size), np.float32)
    for i, frame in enumerate(frames):
        small = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = (small.astype(np.float32).mean(axis=-1) / np.float32(255.0)).ravel()
    return out


class WithMotion(Backbone):
    """`inner`'s features, each followed by its frame's `size` x `size` thumbnail."""

    def __init__(self, inner: Backbone, size: int):
        if size < 2:
            raise ValueError(f"a motion thumbnail needs a side of 2 or more, not {size}")
        self.inner = inner
        self.motion = int(size)
        self.name = inner.name
        self.backend = inner.backend
        self.image_size = inner.image_size
        self.pooling = inner.pooling
        self.map_shape = inner.map_shape
        self.feature_size = int(inner.feature_size) + self.motion * self.motion

    def _append(self, extract: Callable[[np.ndarray], np.ndarray], frames: np.ndarray):
        features = np.asarray(extract(frames), np.float32)
        return np.concatenate([features, thumbnails(frames, self.motion)], axis=1)

    def extract(self, frames: np.ndarray) -> np.ndarray:
        return self._append(self.inner.extract, frames)

    def parallel_extractors(self) -> list[Callable[[np.ndarray], np.ndarray]]:
        return [
            lambda frames, extract=extract: self._append(extract, frames)
            for extract in self.inner.parallel_extractors()
        ]

    def identity(self) -> BackboneIdentity:
        return replace(self.inner.identity(), feature_size=self.feature_size, motion=self.motion)

    def cache_identity(self) -> dict:
        return {
            **self.inner.cache_identity(),
            "feature_size": self.feature_size,
            "motion": self.motion,
        }


def unwrapped(backbone: Backbone) -> Backbone:
    """The backbone that computes the features (itself, unless it appends thumbnails)."""
    return backbone.inner if isinstance(backbone, WithMotion) else backbone
