"""`sprites`: several small drifting sprites in a room, noisy low-light camera, XVID.

Appearances: the kind of sprite (balls, stars, rings, bars). Variables: how many sprites are
in view (`appear`: 1 -> 8, one after another; `vanish`: back) and the light (`dawn`: dim ->
bright, `dusk`: back), with an ease-in-out pace. Per video the room (wall and floor colours,
horizon), the sprites' colours, sizes, places and drift, a colour cast, length and frame
rate (30 or 50 fps) are random; every frame has strong Gaussian sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthetic.base import STILL, Encoding, Generator, centre_square

MAX_SPRITES = 8


@dataclass
class _Scene:
    kind: str
    room: np.ndarray  # float32 BGR
    cast: np.ndarray  # per-channel gain
    starts: np.ndarray  # (MAX_SPRITES, 2) positions
    drift: np.ndarray  # (MAX_SPRITES, 2) pixels per frame
    colours: np.ndarray  # (MAX_SPRITES, 3)
    radii: np.ndarray  # (MAX_SPRITES,)
    angles: np.ndarray  # (MAX_SPRITES,)


def _star(cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.45
        a = angle + i * np.pi / 5
        points.append((cx + radius * np.sin(a), cy - radius * np.cos(a)))
    return np.array(points, np.int32)


class Sprites(Generator):
    name = "sprites"
    encoding = Encoding("XVID", ".avi", (30.0, 50.0), 320, 240, 50, 100)
    appearances = ("balls", "bars", "rings", "stars")
    variables = {"count": ("appear", "vanish"), "light": ("dawn", "dusk")}
    mixed_appearances = ("balls", "stars")
    mixed_dynamics = ("appear", "vanish", STILL)

    def ease(self, s):
        return s * s * (3 - 2 * s)  # smoothstep

    def scene(self, appearance, rng, width, height):
        horizon = int(height * rng.uniform(0.45, 0.7))
        room = np.empty((height, width, 3), np.float32)
        room[:horizon] = rng.uniform(60, 200, 3)
        room[horizon:] = rng.uniform(30, 150, 3)
        grain = rng.normal(0, 25, (height // 8, width // 8, 3)).astype(np.float32)
        room += cv2.resize(grain, (width, height), interpolation=cv2.INTER_CUBIC)
        cx, cy, side = centre_square(width, height)
        spread = 0.3 * side
        starts = np.column_stack(
            [
                cx + rng.uniform(-spread, spread, MAX_SPRITES),
                cy + rng.uniform(-spread, spread, MAX_SPRITES),
            ]
        )
        return _Scene(
            kind=appearance,
            room=room,
            cast=rng.uniform(0.85, 1.15, 3).astype(np.float32),
            starts=starts,
            drift=rng.normal(0, 0.25, (MAX_SPRITES, 2)),
            colours=rng.uniform(0, 255, (MAX_SPRITES, 3)),
            radii=rng.uniform(0.09, 0.13, MAX_SPRITES) * side,
            angles=rng.uniform(0, np.pi, MAX_SPRITES),
        )

    def draw(self, scene: _Scene, state, index, rng):
        frame = scene.room.copy()
        count = 1 + int(round(state["count"] * (MAX_SPRITES - 1)))
        for i in range(count):
            x, y = scene.starts[i] + scene.drift[i] * index
            r = float(scene.radii[i])
            colour = tuple(float(c) for c in scene.colours[i])
            centre = (int(round(x)), int(round(y)))
            if scene.kind == "balls":
                cv2.circle(frame, centre, int(r), colour, -1, lineType=cv2.LINE_AA)
                shine = tuple(min(255.0, c + 70) for c in colour)
                spot = (int(x - r / 3), int(y - r / 3))
                cv2.circle(frame, spot, max(int(r / 3), 1), shine, -1, lineType=cv2.LINE_AA)
            elif scene.kind == "rings":
                cv2.circle(frame, centre, int(r), colour, max(int(r / 3), 2), cv2.LINE_AA)
            elif scene.kind == "stars":
                cv2.fillPoly(frame, [_star(x, y, r * 1.2, scene.angles[i])], colour, cv2.LINE_AA)
            else:  # bars
                box = cv2.boxPoints(((x, y), (2.4 * r, 0.7 * r), np.degrees(scene.angles[i])))
                cv2.fillPoly(frame, [box.astype(np.int32)], colour, cv2.LINE_AA)
        light = 0.3 + 0.7 * state["light"]
        frame = frame * (light * scene.cast) + rng.normal(0, 10, frame.shape)
        return np.clip(frame, 0, 255).astype(np.uint8)


SPRITES = Sprites()
