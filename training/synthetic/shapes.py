"""`shapes`: one flat shape over a blurred-noise background, static camera, MJPG.

Appearances: circle, square, triangle, cross. Variables: the shape's size (`grow` /
`shrink`) and its colour (`warm`: dark blue -> bright orange, `cool`: back). Per video the
background texture, position, colour jitter, length and frame rate (25 or 30 fps) are random;
each frame adds uniform pixel noise. (Direction of motion would be a poor variable: average-
pooled CNN features largely ignore *where* things are; size and colour survive pooling.)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthetic.base import STILL, Encoding, Generator, centre_square

#: BGR end points of the colour variable (jittered per video).
BLUE = np.array([150.0, 30.0, 10.0])
ORANGE = np.array([40.0, 220.0, 250.0])


@dataclass
class _Scene:
    shape: str
    background: np.ndarray
    cx: int
    cy: int
    side: int
    blue: np.ndarray
    orange: np.ndarray


class Shapes(Generator):
    name = "shapes"
    encoding = Encoding("MJPG", ".avi", (25.0, 30.0), 128, 96, 36, 48)
    appearances = ("circle", "square", "triangle", "cross")
    variables = {"size": ("grow", "shrink"), "colour": ("warm", "cool")}
    mixed_appearances = ("circle", "square")
    mixed_dynamics = ("grow", "shrink", STILL)

    def scene(self, appearance, rng, width, height):
        background = rng.integers(0, 70, (height, width, 3)).astype(np.uint8)
        background = cv2.GaussianBlur(background, (0, 0), 6)
        cx, cy, side = centre_square(width, height)
        cx += int(rng.integers(-side // 8, side // 8 + 1))
        cy += int(rng.integers(-side // 8, side // 8 + 1))
        jitter = rng.uniform(-15, 15, 3)
        return _Scene(
            appearance,
            background,
            cx,
            cy,
            side,
            np.clip(BLUE + jitter, 0, 255),
            np.clip(ORANGE + jitter, 0, 255),
        )

    def draw(self, scene: _Scene, state, index, rng):
        frame = scene.background.copy()
        cv2.add(frame, rng.integers(0, 12, frame.shape, dtype=np.uint8), dst=frame)
        colour = scene.blue + (scene.orange - scene.blue) * state["colour"]
        bgr = tuple(int(c) for c in colour)
        r = max(int(round(scene.side * (0.07 + 0.3 * state["size"]))), 1)
        cx, cy = scene.cx, scene.cy
        if scene.shape == "circle":
            cv2.circle(frame, (cx, cy), r, bgr, -1, lineType=cv2.LINE_AA)
        elif scene.shape == "square":
            cv2.rectangle(frame, (cx - r, cy - r), (cx + r, cy + r), bgr, -1)
        elif scene.shape == "triangle":
            points = np.array([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], np.int32)
            cv2.fillPoly(frame, [points], bgr, lineType=cv2.LINE_AA)
        else:  # cross
            arm = max(r // 3, 1)
            cv2.rectangle(frame, (cx - r, cy - arm), (cx + r, cy + arm), bgr, -1)
            cv2.rectangle(frame, (cx - arm, cy - r), (cx + arm, cy + r), bgr, -1)
        return frame


SHAPES = Shapes()
