"""`textures`: a textured patch on a gradient wall, a hand-held camera, MPEG-4 (mp4v).

Appearances: the patch's texture (stripes, checker, dots, blotches). Variables: the camera's
zoom (`zoom_in` / `zoom_out`, 1x to 2x about a jittered centre) and its focus (`sharpen`:
blurred -> sharp, `soften`: back). Per video the texture's colours, scale and orientation,
the wall's gradient, the patch's shape and place, length and frame rate (15 or 24 fps) are
random; every frame has camera shake (a few pixels), a small exposure flicker and Gaussian
sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthetic.base import Encoding, Generator, centre_square

OVERSAMPLE = 2  # the scene is drawn this much larger, so zooming in keeps detail


def texture(kind: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A (height, width) float mask in [0, 1] of one texture kind, random scale and angle."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(0.08, 0.14) * min(height, width)
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    if kind == "stripes":
        return (np.sin(2 * np.pi * u / period) > 0).astype(np.float32)
    if kind == "checker":
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == "dots":
        du = (u / period) % 1.0 - 0.5
        dv = (v / period) % 1.0 - 0.5
        return (du * du + dv * dv < 0.09).astype(np.float32)
    if kind == "blotches":
        small = rng.normal(0, 1, (max(height // 12, 2), max(width // 12, 2))).astype(np.float32)
        smooth = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        return (smooth > 0).astype(np.float32)
    raise ValueError(f"unknown texture {kind!r}")


@dataclass
class _Scene:
    canvas: np.ndarray  # (OVERSAMPLE*H, OVERSAMPLE*W, 3) float32
    width: int
    height: int
    zoom_x: float  # zoom centre on the canvas
    zoom_y: float
    camera: int  # seed of the hand-held camera's shake and exposure, per frame index


class Textures(Generator):
    name = "textures"
    encoding = Encoding("mp4v", ".mp4", (15.0, 24.0), 176, 144, 30, 70)
    appearances = ("blotches", "checker", "dots", "stripes")
    variables = {"zoom": ("zoom_in", "zoom_out"), "focus": ("sharpen", "soften")}
    mixed_appearances = ("stripes", "dots")
    mixed_dynamics = ("zoom_in", "zoom_out")

    def scene(self, appearance, rng, width, height):
        big_w, big_h = width * OVERSAMPLE, height * OVERSAMPLE
        y, x = np.mgrid[0:big_h, 0:big_w].astype(np.float32)
        a, b = rng.uniform(20, 110, 3), rng.uniform(20, 110, 3)
        ramp = (x / big_w * np.cos(rng.uniform(0, np.pi)) + y / big_h) / 2
        canvas = a + (b - a) * ramp[..., None]
        cx, cy, side = centre_square(big_w, big_h)
        cx += int(rng.integers(-side // 10, side // 10 + 1))
        cy += int(rng.integers(-side // 10, side // 10 + 1))
        radius = int(rng.uniform(0.22, 0.3) * side)
        patch = np.zeros((big_h, big_w), np.uint8)
        if rng.integers(0, 2):
            cv2.circle(patch, (cx, cy), radius, 1, -1)
        else:
            cv2.rectangle(patch, (cx - radius, cy - radius), (cx + radius, cy + radius), 1, -1)
        pattern = texture(appearance, rng, big_h, big_w)[..., None]
        ink, paper = rng.uniform(0, 90, 3), rng.uniform(150, 255, 3)
        textured = ink + (paper - ink) * pattern
        inside = patch.astype(bool)
        canvas[inside] = textured[inside]
        zoom_x = big_w / 2 + rng.uniform(-0.05, 0.05) * big_w
        zoom_y = big_h / 2 + rng.uniform(-0.05, 0.05) * big_h
        canvas = cv2.GaussianBlur(canvas.astype(np.float32), (0, 0), 1.0)  # less aliasing
        return _Scene(canvas, width, height, zoom_x, zoom_y, int(rng.integers(2**31)))

    def draw(self, scene: _Scene, state, index, rng):
        zoom = 1.0 + state["zoom"]  # 1x .. 2x
        camera = np.random.default_rng([scene.camera, index])  # moves with the timeline
        shake_x, shake_y = camera.normal(0, 1.2, 2)
        # output pixel u shows canvas point zoom_centre + (u - W/2) / factor
        factor = zoom / OVERSAMPLE
        matrix = np.array(
            [
                [factor, 0, scene.width / 2 - factor * scene.zoom_x + shake_x],
                [0, factor, scene.height / 2 - factor * scene.zoom_y + shake_y],
            ],
            np.float32,
        )
        frame = cv2.warpAffine(
            scene.canvas,
            matrix,
            (scene.width, scene.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        blur = 0.2 + 3.8 * (1.0 - state["focus"])  # focus 1: sharp, 0: blurred
        frame = cv2.GaussianBlur(frame, (0, 0), blur)
        frame = frame * camera.uniform(0.96, 1.04) + rng.normal(0, 6, frame.shape)
        return np.clip(frame, 0, 255).astype(np.uint8)


TEXTURES = Textures()
