"""`blinds`: a window onto a picture, a roller blind and a tank, a panning camera, wide MJPG.

Kept out of tuning: the default recipe was fixed before this generator was written, and it
is used for reporting only (docs/training.md).

Appearances: the picture seen through the window (bricks, hills, shelf, tiles). Variables:
a roller blind over the window (`lower`: open -> closed, `raise`: back) and a translucent
liquid filling the view from below (`fill`: empty -> full, `drain`: back). A moving
variable holds still for the first and last 10 % of the video and moves at a constant pace
in between. Per video the picture's colours and layout, the blind's and the liquid's colours,
the camera's pan (a slow drift across the scene, with time), length and frame rate (20 or
60 fps) are random; frames are 16:9 (the model's centre crop cuts the sides), darker towards
the corners, with Gaussian noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthetic.base import STILL, Encoding, Generator

HOLD = 0.1  # share of the video at each end where a moving variable holds still
MARGIN = 24  # pixels of scene beyond the frame on each side, for the pan


@dataclass
class _Scene:
    picture: np.ndarray  # float32 BGR, frame size + 2 * MARGIN
    blind: np.ndarray  # BGR
    liquid: np.ndarray  # BGR
    pan: np.ndarray  # (2,) pixels over the whole video
    vignette: np.ndarray  # (h, w, 1) gain


def _picture(kind: str, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    picture = np.empty((height, width, 3), np.float32)
    if kind == "bricks":
        picture[:] = rng.uniform(150, 210, 3)  # mortar
        brick = rng.uniform(40, 160, 3)
        rows = int(rng.integers(6, 10))
        h = height / rows
        w = 2.2 * h
        for r in range(rows):
            shift = (r % 2) * w / 2
            for c in range(-1, int(width / w) + 2):
                x0, y0 = int(c * w + shift), int(r * h)
                tint = brick + rng.normal(0, 12, 3)
                cv2.rectangle(
                    picture, (x0 + 2, y0 + 2), (int(x0 + w) - 2, int(y0 + h) - 2), tint, -1
                )
    elif kind == "hills":
        sky_top, sky_bottom = rng.uniform(150, 255, 3), rng.uniform(90, 200, 3)
        t = np.linspace(0, 1, height)[:, None, None]
        picture[:] = sky_top * (1 - t) + sky_bottom * t
        x = np.arange(width)
        for layer in range(3):
            base = height * (0.45 + 0.15 * layer)
            ridge = base + rng.uniform(10, 30) * np.sin(x / rng.uniform(30, 90) + rng.uniform(0, 6))
            colour = rng.uniform(20, 120, 3) * (1 - 0.2 * layer)
            points = np.column_stack([x, ridge]).astype(np.int32)
            polygon = np.vstack([points, [[width - 1, height - 1], [0, height - 1]]])
            cv2.fillPoly(picture, [polygon], colour.tolist())
    elif kind == "shelf":
        picture[:] = rng.uniform(40, 90, 3)  # wood
        shelves = int(rng.integers(3, 5))
        h = height / shelves
        for s in range(shelves):
            x = 0.0
            while x < width:
                spine = rng.uniform(6, 16)
                tall = rng.uniform(0.6, 0.9) * h
                y1 = int((s + 1) * h - 4)
                cv2.rectangle(
                    picture,
                    (int(x), int(y1 - tall)),
                    (int(x + spine), y1),
                    rng.uniform(0, 255, 3),
                    -1,
                )
                x += spine + rng.uniform(0, 3)
            cv2.line(
                picture, (0, int((s + 1) * h - 3)), (width, int((s + 1) * h - 3)), (20, 30, 40), 5
            )
    else:  # tiles
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        size = int(rng.integers(14, 26))
        ys, xs = np.mgrid[0:height, 0:width]
        check = ((ys // size + xs // size) % 2).astype(np.float32)[..., None]
        picture[:] = a * check + b * (1 - check)
        picture[(ys % size < 2) | (xs % size < 2)] = 230  # grout
    return cv2.GaussianBlur(picture, (0, 0), 1.0)


class Blinds(Generator):
    name = "blinds"
    encoding = Encoding("MJPG", ".avi", (20.0, 60.0), 256, 144, 40, 110)
    appearances = ("bricks", "hills", "shelf", "tiles")
    variables = {"blind": ("lower", "raise"), "level": ("fill", "drain")}
    mixed_appearances = ("bricks", "tiles")
    mixed_dynamics = ("lower", "raise", STILL)

    def ease(self, s):
        return np.clip((s - HOLD) / (1 - 2 * HOLD), 0.0, 1.0)

    def scene(self, appearance, rng, width, height):
        picture = _picture(appearance, rng, width + 2 * MARGIN, height + 2 * MARGIN)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((xs - width / 2) / width) ** 2 + ((ys - height / 2) / height) ** 2
        return _Scene(
            picture=picture,
            blind=rng.uniform(0, 255, 3),
            liquid=rng.uniform(0, 255, 3),
            pan=rng.uniform(-MARGIN, MARGIN, 2),
            vignette=(1.0 - rng.uniform(0.3, 0.8) * r2)[..., None],
        )

    def draw(self, scene: _Scene, state, index, rng):
        height = scene.picture.shape[0] - 2 * MARGIN
        width = scene.picture.shape[1] - 2 * MARGIN
        # the pan moves with time (index), the same way whichever the video's direction
        progress = min(index / 80.0, 1.0)
        dx, dy = (MARGIN + scene.pan * (progress - 0.5)).astype(int)
        frame = scene.picture[dy : dy + height, dx : dx + width].copy()
        level = int(round(state["level"] * height))  # liquid from the bottom
        if level:
            frame[height - level :] = 0.45 * frame[height - level :] + 0.55 * scene.liquid
            cv2.line(frame, (0, height - level), (width, height - level), (255, 255, 255), 1)
        drop = int(round(state["blind"] * height))  # the blind from the top
        if drop:
            slats = (np.arange(drop) % 8 < 6).astype(np.float32)[:, None, None]
            frame[:drop] = scene.blind * (0.8 + 0.2 * slats)
            cv2.rectangle(frame, (0, drop - 3), (width, drop), (30, 30, 30), -1)
        frame = frame * scene.vignette + rng.normal(0, 6, frame.shape).astype(np.float32)
        return np.clip(frame, 0, 255).astype(np.uint8)


BLINDS = Blinds()
