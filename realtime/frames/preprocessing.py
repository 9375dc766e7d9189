"""Frame preprocessing shared by `realtime` and `training`.

A frame must become the same tensor in training and live, or live accuracy silently drops.
Everything up to the backbone's own input scaling happens here, once:

    BGR frame of any size -> centre square crop -> resize to image_size x image_size
    -> RGB, uint8, C-contiguous

The backbone then applies its own input scaling (see `realtime.backbones`). The crop is the
Keras example's `crop_center_square` to the pixel, and the resize uses the same (bilinear)
interpolation, so features match the example's.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_IMAGE_SIZE = 224


def crop_center_square(frame: np.ndarray) -> np.ndarray:
    """The largest centred square of `frame` (a view, not a copy)."""
    height, width = frame.shape[:2]
    side = min(height, width)
    top = height // 2 - side // 2
    left = width // 2 - side // 2
    return frame[top : top + side, left : left + side]


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """Grey or BGRA frames (some codecs, GIFs) become 3-channel BGR; BGR passes through."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def preprocess_frame(frame_bgr: np.ndarray, image_size: int = DEFAULT_IMAGE_SIZE) -> np.ndarray:
    """One decoded OpenCV frame (BGR) -> the RGB uint8 square the backbone takes."""
    square = crop_center_square(to_bgr(frame_bgr))
    if square.shape[0] != image_size:
        square = cv2.resize(square, (image_size, image_size), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(square, cv2.COLOR_BGR2RGB)


def preprocess_frames(frames_bgr, image_size: int = DEFAULT_IMAGE_SIZE) -> np.ndarray:
    """A batch version of `preprocess_frame`: (N, S, S, 3) uint8 RGB."""
    out = [preprocess_frame(f, image_size) for f in frames_bgr]
    if not out:
        return np.zeros((0, image_size, image_size, 3), np.uint8)
    return np.stack(out)
