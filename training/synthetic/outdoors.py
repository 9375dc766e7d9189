"""`outdoors`: someone comes or goes, a flag goes up or down; a vibrating mast camera, FLV1 (.mkv).

Kept out of tuning: written after `rooms`, before any recipe ran on it; used for reporting
only (docs/training.md).

Appearances: the place (a park, a beach, a sports court, a snow field), drawn anew for every
video on a ground plane seen in perspective from a camera 1.5-2.4 m up: a park's mown grass
(stripes along or across), a gravel path, trees, benches and lamp posts before a tree line; a
beach's rippled sand, wet sand, a wavy surf line and the sea with glints, parasols and
towels, sometimes a headland; a hard court (blue, teal, clay or purple) with its lines, a
far hoop and fence, trees or buildings behind; a snow field with drifts, a groomed trail or
ski tracks, pines, marker poles and mountains; colours, sizes, places and the light (sunny or
overcast, a haze that grows with distance) random. Variables: someone or something on the
ground coming towards the camera along a straight line to its vanishing point, so that size
and place in the frame change together (`approach`: far -> near, `recede`: back) -- a runner,
a cyclist or a bouncing ball (a skier or a walker on snow), seen head-on, the same from the
front as from behind; it slows as it nears (its size grows at a constant rate), legs, pedals
and the ball's spin follow the distance covered -- and a flag run up a pole hand over hand,
in 4-7 pulls with pauses between (`hoist`: bottom -> top, `haul_down`: back). Both pace
linearly over the whole video. The flag flies in the wind, its wave running along it one way
or the other at random (so the wave's direction does not tell a mirror video). Per video the
scene, the mover (its kind, colours, size, gait, the line it takes), the pole, the flag
(pattern, colours, size, side), the weather, the camera and its sensor, length and frame rate
(23.976 or 59.94 fps) are random. The camera stands on a mast that vibrates in the wind
(resonances of a few frames' period, in gusts; translation and roll), seen through a rolling
shutter (each row a little later than the one above, or below when the camera hangs upside
down, at random, so that the skew does not tell time's direction: the frame wobbles like
jelly); its lens bows straight lines (barrel distortion); cloud shadows sweep over the ground
and the clouds drift across the sky with the wind, any way; the sensor adds noise, a fixed
column pattern and a few hot pixels. Frames are 3:2, 240x160 (the model's centre crop keeps
the middle 160x160, where the action is), written with FLV1 (Sorenson Spark, an H.263
variant) in .mkv.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthetic.base import STILL, Encoding, Generator, bgr, centre_square, hue

MARGIN = 10  # canvas pixels beyond the frame on each side, for the mast's vibration
FAR = 1e4  # metres: the horizon, the sky, mountains (no shadow, never in front)
SHADOW_FADE = 70.0  # metres: cloud shadows fade out by here (further away they would alias)
SUB = 4  # fractional bits of the drawing coordinates (sub-pixel placement)
#: who or what comes and goes in each place
MOVERS = {
    "park": ("runner", "cyclist", "ball"),
    "beach": ("runner", "ball"),
    "court": ("runner", "ball"),
    "snow": ("skier", "runner"),
}
#: BGR: red, white, blue, yellow, green, black, orange
FLAG_COLOURS = np.float32(
    [[40, 40, 200], [245, 245, 245], [150, 60, 20], [30, 200, 240], [40, 140, 30], [30, 30, 30]]
    + [[20, 120, 240]]
)


def _sp(x, y) -> tuple[int, int]:
    """A point in the drawing functions' fixed-point coordinates (SUB fractional bits)."""
    return int(round(x * 16)), int(round(y * 16))


def _len(v) -> int:
    return max(int(round(v * 16)), 8)


def _line(img, a, b, colour, width):
    cv2.line(img, _sp(*a), _sp(*b), bgr(colour), max(1, int(round(width))), cv2.LINE_AA, SUB)


def _disc(img, c, r, colour):
    cv2.circle(img, _sp(*c), _len(r), bgr(colour), -1, cv2.LINE_AA, SUB)


def _oval(img, c, rx, ry, colour):
    cv2.ellipse(img, _sp(*c), (_len(rx), _len(ry)), 0, 0, 360, bgr(colour), -1, cv2.LINE_AA, SUB)


def _poly(img, points, colour):
    points = np.round(np.asarray(points, np.float64) * 16).astype(np.int32)
    cv2.fillPoly(img, [points], bgr(colour), cv2.LINE_AA, SUB)


def _trap(img, x, y0, half0, y1, half1, colour):
    """A trapezoid centred on x: half-width half0 at row y0, half1 at row y1."""
    _poly(img, [(x - half0, y0), (x + half0, y0), (x + half1, y1), (x - half1, y1)], colour)


def _rect(img, x0, y0, x1, y1, colour):
    _poly(img, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour)


@dataclass
class _Camera:
    f: float  # focal length, pixels
    cx: float  # canvas x of the camera's axis
    horizon: float  # canvas y of the horizon
    height: float  # metres above the ground

    def at(self, X, Z, up=0.0):
        """Canvas (x, y) of the point `up` metres above the ground point (X, Z)."""
        return self.cx + self.f * X / Z, self.horizon + self.f * (self.height - up) / Z

    def z_of_row(self, y):
        return self.f * self.height / (y - self.horizon)


@dataclass
class _Path:
    """The mover's line on the ground, from its near end to its vanishing point."""

    x_near: float  # canvas x, y of the feet at the near end
    y_near: float
    vx: float  # canvas x of the line's vanishing point, on the horizon
    z_near: float
    z_far: float

    def z(self, v: float) -> float:
        return self.z_far * (self.z_near / self.z_far) ** v  # the size grows at a constant rate

    def foot(self, cam: _Camera, z):
        """Canvas (x, y) of the line's point at distance z."""
        y = cam.horizon + cam.f * cam.height / z
        share = (y - cam.horizon) / (self.y_near - cam.horizon)
        return self.vx + (self.x_near - self.vx) * share, y

    def ground_x(self, cam: _Camera, z):
        """The line's ground X at distance z."""
        return (self.foot(cam, z)[0] - cam.cx) * z / cam.f


@dataclass
class _Mover:
    kind: str
    size: float  # metres: standing height, or the ball's radius
    colours: dict  # name -> BGR
    stride: float  # metres per gait cycle (per crank turn, per bounce)
    bounce: float  # the ball's highest hop, metres
    spots: np.ndarray  # (k, 3) unit vectors: the ball's markings


@dataclass
class _Flag:
    x: float  # canvas x of the pole
    base: float  # canvas y of the pole's foot and top
    top: float
    z: float
    pole: np.ndarray  # BGR
    texture: np.ndarray  # float32 BGR, column 0 at the pole
    width: float  # pixels
    height: float
    side: int  # +1: flies to the right of the pole
    pulls: int  # hand-over-hand pulls from bottom to top
    share: float  # share of each pull's time the flag moves
    #: amplitude (share of the height), waves along it, cycles per frame, direction, phase
    wave: tuple[float, float, float, float, float]

    def top_edge(self, v: float) -> float:
        """Canvas y of the flag's top edge with the variable at `v` (pull by pull)."""
        if v >= 1:
            h = 1.0
        else:
            u = max(v, 0.0) * self.pulls
            k = np.floor(u)
            g = np.clip((u - k - (1 - self.share) / 2) / self.share, 0.0, 1.0)
            h = (k + g * g * (3 - 2 * g)) / self.pulls
        length = self.base - self.top
        low = self.base - 0.1 * length - self.height
        high = self.top + 0.03 * length + 1
        return low + (high - low) * h


