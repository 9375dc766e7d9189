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


#: Class colours (BGR) of the window's panel: matplotlib's tab10 colours, in class order.
PALETTE = (
    (180, 119, 31),
    (14, 127, 255),
    (44, 160, 44),
    (40, 39, 214),
    (189, 103, 148),
    (75, 86, 140),
    (194, 119, 227),
    (127, 127, 127),
    (34, 189, 188),
    (207, 190, 23),
)
PANEL_HEIGHT = 150  # at 640 pixels wide


def draw_history_panel(
    width: int,
    labels: list[str],
    history: list[tuple[float, dict[str, float]]],
    span_s: float = 10.0,
) -> np.ndarray:
    """What the window shows under the frame: the newest prediction's top 3 classes as bars,
    and every class's probability over the last `span_s` seconds of the source, each class
    in its colour (its place in `labels`). `history`: (source time, probabilities), oldest
    first."""
    unit = width / 640.0
    height = int(PANEL_HEIGHT * unit)
    panel = np.full((height, width, 3), 28, np.uint8)
    colours = {label: PALETTE[k % len(PALETTE)] for k, label in enumerate(labels)}
    if not history:
        return panel
    now, probs = history[-1]
    x0, row = int(12 * unit), int(40 * unit)
    bar_w = int(150 * unit)
    top = sorted(probs.items(), key=lambda item: -item[1])[:3]
    for k, (label, p) in enumerate(top):
        y = int(14 * unit) + k * row
        colour = colours.get(label, TEXT_COLOUR)
        cv2.putText(
            panel,
            label[:18],
            (x0, y + int(11 * unit)),
            FONT,
            0.45 * unit,
            TEXT_COLOUR,
            1,
            cv2.LINE_AA,
        )
        bar_y = y + int(16 * unit)
        cv2.rectangle(panel, (x0, bar_y), (x0 + bar_w, bar_y + int(8 * unit)), (70, 70, 70), -1)
        cv2.rectangle(panel, (x0, bar_y), (x0 + int(bar_w * p), bar_y + int(8 * unit)), colour, -1)
        cv2.putText(
            panel,
            f"{p:.0%}",
            (x0 + bar_w + int(6 * unit), bar_y + int(8 * unit)),
            FONT,
            0.4 * unit,
            TEXT_COLOUR,
            1,
            cv2.LINE_AA,
        )
    # the timeline: [now - span_s, now] left to right, probability 0 at the bottom
    left, right = int(230 * unit), width - int(10 * unit)
    top_y, bottom_y = int(10 * unit), height - int(12 * unit)
    cv2.rectangle(panel, (left, top_y), (right, bottom_y), (60, 60, 60), 1)
    recent = [(t, ps) for t, ps in history if now - t <= span_s]
    for label in labels:
        points = [
            (
                left + round((right - left) * (1 - (now - t) / span_s)),
                bottom_y - round((bottom_y - top_y) * ps.get(label, 0.0)),
            )
            for t, ps in recent
        ]
        if len(points) > 1:
            cv2.polylines(
                panel,
                [np.array(points, np.int32)],
                False,
                colours[label],
                max(1, int(1.5 * unit)),
                cv2.LINE_AA,
            )
    cv2.putText(
        panel,
        f"last {span_s:g} s",
        (left + 4, bottom_y + int(10 * unit)),
        FONT,
        0.35 * unit,
        (150, 150, 150),
        1,
        cv2.LINE_AA,
    )
    return panel
