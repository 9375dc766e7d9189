"""Drawing a prediction onto a video frame (window UI and --output recording)."""

from __future__ import annotations

import cv2
import numpy as np

from realtime.stream.prediction import Prediction

ACTION_COLOUR = (80, 220, 80)  # BGR green
NO_ACTION_COLOUR = (170, 170, 170)  # grey
TEXT_COLOUR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def overlay_size(width: int, height: int, min_width: int = 640) -> tuple[int, int]:
    """(width, height) of `draw_overlay`'s image for a frame of that size."""
    if width < min_width:
        return min_width, round(height * min_width / width)
    return width, height


def draw_overlay(
    frame: np.ndarray,
    prediction: Prediction | None,
    fps: float | None = None,
    state: str | None = None,
    min_width: int = 640,
    camera: str | None = None,
) -> np.ndarray:
    """A copy of `frame` (upscaled to at least `min_width` wide) with the result drawn on it.

    Top band: the action and its probability (grey "no action" below the threshold), a bar
    for the probability, and a status line: the camera's name (when given), window fill,
    processing fps, frame age, source state, dropped frames.
    """
    image = frame
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    height, width = image.shape[:2]
    if width < min_width:
        image = cv2.resize(
            image, overlay_size(width, height, min_width), interpolation=cv2.INTER_LINEAR
        )
    else:
        image = image.copy()
    height, width = image.shape[:2]
    unit = width / 640.0
    band = int(78 * unit)
    image[:band] = (image[:band] * 0.35).astype(np.uint8)
    if prediction is None:
        text = "waiting for frames..."
        if camera:
            text = f"{camera}: {state or text}"
        colour, score = NO_ACTION_COLOUR, 0.0
    elif prediction.is_action:
        text, colour, score = prediction.label, ACTION_COLOUR, prediction.score
    else:
        text = f"no action ({prediction.top_label} {prediction.score:.0%})"
        colour, score = NO_ACTION_COLOUR, prediction.score
    x0 = int(12 * unit)
    cv2.putText(
        image,
        text,
        (x0, int(32 * unit)),
        FONT,
        0.9 * unit,
        colour,
        max(1, int(2 * unit)),
        cv2.LINE_AA,
    )
    if prediction is not None:
        pct = f"{score:.0%}"
        (tw, _), _ = cv2.getTextSize(pct, FONT, 0.9 * unit, max(1, int(2 * unit)))
        cv2.putText(
            image,
            pct,
            (width - tw - x0, int(32 * unit)),
            FONT,
            0.9 * unit,
            colour,
            max(1, int(2 * unit)),
            cv2.LINE_AA,
        )
        bar_y, bar_h = int(42 * unit), max(3, int(8 * unit))
        bar_w = width - 2 * x0
        cv2.rectangle(image, (x0, bar_y), (x0 + bar_w, bar_y + bar_h), (90, 90, 90), -1)
        cv2.rectangle(image, (x0, bar_y), (x0 + int(bar_w * score), bar_y + bar_h), colour, -1)
        parts = [camera] if camera else []
        parts.append(f"window {prediction.window}/{prediction.window_length}")
        if fps is not None:
            parts.append(f"{fps:.1f} fps")
        parts.append(f"age {prediction.frame_age_ms:.0f} ms")
        parts.append(state or prediction.source_state.value)
        if prediction.dropped:
            parts.append(f"dropped {prediction.dropped}")
        if prediction.slow and prediction.effective_fps is not None:
            parts.append(f"slow {prediction.effective_fps:.1f} fps")
        cv2.putText(
            image,
            "  |  ".join(parts),
            (x0, int(70 * unit)),
            FONT,
            0.5 * unit,
            TEXT_COLOUR,
            1,
            cv2.LINE_AA,
        )
    return image


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of a grid of `count` tiles: as square as it gets, wider than tall."""
    columns = max(1, int(np.ceil(np.sqrt(count))))
    return int(np.ceil(count / columns)), columns


def tile(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` fitted into a `size` (width, height) tile, its aspect kept, on black."""
    width, height = size
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    fitted = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                        interpolation=cv2.INTER_AREA)  # fmt: skip
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - fitted.shape[0]) // 2, (width - fitted.shape[1]) // 2
    out[y : y + fitted.shape[0], x : x + fitted.shape[1]] = fitted
    return out


def compose_grid(tiles: list[np.ndarray], tile_size: tuple[int, int]) -> np.ndarray:
    """Tiles of one size, left to right and top to bottom, with a 2-pixel gap."""
    rows, columns = grid_shape(len(tiles))
    width, height = tile_size
    gap = 2
    grid = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3),
        40, np.uint8,
    )  # fmt: skip
    for k, image in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = r * (height + gap), c * (width + gap)
        grid[y : y + height, x : x + width] = image
    return grid


def blank_tile(size: tuple[int, int], camera: str, state: str) -> np.ndarray:
    """A camera with nothing to show yet (connecting, failed): its name and state on grey."""
    width, height = size
    image = np.full((height, width, 3), 24, np.uint8)
    return draw_overlay(image, None, state=state, camera=camera)