def _tileable(rng, cells: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Smooth random noise of `size` (rows, columns) that wraps round at its edges, unit std."""
    small = rng.normal(0, 1, cells).astype(np.float32)
    rows, cols = size
    big = cv2.resize(np.tile(small, (3, 3)), (3 * cols, 3 * rows), interpolation=cv2.INTER_CUBIC)
    out = big[rows : 2 * rows, cols : 2 * cols]
    return (out - out.mean()) / max(float(out.std()), 1e-6)


def _wrap(field: np.ndarray, x, y) -> np.ndarray:
    """`field` sampled at (x, y) in its own pixels, wrapping round (any shape of x and y)."""
    rows, cols = field.shape
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    shape = x.shape
    x = np.mod(x, cols).reshape(-1, shape[-1] if x.ndim > 1 else 1)
    y = np.mod(y, rows).reshape(x.shape)
    out = cv2.remap(field, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return out.reshape(shape)


@dataclass
class _Weather:
    shadow: float  # how much a cloud's shadow darkens (0: overcast)
    cover: np.ndarray  # float32 (n, n) in [0, 1]: the clouds' shadows on a tile of the ground
    tile: float  # metres the tile spans (it repeats)
    wind: np.ndarray  # (2,) metres per frame along X and Z
    sky: np.ndarray  # float32 (rows, period) in [0, 1]: the clouds in the sky (they repeat)
    sky_drift: float  # pixels per frame
    cloud: np.ndarray  # BGR

    def shade(self, X, Z, t: float):
        """Light falling on the ground at (X, Z) at frame `t` (1: sunlit)."""
        Z = np.asarray(Z, np.float32)
        if self.shadow <= 0:
            return np.ones_like(Z)
        n = self.cover.shape[0] / self.tile
        cover = _wrap(self.cover, (X - self.wind[0] * t) * n, (Z - self.wind[1] * t) * n)
        fade = np.clip(1.0 - Z / SHADOW_FADE, 0.0, 1.0)
        return 1.0 - self.shadow * cover * fade

    def clouds(self, x, y, t: float):
        """How much cloud covers the sky at canvas (x, y) at frame `t` (0-1)."""
        return _wrap(self.sky, x - self.sky_drift * t, y)


@dataclass
class _Lens:
    """The camera: lens, vibrating mast, rolling shutter, sensor."""

    ddx: np.ndarray  # (h, w) offsets from the centre after barrel distortion
    ddy: np.ndarray
    centre: tuple[float, float]  # canvas point on the camera's axis
    shake: np.ndarray  # (3, 6): x, y, roll: amp1, cycles/frame 1, phase 1, amp2, cyc 2, phase 2
    gust: tuple[float, float]  # period (frames), phase of the gusts that drive the resonance
    readout: float  # frames from the top row's exposure to the bottom's (< 0: read upwards)
    sigma: float  # sensor noise
    columns: np.ndarray  # (w, 1) per-column gain (fixed pattern)
    hot: np.ndarray  # flat indices of hot pixels
    hot_add: np.ndarray  # (n, 1) what they add

    def offsets(self, t):
        gust = 0.55 + 0.45 * np.sin(2 * np.pi * t / self.gust[0] + self.gust[1])
        out = []
        for a1, f1, p1, a2, f2, p2 in self.shake:
            out.append(
                a1 * gust * np.sin(2 * np.pi * f1 * t + p1) + a2 * np.sin(2 * np.pi * f2 * t + p2)
            )
        return out


@dataclass
class _Scene:
    canvas: np.ndarray  # float32 BGR, (height + 2 MARGIN, width + 2 MARGIN)
    occlusion: np.ndarray  # float32: distance of what stands at each pixel (FAR: nothing)
    lit_x: np.ndarray  # float32: the ground X, Z where each pixel would take a cloud's shadow
    lit_z: np.ndarray
    sky: np.ndarray  # float32 (rows above the horizon, width): 1 where the sky is open
    xs: np.ndarray  # float32 canvas x and y of each pixel
    ys: np.ndarray
    cam: _Camera
    path: _Path
    mover: _Mover
    flag: _Flag
    weather: _Weather
    lens: _Lens
    haze: np.ndarray  # BGR
    haze_length: float  # metres

    def tone(self, colour, z: float, light: float) -> np.ndarray:
        h = 1.0 - np.exp(-z / self.haze_length)
        return np.asarray(colour, np.float32) * light * (1 - h) + self.haze * h


class _Canvas:
    """The still part of a scene, with what each pixel is (for shadows and occlusion)."""

    def __init__(self, cam: _Camera, width: int, height: int, haze, haze_length: float):
        self.cam, self.haze, self.haze_length = cam, np.asarray(haze, np.float32), haze_length
        self.img = np.zeros((height, width, 3), np.float32)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self.xs, self.ys = xs, ys
        below = ys - cam.horizon > 0.5
        self.ground_z = np.where(below, cam.f * cam.height / np.maximum(ys - cam.horizon, 0.5), FAR)
        self.ground_z = np.minimum(self.ground_z, FAR).astype(np.float32)
        self.ground_x = ((xs - cam.cx) * self.ground_z / cam.f).astype(np.float32)
        self.ground = below
        self.occlusion = np.full((height, width), FAR, np.float32)
        self.shadow_z = self.ground_z.copy()  # where a shadow would fall for each pixel
        self.shadow_x = self.ground_x.copy()
        self.open_sky = ~below

    def tone(self, colour, z: float) -> np.ndarray:
        h = 1.0 - np.exp(-z / self.haze_length)
        return np.asarray(colour, np.float32) * (1 - h) + self.haze * h

    def distant(self, colour, haze: float) -> np.ndarray:
        """A colour on the horizon, veiled by `haze` (0-1)."""
        return np.asarray(colour, np.float32) * (1 - haze) + self.haze * haze

    def prop(self, z: float, draw, stands: bool = True):
        """Draw something at distance z. Standing, it takes its shadow from its foot's place
        (the column's ground point at z) and hides the movers behind it; lying on the ground,
        from the ground under it."""
        before = self.img.copy()
        draw(self.img)
        changed = np.any(self.img != before, axis=2)
        self.open_sky &= ~changed
        if stands:
            self.occlusion[changed] = np.minimum(self.occlusion[changed], z)
            self.shadow_z[changed] = z
            self.shadow_x[changed] = (self.xs[changed] - self.cam.cx) * z / self.cam.f

    def ground_lines(self, segments, colour, width_m: float):
        """Paint lines on the ground (anti-aliased), each segment ((X1, Z1), (X2, Z2))."""
        mask = np.zeros(self.img.shape[:2], np.uint8)
        for (x1, z1), (x2, z2) in segments:
            for k in range(8):
                a, b = k / 8, (k + 1) / 8
                za, zb = z1 + (z2 - z1) * a, z1 + (z2 - z1) * b
                if min(za, zb) < 1.0:
                    continue
                pa = self.cam.at(x1 + (x2 - x1) * a, za)
                pb = self.cam.at(x1 + (x2 - x1) * b, zb)
                thick = 0.6 * width_m * self.cam.f / ((za + zb) / 2)
                cv2.line(mask, _sp(*pa), _sp(*pb), 255, max(1, int(round(thick))), cv2.LINE_AA, SUB)
        m = (mask.astype(np.float32) / 255)[..., None]
        h = 1.0 - np.exp(-self.ground_z / self.haze_length)[..., None]
        line = np.asarray(colour, np.float32) * (1 - h) + self.haze * h
        self.img = self.img * (1 - m) + line * m


def _sky(cv: _Canvas, zenith, horizon):
    rows = int(np.ceil(cv.cam.horizon)) + 1
    t = (np.linspace(0.0, 1.0, rows, dtype=np.float32) ** 0.7)[:, None, None]
    cv.img[:rows] = np.asarray(zenith, np.float32) * (1 - t) + np.asarray(horizon, np.float32) * t


def _grain(rng, shape, scale: float, amount: float) -> np.ndarray:
    h, w = shape
    small = rng.normal(0, 1, (max(int(h / scale), 2), max(int(w / scale), 2))).astype(np.float32)
    return 1.0 + amount * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]


def _paint_ground(cv: _Canvas, colour: np.ndarray):
    """Lay a per-pixel ground colour (H, W, 3) below the horizon, hazed with distance."""
    h = 1.0 - np.exp(-cv.ground_z / cv.haze_length)[..., None]
    toned = colour * (1 - h) + cv.haze * h
    cv.img[cv.ground] = toned[cv.ground]


# --- things on the ground -------------------------------------------------------------------


def _tree(cv, rng, X, Z):
    p, (x, y) = cv.cam.f / Z, cv.cam.at(X, Z)
    trunk, crown = rng.uniform(1.4, 2.4), rng.uniform(1.3, 2.2)
    bark = cv.tone(hue(rng, 30, 90) * np.array([0.6, 0.8, 1.0]), Z)
    leaves = [cv.tone(np.array([30, 110, 40]) * rng.uniform(0.6, 1.3, 3), Z) for _ in range(4)]
    blobs = [
        (rng.uniform(-0.6, 0.6), rng.uniform(-0.5, 0.5), rng.uniform(0.6, 0.9)) for _ in range(4)
    ]

    def draw(img):
        _trap(img, x, y, 0.14 * p, y - trunk * p, 0.1 * p, bark)
        for (dx, dy, r), colour in zip(blobs, leaves, strict=True):
            centre = (x + dx * crown * p, y - (trunk + crown * (0.8 + dy)) * p)
            _disc(img, centre, r * crown * p, colour)

    cv.prop(Z, draw)


def _bench(cv, rng, X, Z):
    p, (x, y) = cv.cam.f / Z, cv.cam.at(X, Z)
    wood, iron = cv.tone(hue(rng, 40, 160, 0.3), Z), cv.tone(hue(rng, 20, 70), Z)

    def draw(img):
        for dx in (-0.8, 0.8):
            _line(img, (x + dx * p, y), (x + dx * p, y - 0.85 * p), iron, 0.06 * p)
        _line(img, (x - 0.9 * p, y - 0.45 * p), (x + 0.9 * p, y - 0.45 * p), wood, 0.1 * p)
        for up in (0.62, 0.78):
            _line(img, (x - 0.9 * p, y - up * p), (x + 0.9 * p, y - up * p), wood, 0.09 * p)

    cv.prop(Z, draw)


def _lamp(cv, rng, X, Z):
    p, (x, y) = cv.cam.f / Z, cv.cam.at(X, Z)
    iron = cv.tone(hue(rng, 20, 80), Z)
    glass = cv.tone((200, 235, 245), Z)

    def draw(img):
        _line(img, (x, y), (x, y - 3.6 * p), iron, 0.09 * p)
        _trap(img, x, y - 3.6 * p, 0.18 * p, y - 4.0 * p, 0.12 * p, glass)
        _line(img, (x - 0.2 * p, y - 4.0 * p), (x + 0.2 * p, y - 4.0 * p), iron, 0.06 * p)

    cv.prop(Z, draw)


def _parasol(cv, rng, X, Z):
    p, (x, y) = cv.cam.f / Z, cv.cam.at(X, Z)
    r, pole_h = rng.uniform(0.9, 1.3), rng.uniform(2.0, 2.4)
    bright, pale = cv.tone(hue(rng, 20, 250), Z), cv.tone(hue(rng, 180, 255, 0.7), Z)
    pole = cv.tone((200, 200, 200), Z)
    n = int(rng.integers(6, 10))
    across = np.linspace(-1.0, 1.0, n + 1)
    rim = [(x + r * p * a, y - (pole_h - 0.35 - 0.15 * (1 - a * a)) * p) for a in across]
    apex = (x, y - (pole_h + 0.15) * p)

    def draw(img):
        _line(img, (x, y), (x, y - pole_h * p), pole, 0.05 * p)
        for i in range(n):
            _poly(img, [apex, rim[i], rim[i + 1]], bright if i % 2 else pale)

    cv.prop(Z, draw)


def _towel(cv, rng, X, Z):
    long, colours = rng.uniform(1.6, 2.0), [cv.tone(hue(rng, 30, 250), Z) for _ in range(2)]
    stripes = int(rng.integers(3, 6))

    def draw(img):
        for k in range(stripes):
            x0, x1 = X - 0.45 + 0.9 * k / stripes, X - 0.45 + 0.9 * (k + 1) / stripes
            quad = [
                cv.cam.at(x0, Z),
                cv.cam.at(x1, Z),
                cv.cam.at(x1, Z + long),
                cv.cam.at(x0, Z + long),
            ]
            _poly(img, quad, colours[k % 2])

    cv.prop(Z, draw, stands=False)


def _pine(cv, rng, X, Z):
    p, (x, y) = cv.cam.f / Z, cv.cam.at(X, Z)
    tall, tiers = rng.uniform(4.0, 8.0), int(rng.integers(3, 5))
    green = cv.tone(np.array([45, 75, 25]) * rng.uniform(0.7, 1.3, 3), Z)
    snow = cv.tone((250, 245, 240), Z)
    bark = cv.tone((40, 55, 75), Z)

    def draw(img):
        _line(img, (x, y), (x, y - 0.25 * tall * p), bark, 0.12 * p)
        for i in range(tiers):
            low = y - (0.15 + 0.75 * i / tiers) * tall * p
            high = y - (0.15 + 0.75 * (i + 1) / tiers + 0.12) * tall * p
            half = 0.26 * tall * (1 - 0.65 * i / tiers) * p
            _poly(img, [(x - half, low), (x + half, low), (x, high)], green)
            edge = (x - half * 0.9, low - 0.04 * p), (x + half * 0.6, low - 0.06 * p)
            _line(img, *edge, snow, max(1.0, 0.12 * p))

    cv.prop(Z, draw)


def _marker(cv, rng, X, Z):
    p, (x, y) = cv.cam.f / Z, cv.cam.at(X, Z)
    a, b = cv.tone((20, 110, 240), Z), cv.tone((30, 30, 30), Z)

    def draw(img):
        for k in range(5):
            _line(
                img, (x, y - 0.3 * k * p), (x, y - 0.3 * (k + 1) * p), a if k % 2 else b, 0.05 * p
            )

    cv.prop(Z, draw)


PROPS = {
    "park": ((_tree, 1.0, 3.4, 5.6), (_bench, 0.3, 1.0, 1.0), (_lamp, 0.3, 0.3, 4.1)),
    "beach": ((_parasol, 1.0, 1.4, 2.6), (_towel, 0.6, 0.5, 0.1)),
    "court": (),
    "snow": ((_pine, 1.0, 2.1, 8.3), (_marker, 0.4, 0.2, 1.5)),
}  # kind -> (draw, weight, half width m, height m) of the props scattered around


# --- the four places ------------------------------------------------------------------------


def _treeline(cv, rng, side):
    height = side * rng.uniform(0.025, 0.07)
    hz, w = cv.cam.horizon, cv.img.shape[1]
    greens = [cv.distant(np.array([40, 90, 40]) * rng.uniform(0.6, 1.2, 3), 0.3) for _ in range(3)]
    step = side * rng.uniform(0.03, 0.06)
    bumps = [
        (x + rng.uniform(-step, step), rng.uniform(0.3, 1.0), int(rng.integers(3)))
        for x in np.arange(-step, w + step, step)
    ]

    def draw(img):
        _rect(img, 0, hz - 0.3 * height, w, hz + 1, greens[0])
        for x, up, k in bumps:
            _disc(img, (x, hz - up * height), step * 0.9, greens[k])

    cv.prop(FAR, draw)


def _skyline(cv, rng, side):
    hz, w = cv.cam.horizon, cv.img.shape[1]
    x, blocks = -5.0, []
    while x < w:
        wide, tall = side * rng.uniform(0.05, 0.14), side * rng.uniform(0.04, 0.16)
        blocks.append((x, wide, tall, cv.distant(hue(rng, 60, 200, 0.5), 0.35)))
        x += wide + side * rng.uniform(0.0, 0.03)

    def draw(img):
        for x0, wide, tall, colour in blocks:
            _rect(img, x0, hz - tall, x0 + wide, hz + 1, colour)
            for wy in np.arange(hz - tall + 2, hz - 2, 4):
                for wx in np.arange(x0 + 2, x0 + wide - 2, 4):
                    _rect(img, wx, wy, wx + 1.5, wy + 1.5, colour * 0.75)

    cv.prop(FAR, draw)


def _mountains(cv, rng, side):
    hz, w = cv.cam.horizon, cv.img.shape[1]
    peaks = []
    for _ in range(int(rng.integers(2, 5))):
        xa, up, half = (
            rng.uniform(-0.1, 1.1) * w,
            side * rng.uniform(0.06, 0.2),
            side * rng.uniform(0.2, 0.5),
        )
        rock = cv.distant(hue(rng, 70, 140, 0.7) * np.array([1.15, 1.0, 0.9]), 0.35)
        peaks.append((xa, up, half, rock, rng.uniform(0.3, 0.5)))
    snow = cv.distant((250, 248, 245), 0.2)

    def draw(img):
        for xa, up, half, rock, cap in sorted(peaks, key=lambda q: -q[1]):
            _poly(img, [(xa - half, hz + 1), (xa, hz - up), (xa + half, hz + 1)], rock)
            low = hz - up * (1 - cap)
            _poly(img, [(xa - half * cap, low), (xa, hz - up), (xa + half * cap, low)], snow)

    cv.prop(FAR, draw)


def _park(cv, rng, path, side):
    _sky(cv, hue(rng, 150, 240) * np.array([1.2, 0.95, 0.6]), hue(rng, 200, 250, 0.7))
    _treeline(cv, rng, side)
    X, Z = cv.ground_x, cv.ground_z
    grass = np.array([50, 150, 70], np.float32) * rng.uniform(0.75, 1.2, 3)
    across = rng.integers(2)
    wide = rng.uniform(2.5, 5.0)
    stripe = np.sign(np.sin(2 * np.pi * (Z if across else X) / wide + rng.uniform(0, 7)))
    fade = np.exp(-Z / 40.0)[..., None]
    colour = grass * (1 + rng.uniform(0.06, 0.12) * stripe[..., None] * fade)
    colour = colour * _grain(rng, Z.shape, side * 0.02, 0.06)
    if rng.random() < 0.7:  # a gravel path along the mover's line
        half = rng.uniform(0.9, 1.6)
        on = np.abs(X - path.ground_x(cv.cam, np.maximum(Z, 0.1))) < half
        gravel = hue(rng, 120, 200, 0.7) * np.array([0.85, 0.95, 1.05])
        colour[on] = gravel * _grain(rng, Z.shape, side * 0.01, 0.05)[on]
    _paint_ground(cv, colour.astype(np.float32))


def _beach(cv, rng, path, side):
    _sky(cv, hue(rng, 190, 250) * np.array([1.1, 0.95, 0.7]), hue(rng, 215, 255, 0.85))
    if rng.random() < 0.5:  # a headland far away
        hz, w = cv.cam.horizon, cv.img.shape[1]
        x0 = rng.choice([-0.2, 0.6]) * w
        land = cv.distant(np.array([90, 120, 100]) * rng.uniform(0.7, 1.2, 3), 0.45)
        up = side * rng.uniform(0.03, 0.07)

        def draw(img):
            ridge = [(x0 + 0.2 * w, hz - up), (x0 + 0.45 * w, hz - up * 0.7)]
            _poly(img, [(x0, hz + 1), *ridge, (x0 + 0.6 * w, hz + 1)], land)

        cv.prop(FAR, draw)
    X, Z = cv.ground_x, cv.ground_z
    shore = path.z_far * rng.uniform(1.3, 2.2) + 1.5 * np.sin(
        X / rng.uniform(5, 9) + rng.uniform(0, 7)
    )
    sand = np.array([150, 195, 225], np.float32) * rng.uniform(0.85, 1.1, 3)
    ripple = np.sin(2 * np.pi * Z / rng.uniform(0.6, 1.1) + 2 * np.sin(X / 1.7)) * np.exp(-Z / 8.0)
    colour = sand * (1 + 0.05 * ripple[..., None]) * _grain(rng, Z.shape, side * 0.015, 0.04)
    wet = (Z > shore - rng.uniform(2.0, 4.0)) & (Z <= shore)
    colour[wet] *= 0.78
    sea_near, sea_far = (
        hue(rng, 120, 190) * np.array([1.0, 0.9, 0.5]),
        hue(rng, 80, 150) * np.array([1.1, 0.8, 0.4]),
    )
    t = np.clip((Z - shore) / 60.0, 0, 1)[..., None]
    sea = (sea_near * (1 - t) + sea_far * t).astype(np.float32)
    water = Z > shore
    colour[water] = sea[water]
    colour[(Z > shore) & (Z < shore + 0.7)] = (235, 240, 240)  # surf
    _paint_ground(cv, colour.astype(np.float32))
    for _ in range(int(rng.integers(15, 40))):  # glints on the water
        gz = float(np.max(shore)) + rng.uniform(2, 150)
        gx = rng.uniform(-1, 1) * cv.img.shape[1] / 2 * gz / cv.cam.f
        a, b = cv.cam.at(gx - 0.6, gz), cv.cam.at(gx + 0.6, gz)
        _line(cv.img, a, b, cv.tone((245, 250, 250), gz), 1)


def _court(cv, rng, path, side):
    if rng.random() < 0.5:
        _sky(cv, hue(rng, 150, 240) * np.array([1.2, 0.95, 0.6]), hue(rng, 200, 250, 0.7))
    else:
        _sky(cv, hue(rng, 150, 210, 0.9), hue(rng, 190, 235, 0.9))
    (_skyline if rng.random() < 0.5 else _treeline)(cv, rng, side)
    X, Z = cv.ground_x, cv.ground_z
    surfaces = [(170, 100, 40), (120, 130, 40), (60, 100, 190), (120, 60, 110)]  # blue, teal,
    surface = np.array(surfaces[int(rng.integers(4))], np.float32)  # clay, purple
    surface *= rng.uniform(0.85, 1.15, 3)
    surround = hue(rng, 50, 140, 0.6)
    middle = rng.uniform(-2.0, 2.0)
    end = path.z_far + rng.uniform(3.0, 8.0)  # the far baseline, beyond the mover's far end
    start = end - 28.0
    inside = (np.abs(X - middle) < 7.5) & (Z > start) & (Z < end)
    colour = np.where(inside[..., None], surface, surround).astype(np.float32)
    colour *= _grain(rng, Z.shape, side * 0.01, 0.03)
    _paint_ground(cv, colour)
    half, mid = 7.5, start + 14.0
    circle = [
        (middle + 1.8 * np.cos(a), mid + 1.8 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 25)
    ]
    arc = [
        (middle + 6.75 * np.cos(a), end - 1.6 - 6.75 * np.sin(a))
        for a in np.linspace(0.2, np.pi - 0.2, 17)
    ]
    key = [
        (middle - 2.45, end),
        (middle - 2.45, end - 5.8),
        (middle + 2.45, end - 5.8),
        (middle + 2.45, end),
    ]
    segments = [
        ((middle - half, max(start, 1.0)), (middle - half, end)),
        ((middle + half, max(start, 1.0)), (middle + half, end)),
        ((middle - half, end), (middle + half, end)),
        ((middle - half, mid), (middle + half, mid)),
    ]
    for line in (circle, arc, key):
        segments += list(zip(line[:-1], line[1:], strict=True))
    if start > 1.0:
        segments.append(((middle - half, start), (middle + half, start)))
    cv.ground_lines(segments, (240, 240, 240) if rng.random() < 0.8 else (60, 220, 240), 0.05)
    # the far hoop and the fence behind
    hoop_z, fence_z = end - 1.2, end + rng.uniform(2.5, 5.0)
    p, (x, y) = cv.cam.f / hoop_z, cv.cam.at(middle, hoop_z)
    grey, board, rim = (
        cv.tone((150, 150, 150), hoop_z),
        cv.tone((245, 245, 245), hoop_z),
        cv.tone((30, 90, 230), hoop_z),
    )

    def hoop(img):
        _line(img, (x, y), (x, y - 3.4 * p), grey, 0.12 * p)
        _rect(img, x - 0.9 * p, y - 3.95 * p, x + 0.9 * p, y - 2.9 * p, board)
        _line(img, (x - 0.23 * p, y - 3.05 * p), (x + 0.23 * p, y - 3.05 * p), rim, 0.06 * p)

    tall = rng.uniform(3.0, 4.0)
    posts = np.arange(middle - 14, middle + 14.1, 3.0)
    mesh = cv.tone(hue(rng, 30, 90), fence_z)
    screen = rng.random() < 0.6
    cloth = cv.tone(np.array([40, 80, 40]) * rng.uniform(0.7, 1.3, 3), fence_z)

    def fence(img):
        (x0, y0), (x1, y1) = cv.cam.at(posts[0], fence_z), cv.cam.at(posts[-1], fence_z, tall)
        region = img[int(y1) : int(y0) + 1, max(int(x0), 0) : int(x1) + 1]
        region *= 0.8  # the chain-link mesh
        region += 0.2 * mesh
        if screen:
            (a, b), (c, d) = cv.cam.at(posts[0], fence_z, 2.0), cv.cam.at(posts[-1], fence_z)
            _rect(img, a, b, c, d, cloth)
        for post in posts:
            _line(img, cv.cam.at(post, fence_z), cv.cam.at(post, fence_z, tall), mesh, 1)
        _line(img, (x0, y1), (x1, y1), mesh, 1)

    cv.prop(fence_z, fence)
    cv.prop(hoop_z, hoop)


def _snow(cv, rng, path, side):
    if rng.random() < 0.6:
        _sky(cv, hue(rng, 170, 250) * np.array([1.2, 0.9, 0.55]), hue(rng, 220, 255, 0.8))
    else:
        _sky(cv, hue(rng, 170, 215, 0.95), hue(rng, 205, 240, 0.95))
    _mountains(cv, rng, side)
    X, Z = cv.ground_x, cv.ground_z
    snow = np.array([245, 240, 232], np.float32) * rng.uniform(0.92, 1.02, 3)
    drift = np.zeros_like(Z)
    for _ in range(3):
        k = 2 * np.pi / rng.uniform(6, 20)
        a = rng.uniform(0, np.pi)
        drift += np.sin(k * (X * np.cos(a) + Z * np.sin(a)) + rng.uniform(0, 7))
    drift = (drift / 3 * np.exp(-Z / 60.0))[..., None]
    colour = snow * (1 + 0.05 * drift) - np.array([0, 10, 25], np.float32) * np.maximum(-drift, 0)
    colour = colour * _grain(rng, Z.shape, side * 0.01, 0.015)
    trail = rng.integers(3)
    lateral = X - path.ground_x(cv.cam, np.maximum(Z, 0.1))
    if trail == 0:  # a groomed trail, corduroy
        on = np.abs(lateral) < rng.uniform(1.5, 2.5)
        cord = np.sin(2 * np.pi * lateral / 0.35) * np.exp(-Z / 12.0)
        colour[on] *= (1 - 0.05 * (1 + cord[on]))[..., None]
    elif trail == 1:  # ski tracks
        for offset in (-0.12, 0.12):
            groove = np.abs(lateral - offset) * cv.cam.f / np.maximum(Z, 0.1) < 0.8
            colour[groove] *= np.array([0.92, 0.88, 0.82], np.float32)
    _paint_ground(cv, colour.astype(np.float32))


PLACES = {"park": _park, "beach": _beach, "court": _court, "snow": _snow}


# --- the movers -----------------------------------------------------------------------------


def _person(img, x, y, p, d, m: _Mover, c: dict, skier: bool):
    H = m.size * p
    s = np.sin(2 * np.pi * d / m.stride)
    lift = 0.03 if skier else 0.1
    limb = 0.065 * H
    for side, up in ((-1, max(s, 0.0)), (1, max(-s, 0.0))):
        hip = (x + side * 0.05 * H, y - 0.5 * H)
        foot = (x + side * 0.055 * H, y - lift * H * up)
        knee = (x + side * 0.065 * H, y - 0.27 * H - 0.6 * lift * H * up)
        _line(img, hip, knee, c["legs"], limb)
        _line(img, knee, foot, c["shins"], 0.85 * limb)
        if skier:
            _line(img, (foot[0], y + 0.01 * H), (foot[0], y - 0.025 * H), c["kit"], 0.04 * H)
        else:
            _oval(img, foot, 0.035 * H, 0.02 * H, c["kit"])
    _trap(img, x, y - 0.53 * H, 0.085 * H, y - 0.42 * H, 0.09 * H, c["legs"])  # shorts
    _trap(img, x, y - 0.8 * H, 0.1 * H, y - 0.49 * H, 0.075 * H, c["shirt"])
    for side, up in ((-1, max(-s, 0.0)), (1, max(s, 0.0))):  # an arm swings with the other leg
        shoulder = (x + side * 0.1 * H, y - 0.78 * H)
        elbow = (x + side * 0.14 * H, y - 0.63 * H - 0.04 * H * up)
        hand = (x + side * 0.125 * H, y - 0.5 * H - 0.1 * H * up)
        _line(img, shoulder, elbow, c["shirt"], 0.055 * H)
        _line(img, elbow, hand, c["arms"], 0.045 * H)
        if skier:
            _line(img, hand, (x + side * 0.2 * H, y), c["kit"], 0.015 * H)
    _line(img, (x, y - 0.8 * H), (x, y - 0.86 * H), c["skin"], 0.05 * H)
    _disc(img, (x, y - 0.91 * H), 0.065 * H, c["skin"])
    _oval(img, (x, y - 0.935 * H), 0.068 * H, 0.045 * H, c["hair"])  # no face: front = back


def _cyclist(img, x, y, p, d, m: _Mover, c: dict):
    crank = 2 * np.pi * d / m.stride
    _line(img, (x, y), (x, y - 0.68 * p), (25, 25, 25), 0.05 * p)  # both wheels, head-on
    _line(img, (x, y - 0.34 * p), (x, y - 0.98 * p), c["kit"], 0.04 * p)  # the frame
    for side in (-1, 1):
        pedal = (x + side * 0.11 * p, y - (0.32 + 0.17 * side * np.sin(crank)) * p)
        hip = (x + side * 0.09 * p, y - 0.95 * p)
        knee = (x + side * 0.16 * p, (hip[1] + pedal[1]) / 2 - 0.1 * p)
        _line(img, hip, knee, c["legs"], 0.1 * p)
        _line(img, knee, pedal, c["shins"], 0.08 * p)
    _line(img, (x - 0.25 * p, y - 1.0 * p), (x + 0.25 * p, y - 1.0 * p), (40, 40, 40), 0.035 * p)
    _trap(img, x, y - 1.42 * p, 0.19 * p, y - 0.93 * p, 0.12 * p, c["shirt"])
    for side in (-1, 1):
        _line(
            img,
            (x + side * 0.18 * p, y - 1.4 * p),
            (x + side * 0.25 * p, y - 1.0 * p),
            c["arms"],
            0.07 * p,
        )
    _disc(img, (x, y - 1.53 * p), 0.11 * p, c["skin"])
    _oval(img, (x, y - 1.57 * p), 0.125 * p, 0.085 * p, c["hair"])  # a helmet


def _ball(img, x, y, p, d, m: _Mover, c: dict):
    r = m.size * p
    hop = m.bounce * abs(np.sin(np.pi * d / m.stride))
    x0, x1 = int(max(x - 1.3 * r - 2, 0)), int(min(x + 1.3 * r + 3, img.shape[1]))
    y0, y1 = int(max(y - 0.5 * r - 2, 0)), int(min(y + 0.5 * r + 3, img.shape[0]))
    if x1 > x0 and y1 > y0:  # its shadow on the ground, smaller as it rises
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        size = 1.0 - 0.3 * min(hop / max(m.bounce, 1e-6), 1.0) if m.bounce else 1.0
        _oval(mask, (x - x0, y - y0), r * size, 0.28 * r * size, (255, 255, 255))
        dark = 1.0 - 0.45 * c["sun"] * mask.astype(np.float32)[..., None] / 255
        img[y0:y1, x0:x1] = (img[y0:y1, x0:x1] * dark).astype(img.dtype)
    centre = (x, y - (m.size + hop) * p)
    _disc(img, centre, r, c["shirt"])
    spin = d / m.size  # rolling towards the camera: its top turns towards it
    cos, sin = np.cos(spin), np.sin(spin)
    for ux, uy, uz in m.spots:
        vy, vz = cos * uy + sin * uz, -sin * uy + cos * uz
        if vz < -0.15:
            _disc(img, (centre[0] + r * ux, centre[1] - r * vy), 0.28 * r * np.sqrt(-vz), c["legs"])
    _disc(img, (centre[0] - 0.35 * r, centre[1] - 0.4 * r), 0.16 * r, c["shine"])


def _draw_mover(img, scene: _Scene, v: float, t: float):
    path, m, cam = scene.path, scene.mover, scene.cam
    z = path.z(v)
    x, y = path.foot(cam, z)
    p = cam.f / z
    d = path.z_far - z  # metres covered from the far end
    light = float(scene.weather.shade(path.ground_x(cam, z), z, t))
    c = {k: bgr(scene.tone(col, z, light)) for k, col in m.colours.items()}
    c["sun"] = scene.weather.shadow > 0 and light > 0.9
    if m.kind == "cyclist":
        _cyclist(img, x, y, p, d, m, c)
    elif m.kind == "ball":
        _ball(img, x, y, p, d, m, c)
    else:
        _person(img, x, y, p, d, m, c, m.kind == "skier")
    half, up = 0.7 * p + 3, (2.0 + m.bounce) * p + 3
    return x - half, y - up, x + half, y + 0.3 * p + 3


def _draw_flag(img, scene: _Scene, v: float, t: float):
    f, cam = scene.flag, scene.cam
    light = float(scene.weather.shade((f.x - cam.cx) * f.z / cam.f, f.z, t))
    pole = scene.tone(f.pole, f.z, light)
    width = max(1.0, 0.07 * cam.f / f.z)
    _line(img, (f.x, f.base), (f.x, f.top), pole, width)
    _disc(img, (f.x, f.top - 0.5), max(width * 0.9, 1.0), pole)
    rope = f.x + f.side * (width / 2 + 0.5)  # the halyard
    _line(img, (rope, f.top), (rope, f.base - 3), scene.tone((225, 225, 225), f.z, light), 1)
    top = f.top_edge(v)
    amp, waves, speed, sign, phase = f.wave
    amp = amp * f.height
    x0 = int(np.floor(min(f.x, f.x + f.side * f.width))) - 1
    x1 = int(np.ceil(max(f.x, f.x + f.side * f.width))) + 2
    y0, y1 = int(np.floor(top - amp)) - 1, int(np.ceil(top + f.height + amp)) + 2
    bbox = (x0 - width - 2, f.top - width - 3, x1 + width + 2, f.base + 3)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, img.shape[1]), min(y1, img.shape[0])
    if x1 <= x0 or y1 <= y0:
        return bbox
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u = f.side * (xs - f.x - f.side * width / 2) / f.width
    angle = 2 * np.pi * (waves * u - sign * speed * t) + phase
    along = np.clip(u, 0.0, 1.0)
    v_ = ((ys - top - amp * along * np.sin(angle)) / f.height).astype(np.float32)
    th, tw = f.texture.shape[:2]
    map_x, map_y = (u * tw - 0.5).astype(np.float32), (v_ * th - 0.5).astype(np.float32)
    cloth = cv2.remap(f.texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    h = 1.0 - np.exp(-f.z / scene.haze_length)
    fold = (1 + 0.22 * along * np.cos(angle))[..., None]  # the folds catch the light or not
    colour = cloth * (fold * light * (1 - h)) + scene.haze * h
    cover = np.clip(np.minimum(u, 1 - u) * f.width + 0.5, 0, 1)
    cover *= np.clip(np.minimum(v_, 1 - v_) * f.height + 0.5, 0, 1)
    region = img[y0:y1, x0:x1].astype(np.float32)
    region = region * (1 - cover[..., None]) + colour * cover[..., None]
    img[y0:y1, x0:x1] = np.clip(region, 0, 255).astype(np.uint8)
    return bbox


def _flag_texture(rng) -> np.ndarray:
    th, tw = 24, 36
    picks = FLAG_COLOURS[rng.permutation(len(FLAG_COLOURS))[:3]] + rng.uniform(-15, 15, (3, 3))
    v, u = np.mgrid[0:th, 0:tw].astype(np.float32)
    v, u = (v + 0.5) / th, (u + 0.5) / tw
    kind = int(rng.integers(6))
    if kind == 0:  # three bands
        index = np.minimum((v * 3).astype(int), 2)
    elif kind == 1:  # three stripes
        index = np.minimum((u * 3).astype(int), 2)
    elif kind == 2:  # a Nordic cross
        index = ((np.abs(v - 0.5) < 0.1) | (np.abs(u - 0.36) < 0.07)).astype(int)
    elif kind == 3:  # diagonal halves
        index = (u * th / tw > v * 0.67).astype(int)
    elif kind == 4:  # a disc
        index = ((u - 0.45) ** 2 * (tw / th) ** 2 + (v - 0.5) ** 2 < 0.09).astype(int)
    else:  # two bands (a lifeguard's flag)
        index = (v > 0.5).astype(int)
    return np.clip(picks[index], 0, 255).astype(np.float32)


class Outdoors(Generator):
    name = "outdoors"
    encoding = Encoding("FLV1", ".mkv", (23.976, 59.94), 240, 160, 45, 105)
    appearances = ("beach", "court", "park", "snow")
    variables = {"near": ("approach", "recede"), "flag": ("hoist", "haul_down")}
    mixed_appearances = ("beach", "park")
    mixed_dynamics = ("approach", "recede", STILL)

    def scene(self, appearance, rng, width, height):
        cx, cy, side = centre_square(width, height)
        cx, cy = cx + MARGIN, cy + MARGIN  # canvas coordinates
        top = cy - side / 2
        W, H = width + 2 * MARGIN, height + 2 * MARGIN
        cam = _Camera(
            f=side * rng.uniform(1.1, 1.45),
            cx=cx,
            horizon=top + side * rng.uniform(0.3, 0.4),
            height=rng.uniform(1.5, 2.4),
        )
        # the mover's line: near end low in the centre square, vanishing point on the horizon
        toward = int(rng.choice([-1, 1]))
        y_near = top + side * rng.uniform(0.8, 0.88)
        z_near = cam.z_of_row(y_near)
        path = _Path(
            x_near=cx + toward * side * rng.uniform(0.1, 0.25),
            y_near=y_near,
            vx=cx + side * rng.uniform(-0.12, 0.12),
            z_near=z_near,
            z_far=z_near * rng.uniform(4.5, 6.5),
        )
        # the flagpole, on the other side
        pole_z = z_near * rng.uniform(1.8, 3.0)
        flag_w = side * rng.uniform(0.1, 0.13)
        poles = (hue(rng, 170, 250, 0.9), hue(rng, 90, 150, 0.9), np.array([60.0, 100, 140]))
        flag = _Flag(
            x=cx - toward * side * rng.uniform(0.17, 0.28),
            base=cam.horizon + cam.f * cam.height / pole_z,
            top=top + side * rng.uniform(0.07, 0.14),
            z=pole_z,
            pole=poles[int(rng.integers(3))],
            texture=_flag_texture(rng),
            width=flag_w,
            height=flag_w * rng.uniform(0.55, 0.7),
            side=int(rng.choice([-1, 1])),
            pulls=int(rng.integers(4, 8)),
            share=rng.uniform(0.45, 0.7),
            wave=(
                rng.uniform(0.06, 0.16),
                rng.uniform(0.6, 1.4),
                rng.uniform(0.04, 0.12),
                float(rng.choice([-1, 1])),
                rng.uniform(0, 2 * np.pi),
            ),
        )
        # the light: sunny with cloud shadows, or overcast; a haze growing with distance
        sunny = rng.random() < 0.65
        haze_length = {
            "park": (150, 400),
            "beach": (80, 250),
            "court": (200, 500),
            "snow": (60, 200),
        }
        cv = _Canvas(cam, W, H, hue(rng, 200, 245, 0.85), rng.uniform(*haze_length[appearance]))
        PLACES[appearance](cv, rng, path, side)
        # keep clear what the movers do: their sweep, the pole and the flag's travel
        clear = []
        mover = self._mover(appearance, rng)
        boxes = []
        for z in (path.z_near, path.z_far):
            (x, y), p = path.foot(cam, z), cam.f / z
            wide = (0.5 if mover.kind == "cyclist" else 0.35) * max(mover.size, 1.0) * p
            boxes += [
                (x - wide, y + 2),
                (x + wide, y + 2),
                (x + wide, y - 1.9 * p),
                (x - wide, y - 1.9 * p),
            ]
        mask = np.zeros((H, W), np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(np.array(boxes)).astype(np.int32)), 1)
        clear.append((mask, path.z_far))
        mask = np.zeros((H, W), np.uint8)
        x0, x1 = sorted((flag.x, flag.x + flag.side * flag.width))
        cv2.rectangle(
            mask, (int(x0) - 3, int(flag.top) - 3), (int(x1) + 3, int(flag.base) + 2), 1, -1
        )
        clear.append((mask, flag.z))
        props = []
        kinds = PROPS[appearance]
        if kinds:
            weights = np.array([k[1] for k in kinds])
            for _ in range(int(rng.integers(4, 10))):
                draw, _, half, tall = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
                for _ in range(30):
                    z = float(np.exp(rng.uniform(np.log(0.8 * z_near), np.log(70.0))))
                    X = rng.uniform(-0.7, 0.7) * W * z / cam.f
                    (xa, ya), (xb, yb) = cam.at(X - half, z, tall), cam.at(X + half, z)
                    box = (
                        slice(max(int(ya), 0), max(int(yb) + 2, 0)),
                        slice(max(int(xa), 0), max(int(xb) + 2, 0)),
                    )
                    if all(not (z < limit and m[box].any()) for m, limit in clear):
                        props.append((z, X, draw))
                        break
        for z, X, draw in sorted(props, key=lambda q: -q[0]):
            draw(cv, rng, X, z)
        canvas = cv2.GaussianBlur(cv.img, (0, 0), 0.5)
        # the weather
        angle = rng.uniform(0, 2 * np.pi)
        wind = rng.uniform(0.15, 0.45) * np.array([np.cos(angle), np.sin(angle)])
        size = 64
        cover = _tileable(rng, (int(rng.integers(3, 6)),) * 2, (size, size))
        cover = np.clip((cover - rng.uniform(-0.4, 0.6)) / 0.5, 0.0, 1.0)
        rows = max(int(np.ceil(cam.horizon)) + 1, 2)
        sky = _tileable(rng, (max(rows // 12, 2), int(rng.integers(4, 9))), (rows, 2 * W))
        sky *= np.linspace(1.0, 0.6, rows, dtype=np.float32)[:, None]  # flatter near the horizon
        if sunny:  # fair-weather clouds, or overcast: a grey veil
            sky = rng.uniform(0.5, 0.95) * np.clip((sky - rng.uniform(0.2, 1.0)) / 0.6, 0, 1)
        else:
            sky = rng.uniform(0.15, 0.4) * np.clip(sky / 2.5 + 0.5, 0, 1)
        weather = _Weather(
            shadow=rng.uniform(0.25, 0.45) if sunny else 0.0,
            cover=cover.astype(np.float32),
            tile=rng.uniform(120, 220),
            wind=wind.astype(np.float32),
            sky=sky.astype(np.float32),
            sky_drift=float(np.sign(wind[0]) * rng.uniform(0.15, 0.5)),
            cloud=hue(rng, 225, 255, 0.9) if sunny else hue(rng, 150, 200, 0.9),
        )
        # the camera
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        dx, dy = xs - (width - 1) / 2, ys - (height - 1) / 2
        k1 = rng.uniform(0.04, 0.14)
        bow = (1 + k1 * (dx * dx + dy * dy) / ((width / 2) ** 2 + (height / 2) ** 2)) / (1 + k1)
        shake = []  # x, y (pixels), roll (radians): a resonance in gusts, a slow sway
        for big, slow in (
            (rng.uniform(0.6, 2.2), 0.4),
            (rng.uniform(0.4, 1.5), 0.3),
            (0.006, 0.002),
        ):
            resonance = (big * rng.uniform(0.7, 1.0), rng.uniform(0.12, 0.45), rng.uniform(0, 7))
            sway = (slow * rng.uniform(0.3, 1.0), rng.uniform(0.01, 0.05), rng.uniform(0, 7))
            shake.append(resonance + sway)
        n_hot = int(rng.integers(5, 30))
        lens = _Lens(
            ddx=(dx * bow).astype(np.float32),
            ddy=(dy * bow).astype(np.float32),
            centre=((width - 1) / 2 + MARGIN, (height - 1) / 2 + MARGIN),
            shake=np.array(shake),
            gust=(rng.uniform(25, 70), rng.uniform(0, 7)),
            readout=rng.uniform(0.3, 0.9) * rng.choice([-1, 1]),
            sigma=rng.uniform(1.2, 3.0),
            columns=(1 + rng.normal(0, rng.uniform(0.002, 0.008), (width, 1))).astype(np.float32),
            hot=rng.choice(width * height, n_hot, replace=False),
            hot_add=rng.uniform(40, 140, (n_hot, 1)).astype(np.float32),
        )
        return _Scene(
            canvas=canvas,
            occlusion=cv.occlusion,
            lit_x=cv.shadow_x,
            lit_z=cv.shadow_z,
            sky=cv.open_sky[:rows].astype(np.float32),
            xs=cv.xs,
            ys=cv.ys,
            cam=cam,
            path=path,
            mover=mover,
            flag=flag,
            weather=weather,
            lens=lens,
            haze=cv.haze,
            haze_length=cv.haze_length,
        )

    def _mover(self, appearance, rng) -> _Mover:
        kinds = MOVERS[appearance]
        kind = kinds[int(rng.integers(len(kinds)))]
        skin = np.array([40, 60, 90]) + rng.uniform(0.35, 1) * np.array([120, 130, 150])
        bare = appearance != "snow" and rng.random() < 0.5
        legs = hue(rng, 20, 200, 0.3)
        colours = {
            "skin": skin,
            "hair": rng.uniform(10, 60) * np.array([1.0, 1.4, 2.2]) * rng.uniform(0.6, 1.6),
            "shirt": hue(rng, 20, 250),
            "legs": legs,
            "shins": skin if bare else legs,
            "arms": skin if bare else hue(rng, 20, 250),
            "kit": hue(rng, 10, 120),
            "shine": np.array([250, 250, 250]),
        }
        if kind == "cyclist":
            colours["hair"] = hue(rng, 20, 250)  # the helmet
        if kind == "ball":
            spots = rng.normal(0, 1, (int(rng.integers(6, 12)), 3))
            return _Mover(
                kind,
                rng.uniform(0.3, 0.45),
                colours,
                rng.uniform(2.5, 4.5),
                rng.uniform(0.2, 0.7) if rng.random() < 0.7 else 0.0,
                spots / np.linalg.norm(spots, axis=1, keepdims=True),
            )
        stride = {"runner": (2.2, 3.0), "skier": (2.5, 3.5), "cyclist": (4.0, 6.0)}[kind]
        return _Mover(
            kind, rng.uniform(1.55, 1.9), colours, rng.uniform(*stride), 0.0, np.zeros((0, 3))
        )

    def draw(self, scene: _Scene, state, index, rng):
        t = float(index)
        img = scene.canvas.copy()
        w = scene.weather
        # clouds drift over the sky, their shadows sweep over the ground (both with time)
        rows = scene.sky.shape[0]
        cover = w.clouds(scene.xs[:rows], scene.ys[:rows], t) * scene.sky
        img[:rows] += (w.cloud - img[:rows]) * cover[..., None]
        if w.shadow > 0:
            img *= w.shade(scene.lit_x, scene.lit_z, t)[..., None]
        frame = np.clip(img, 0, 255).astype(np.uint8)
        # the flag and the mover, the further first, hidden by what stands before them
        things = [
            (scene.path.z(state["near"]), lambda im: _draw_mover(im, scene, state["near"], t)),
            (scene.flag.z, lambda im: _draw_flag(im, scene, state["flag"], t)),
        ]
        for z, draw in sorted(things, key=lambda q: -q[0]):
            layer = frame.copy()
            x0, y0, x1, y1 = draw(layer)  # where it may have drawn
            x0, y0 = max(int(x0), 0), max(int(y0), 0)
            x1, y1 = min(int(x1) + 1, frame.shape[1]), min(int(y1) + 1, frame.shape[0])
            if x1 > x0 and y1 > y0:
                old, new = frame[y0:y1, x0:x1], layer[y0:y1, x0:x1]
                show = np.any(old != new, axis=2) & (scene.occlusion[y0:y1, x0:x1] > z)
                old[show] = new[show]
        # the camera: the mast's vibration through a rolling shutter, the lens's bow
        lens = scene.lens
        height, width = lens.ddx.shape
        rows = t + lens.readout * np.arange(height, dtype=np.float32)[:, None] / height
        tx, ty, roll = (o.astype(np.float32) for o in lens.offsets(rows))
        cos, sin = np.cos(roll), np.sin(roll)
        map_x = lens.centre[0] + cos * lens.ddx - sin * lens.ddy + tx
        map_y = lens.centre[1] + sin * lens.ddx + cos * lens.ddy + ty
        out = cv2.remap(
            frame,
            map_x.astype(np.float32),
            map_y.astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        ).astype(np.float32)
        # the sensor: a fixed column pattern, hot pixels, noise drawn for every frame
        out *= lens.columns.T[..., None]
        out.reshape(-1, 3)[lens.hot] += lens.hot_add
        out += lens.sigma * rng.standard_normal(out.shape, dtype=np.float32)
        return np.clip(out, 0, 255).astype(np.uint8)


OUTDOORS = Outdoors()
