"""`crossing`: a figure crossing a street or climbing, a shaky hand-held camera, VP8 (.mkv).

Kept out of tuning: written after the second look at `blinds` (which then counted as
looked at), before any recipe ran on it; used for reporting only (docs/training.md).

Appearances: what moves (a walking person, a car, a rolling ball, a dog). Variables: where
it is across the street (`go_right`: left -> right, `go_left`: back) and how high it is
(`climb`: ground -> up, `descend`: back), at a constant pace. The figure faces left or right
at random, whichever way it moves, so a single frame does not give the direction away; legs
swing, wheels and the ball turn with time. Per video the street (sky, buildings, ground
colours), the figure's colours and size, the camera's shake, a horizontal motion blur,
length and frame rate (12 or 30 fps: below the model's 25, every frame is a sample) are
random; frames are portrait 180x240 (the centre crop cuts the top and bottom), with
Gaussian noise, written with the VP8 codec.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthetic.base import STILL, Encoding, Generator, pt

MARGIN = 0.18  # share of the width kept free at each side of the crossing


@dataclass
class _Scene:
    kind: str
    street: np.ndarray  # float32 BGR, (height + 2 * shake_room, width + 2 * shake_room)
    body: np.ndarray  # BGR
    detail: np.ndarray  # BGR
    size: float  # figure height, pixels
    facing: int  # +1 right, -1 left
    ground: float  # y of the ground line
    shake: np.ndarray  # (frames, 2) the hand-held camera's offset at each frame index
    blur: int  # horizontal motion-blur length, pixels (1: none)


SHAKE_ROOM = 8


def _street(rng: np.random.Generator, width: int, height: int, ground: float) -> np.ndarray:
    street = np.empty((height, width, 3), np.float32)
    top, bottom = rng.uniform(120, 255, 3), rng.uniform(60, 200, 3)
    t = np.linspace(0, 1, height)[:, None, None]
    street[:] = top * (1 - t) + bottom * t
    x = 0
    while x < width:  # a row of buildings along the far side
        w = int(rng.integers(width // 8, width // 3))
        h = int(rng.uniform(0.2, 0.55) * ground)
        colour = rng.uniform(40, 220, 3)
        cv2.rectangle(street, (x, int(ground) - h), (x + w, int(ground)), colour, -1)
        for wy in range(int(ground) - h + 6, int(ground) - 8, 14):  # windows
            for wx in range(x + 4, x + w - 6, 12):
                cv2.rectangle(street, (wx, wy), (wx + 5, wy + 6), colour * 0.5 + 90, -1)
        x += w + int(rng.integers(0, 10))
    street[int(ground) :] = rng.uniform(50, 150, 3)  # the road
    cv2.line(street, (0, int(ground)), (width, int(ground)), (235, 235, 235), 2)
    return street


def _person(image, x, y, s, facing, index, body, detail):
    swing = 0.5 * np.sin(index * 0.6)
    hip = (x, y - 0.45 * s)
    neck = (x, y - 0.8 * s)
    for sign in (1, -1):  # legs and arms swing in opposite phase
        foot = (x + sign * swing * 0.35 * s, y)
        hand = (x - sign * swing * 0.3 * s + facing * 0.05 * s, y - 0.5 * s)
        cv2.line(image, pt(hip), pt(foot), detail, max(2, int(s * 0.07)))
        cv2.line(image, pt(neck), pt(hand), detail, max(2, int(s * 0.05)))
    cv2.line(image, pt(hip), pt(neck), body, max(3, int(s * 0.14)))
    cv2.circle(image, pt((x + facing * 0.02 * s, y - 0.9 * s)), max(3, int(s * 0.1)), body, -1)


def _car(image, x, y, s, facing, index, body, detail):
    length, height = 1.6 * s, 0.45 * s
    x0, x1 = x - length / 2, x + length / 2
    cv2.rectangle(image, pt((x0, y - height - 0.12 * s)), pt((x1, y - 0.12 * s)), body, -1)
    cabin_x = x + facing * 0.1 * s  # the cabin sits towards the back
    cv2.rectangle(
        image,
        pt((cabin_x - 0.45 * s, y - height - 0.45 * s)),
        pt((cabin_x + 0.35 * s, y - height - 0.1 * s)),
        detail,
        -1,
    )
    for wheel in (x0 + 0.3 * s, x1 - 0.3 * s):
        r = 0.18 * s
        cv2.circle(image, pt((wheel, y - r)), max(2, int(r)), (25, 25, 25), -1)
        a = index * 0.5
        spoke = (wheel + r * 0.8 * np.cos(a), y - r + r * 0.8 * np.sin(a))
        cv2.line(image, pt((wheel, y - r)), pt(spoke), (200, 200, 200), 1)


def _ball(image, x, y, s, facing, index, body, detail):
    r = 0.35 * s
    centre = (x, y - r)
    cv2.circle(image, pt(centre), max(3, int(r)), body, -1)
    a = index * 0.35 * facing
    for k in range(2):  # a stripe that turns as it rolls
        b = a + k * np.pi
        cv2.line(
            image,
            pt(centre),
            pt((x + r * np.cos(b), y - r + r * np.sin(b))),
            detail,
            max(2, int(r * 0.2)),
        )


def _dog(image, x, y, s, facing, index, body, detail):
    cv2.ellipse(image, pt((x, y - 0.45 * s)), (int(0.5 * s), int(0.18 * s)), 0, 0, 360, body, -1)
    cv2.circle(image, pt((x + facing * 0.55 * s, y - 0.62 * s)), max(3, int(0.15 * s)), body, -1)
    cv2.line(
        image, pt((x - facing * 0.5 * s, y - 0.5 * s)), pt((x - facing * 0.75 * s, y - 0.75 * s)),
        detail, max(2, int(s * 0.05)),
    )  # fmt: skip
    swing = 0.15 * s * np.sin(index * 0.7)
    for k, leg in enumerate((-0.35, -0.2, 0.2, 0.35)):
        sway = swing if k % 2 else -swing
        cv2.line(
            image, pt((x + leg * s, y - 0.35 * s)), pt((x + leg * s + sway, y)),
            detail, max(2, int(s * 0.06)),
        )  # fmt: skip


def _shake(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """A hand-held camera's offsets, frame by frame: a smoothed random walk that moves with
    time, so a mirror video (played backwards) shakes backwards too."""
    walk = np.cumsum(rng.normal(0, amplitude, (frames + 4, 2)), axis=0)
    walk = np.stack([np.convolve(walk[:, k], np.ones(5) / 5, "valid") for k in range(2)], 1)
    walk -= walk.mean(axis=0)
    return np.clip(np.round(walk), -SHAKE_ROOM, SHAKE_ROOM).astype(int)[:frames]


FIGURES = {"person": _person, "car": _car, "ball": _ball, "dog": _dog}


class Crossing(Generator):
    name = "crossing"
    encoding = Encoding("VP80", ".mkv", (12.0, 30.0), 180, 240, 36, 90)
    appearances = ("ball", "car", "dog", "person")
    variables = {"x": ("go_right", "go_left"), "height": ("climb", "descend")}
    mixed_appearances = ("car", "person")
    mixed_dynamics = ("go_right", "go_left", STILL)

    def scene(self, appearance, rng, width, height):
        ground = height * rng.uniform(0.62, 0.72)
        return _Scene(
            kind=appearance,
            street=_street(rng, width + 2 * SHAKE_ROOM, height + 2 * SHAKE_ROOM, ground),
            body=rng.uniform(20, 235, 3),
            detail=rng.uniform(20, 235, 3),
            size=height * rng.uniform(0.16, 0.24),
            facing=int(rng.choice([-1, 1])),
            ground=ground,
            shake=_shake(rng, self.encoding.max_frames, float(rng.uniform(0.5, 3.0))),
            blur=int(rng.integers(1, 6)),
        )

    def draw(self, scene: _Scene, state, index, rng):
        height = scene.street.shape[0] - 2 * SHAKE_ROOM
        width = scene.street.shape[1] - 2 * SHAKE_ROOM
        image = scene.street.copy()
        x = SHAKE_ROOM + width * (MARGIN + (1 - 2 * MARGIN) * state["x"])
        y = scene.ground - state["height"] * 0.3 * height  # up to 30 % of the frame higher
        FIGURES[scene.kind](image, x, y, scene.size, scene.facing, index, scene.body, scene.detail)
        if scene.blur > 1:
            image = cv2.blur(image, (scene.blur, 1))
        dx, dy = scene.shake[min(index, len(scene.shake) - 1)]
        frame = image[SHAKE_ROOM + dy : SHAKE_ROOM + dy + height, SHAKE_ROOM + dx :][:, :width]
        frame = frame + rng.normal(0, 5, frame.shape).astype(np.float32)
        return np.clip(frame, 0, 255).astype(np.uint8)


CROSSING = Crossing()
