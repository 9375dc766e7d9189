"""`tabletop`: a hand pushes a thing across a table or opens a lid; a hand-held phone, WMV2 (.avi).

Kept out of tuning: written after `outdoors`, before any recipe ran on it; used for reporting
only (docs/training.md).

Like the Something-Something videos: a phone held over a table, looking straight down or at a
steep angle (up to 24 degrees off vertical, 34-46 cm away; everything is drawn in perspective
from centimetres), films one hand doing something to a thing on the table. The action is
local: the hand and its thing cover a part of the picture, the table, its texture and its
clutter the rest. Appearances: the table, drawn anew for every video: a wooden table (planks,
grain, knots, a window's sheen in the varnish), a desk (papers covered with lines of text, a
keyboard at the edge of the view, a pen, sticky notes, a mouse), a kitchen counter (tiles and
grout or speckled stone; a cutting board, fruit, a knife, a tea towel) or a tablecloth
(gingham, stripes, dots or plaid, with folds and creases; a plate, a napkin, a glass, a salt
shaker); colours, textures and places random, the clutter kept clear of the action.
Variables: a hand holding a cup, a box or a ball from above (a claw: fingers over its top
and down its far side, the thumb down its near side) or a flat hand on a book pushes it
across the table (`push_right`: left -> right, `push_left`: back; the thing turns a little as
it goes; the grip is the same whichever way it moves, so pushed backwards the hand pulls and
no single frame tells the direction), and a hand pinching the free edge of a lid hinged on a
box, a tin or a notebook's cover opens it (`open`: shut -> open to 95-175 degrees, `close`:
back; the box's inside or the notebook's first page shows as it opens). There is one hand: it
holds the lid when the lid moves and the pushed thing otherwise (still videos included); the
other thing waits where its variable holds it, and the phone is aimed at what the hand does.
A moving variable eases in and out a little (slower at the ends) over the whole video. The
hand and arm are capsules lit as rounded bodies, the nearest shown (the back of the hand's
bones and knuckles, finger joints, nails, the thumb; a forearm bare or in a sleeve, sometimes
a watch), creases darker where parts meet; a right or a left hand to match the side the arm
comes in from (the bottom or a side of the frame); skin tone and size random. The hand is
drawn once per video and carried in each frame by the turn, scale and shift that follow what
it holds (the pushed thing's top, or the lid's free edge rising towards the phone), its arm
and its shadow with it; everything casts soft shadows from one light. Per video the table,
the things (kind, size, colours), the hand, the light, the layout, the camera and its
pipeline, length (32-72 frames) and frame rate (30 fps, or 15 as a phone does in low light)
are random. The phone: a slow drift (any direction) and a smooth wander of a few pixels with
a small roll and zoom; autofocus breathing (blur varying smoothly and, now and then, a hunt:
periodic, from a random phase, so tied neither to the action nor to time's direction); the
far table blurred by the depth of field; auto-exposure and white balance drifting, metering
the frame; a vignette; motion blur on the hand and what it holds while they move (symmetric
along the motion); sensor noise growing with the light, drawn for every frame; the phone's
sharpening. Frames are portrait, 144x256 (the model's centre crop keeps the middle 144x144:
the scene is scaled and aimed so that the hand and its things stay inside it, only the arm
comes in from outside), written with WMV2 (Windows Media Video 8) in .avi.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from training.synthetic.base import STILL, Encoding, Generator, hue

MARGIN = 16  # canvas pixels beyond the frame on each side, for the camera's wander
SUB = 4  # fractional bits of the drawing coordinates (sub-pixel placement)
NEAR = 6.0  # cm: nothing is drawn nearer the camera (an arm reaching past it is cut there)
SPRITE = 0.34  # how far round the canvas a sprite (hand, arm) is drawn, share of the square
SAFE = 0.83  # how far from the centre the action may reach, share of the square's half side
MIDDLE = 26.0  # the frame index at which the camera's slow drift passes its middle
UP = np.array([0.0, 0.0, 1.0])


# --- drawing helpers ---------------------------------------------------------------------


def _fx(uv) -> np.ndarray:
    """Points (..., 2) in the drawing functions' fixed-point coordinates (SUB fractional bits)."""
    return np.round(np.asarray(uv, np.float64) * (1 << SUB)).astype(np.int32)


def _c(colour) -> tuple[float, float, float]:
    return tuple(float(c) for c in np.clip(colour, 0, 255))


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _left(a) -> np.ndarray:
    """The horizontal direction to the left of horizontal direction `a` (image y points down)."""
    return np.array([a[1], -a[0]])


def _xyz(xy, z) -> np.ndarray:
    return np.array([xy[0], xy[1], z], np.float64)


def _ring(n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(a), np.sin(a)], 1)


def _turn(points, angle: float) -> np.ndarray:
    """2-D points (or the xy of 3-D ones) turned by `angle` about the origin."""
    c, s = np.cos(angle), np.sin(angle)
    p = np.array(points, np.float64)
    x, y = p[..., 0].copy(), p[..., 1].copy()
    p[..., 0], p[..., 1] = c * x - s * y, s * x + c * y
    return p


def _noise(rng, cells: int, size: int = 64) -> np.ndarray:
    """Smooth random noise on a size x size tile that wraps round at its edges, unit std."""
    small = rng.normal(0, 1, (cells, cells)).astype(np.float32)
    big = cv2.resize(np.tile(small, (3, 3)), (3 * size, 3 * size), interpolation=cv2.INTER_CUBIC)
    out = big[size : 2 * size, size : 2 * size]
    return (out - out.mean()) / max(float(out.std()), 1e-6)


def _at(noise: np.ndarray, x, y) -> np.ndarray:
    """`noise` at (x, y) measured in tiles, wrapping round (x and y: 2-D arrays)."""
    n = noise.shape[0]
    mx = np.mod(x * n, n).astype(np.float32)
    my = np.mod(y * n, n).astype(np.float32)
    return cv2.remap(noise, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _band(d, half, px):
    """1 within `half` of a line (d: distance to it), smoothed over a pixel's footprint `px`."""
    return np.clip((half - np.abs(d)) / px + 0.5, 0.0, 1.0)


# --- camera and light --------------------------------------------------------------------


@dataclass
class _Camera:
    f: float  # focal length, pixels
    centre: np.ndarray  # (2,) canvas point on the optical axis
    pos: np.ndarray  # (3,) cm, above the table (z = 0)
    axes: np.ndarray  # (3, 3): rows right, down and forward, in table coordinates

    def project(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Canvas (x, y) and depth (cm) of 3-D points (..., 3)."""
        d = (np.asarray(points, np.float64) - self.pos) @ self.axes.T
        z = np.maximum(d[..., 2], 1e-3)
        return self.centre + self.f * d[..., :2] / z[..., None], z

    def depth(self, points) -> np.ndarray:
        return (np.asarray(points, np.float64) - self.pos) @ self.axes[2]

    def ground(self, u, v):
        """Table (x, y) and depth of what canvas point (u, v) sees (arrays)."""
        right, down, forward = self.axes
        du, dv = (u - self.centre[0]) / self.f, (v - self.centre[1]) / self.f
        dirs = [right[k] * du + down[k] * dv + forward[k] for k in range(3)]
        t = -self.pos[2] / dirs[2]  # the depth, as the forward component is 1
        return self.pos[0] + t * dirs[0], self.pos[1] + t * dirs[1], t

    def on(self, points) -> np.ndarray:
        """Canvas (x, y) of 3-D points."""
        return self.project(points)[0]


@dataclass
class _Light:
    to: np.ndarray  # (3,) unit vector towards the light
    slant: np.ndarray  # (2,) shadow offset on the table per cm of height
    shadow: float  # how much a shadow darkens (0-1)
    soft: float  # shadow blur, pixels
    ambient: float
    diffuse: float

    def shade(self, normal) -> float:
        return self.ambient + self.diffuse * max(float(np.dot(_unit(normal), self.to)), 0.0)

    def cast(self, points) -> np.ndarray:
        """Where 3-D points' shadows fall on the table (z = 0)."""
        p = np.array(points, np.float64)
        p[..., :2] += p[..., 2:3] * self.slant
        p[..., 2] = 0.0
        return p


# --- a sheet: where a frame's moving things are drawn -------------------------------------


class _Sheet:
    """Premultiplied colour and coverage over a box of the canvas: first polygons (uint8,
    anti-aliased), then float patches composited over them."""

    def __init__(self, box, shape):
        h, w = shape
        x0, y0, x1, y1 = box
        self.x0, self.y0 = int(np.clip(np.floor(x0), 0, w)), int(np.clip(np.floor(y0), 0, h))
        self.x1, self.y1 = int(np.clip(np.ceil(x1), 0, w)), int(np.clip(np.ceil(y1), 0, h))
        size = (max(self.y1 - self.y0, 1), max(self.x1 - self.x0, 1))
        self.colour8 = np.zeros((*size, 3), np.uint8)
        self.alpha8 = np.zeros(size, np.uint8)
        self.colour: np.ndarray | None = None
        self.alpha: np.ndarray | None = None

    @property
    def origin(self) -> np.ndarray:
        return np.array([self.x0, self.y0], np.float64)

    def poly(self, uv, colour):
        pts = [_fx(np.asarray(uv) - self.origin)]
        cv2.fillPoly(self.colour8, pts, _c(colour), cv2.LINE_AA, SUB)
        cv2.fillPoly(self.alpha8, pts, 255, cv2.LINE_AA, SUB)

    def line(self, uv, colour, width: float):
        pts = [_fx(np.asarray(uv) - self.origin)]
        w = max(int(round(width)), 1)
        cv2.polylines(self.colour8, pts, False, _c(colour), w, cv2.LINE_AA, SUB)
        cv2.polylines(self.alpha8, pts, False, 255, w, cv2.LINE_AA, SUB)

    def floats(self):
        if self.colour is None:
            self.colour = self.colour8.astype(np.float32)
            self.alpha = self.alpha8.astype(np.float32) / 255

    def over(self, colour: np.ndarray, cover: np.ndarray, x0: int = 0, y0: int = 0):
        """Lay `colour` (not premultiplied) with coverage `cover` at sheet pixel (x0, y0)."""
        self.floats()
        h, w = cover.shape
        a = cover[..., None]
        region = self.colour[y0 : y0 + h, x0 : x0 + w]
        region *= 1 - a
        region += colour * a
        self.alpha[y0 : y0 + h, x0 : x0 + w] *= 1 - cover
        self.alpha[y0 : y0 + h, x0 : x0 + w] += cover

    def onto(self, img: np.ndarray):
        """Composite onto the canvas."""
        self.floats()
        region = img[self.y0 : self.y1, self.x0 : self.x1]
        region *= _three(1 - self.alpha)
        region += self.colour


def _three(a: np.ndarray) -> np.ndarray:
    """An (h, w) array repeated as (h, w, 3) (faster than numpy's broadcasting of a last axis
    of 1)."""
    return cv2.merge([a, a, a])


def _streak(motion) -> np.ndarray | None:
    """A motion-blur kernel: a line as long as `motion`, centred (the same either way)."""
    length = float(np.hypot(*motion))
    if length < 0.6:
        return None
    size = 2 * int(np.ceil(length / 2)) + 3
    kernel = np.zeros((size, size), np.uint8)
    c = np.array([(size - 1) / 2, (size - 1) / 2])
    half = np.asarray(motion, np.float64) / 2
    cv2.line(kernel, tuple(_fx(c - half)), tuple(_fx(c + half)), 255, 1, cv2.LINE_AA, SUB)
    kernel = kernel.astype(np.float32)
    return kernel / max(float(kernel.sum()), 1e-6)


def _box_of(points_uv, pad: float) -> tuple[float, float, float, float]:
    p = np.asarray(points_uv, np.float64).reshape(-1, 2)
    return p[:, 0].min() - pad, p[:, 1].min() - pad, p[:, 0].max() + pad, p[:, 1].max() + pad


def _union(*boxes):
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


# --- the hand and arm: rounded capsules, nearest wins --------------------------------------


@dataclass
class _Capsule:
    a: np.ndarray  # (3,) cm
    b: np.ndarray
    ra: float  # radius at a, cm
    rb: float
    flat: float  # height of the cross-section over its half-width (1: round)
    colour: np.ndarray
    group: int  # parts of one group meet without a crease
    nail: bool = False
    bands: tuple = ()  # (from, to, colour): a stretch along it in another colour (a sleeve)


@dataclass
class _Hand:
    size: float  # 1: an average adult's
    skin: np.ndarray
    nail: np.ndarray
    sleeve: np.ndarray | None
    cuff: float  # where the sleeve ends, share of the way from wrist to elbow
    watch: np.ndarray | None
    thumb: int  # +1: a right hand (palm down, the thumb left of the fingers' direction)
    arm: np.ndarray  # (2,) horizontal direction from the hand to the elbow
    elbow: float  # the elbow's height, cm

    @property
    def rf(self) -> np.ndarray:
        """Finger radii, index to little."""
        return np.array([0.85, 0.87, 0.82, 0.72]) * self.size

    @property
    def lengths(self) -> np.ndarray:
        return np.array([7.0, 7.8, 7.3, 5.9]) * self.size


@dataclass
class _Pose:
    """Where a hand's joints are (3-D, cm)."""

    wrist: np.ndarray
    knuckles: np.ndarray  # middle of the knuckle line
    fingers: list  # per finger (knuckle, middle joint, tip)
    thumb: tuple  # (base, joint, tip)
    elbow: np.ndarray


def _arm(hand: _Hand, pose: _Pose) -> list[_Capsule]:
    """The arm and hand as capsules: forearm (a sleeve, a watch band), upper arm, the back of
    the hand (its bones fanning out from the wrist to the knuckles), the fingers' joints, the
    thumb."""
    s, skin = hand.size, hand.skin
    wrist, elbow, knuckles = pose.wrist, pose.elbow, pose.knuckles
    shoulder = elbow + _xyz(hand.arm * 24 * s, 14.0)
    bands = []
    if hand.watch is not None:
        length = float(np.linalg.norm(elbow - wrist))
        bands.append((1.2 * s / length, 3.0 * s / length, hand.watch))
    if hand.sleeve is not None:
        bands.append((hand.cuff, 1.01, hand.sleeve))
    upper = skin if hand.sleeve is None else hand.sleeve
    start = wrist + _unit(elbow - wrist) * 1.8 * s  # its round end reaches the wrist
    caps = [
        _Capsule(start, elbow, 2.4 * s, 3.4 * s, 0.8, skin, 0, bands=tuple(bands)),
        _Capsule(elbow, shoulder, 3.5 * s, 4.6 * s, 0.85, upper, 1),
    ]
    axis = knuckles - wrist
    caps.append(
        _Capsule(wrist + axis * 0.25, knuckles - axis * 0.25, 2.3 * s, 2.5 * s, 0.4, skin, 2)
    )
    for i, (k, m, t) in enumerate(pose.fingers):
        r = hand.rf[i]
        root = wrist + (k - knuckles) * 0.45 - UP * 0.2 * s
        caps.append(_Capsule(root, k, 1.2 * s, 1.1 * r, 0.6, skin, 2))  # a bone, its knuckle
        caps.append(_Capsule(k, m, r, 0.95 * r, 1.0, skin, 4 + i))
        caps.append(_Capsule(m, t, 0.95 * r, 0.8 * r, 1.0, skin, 4 + i, nail=True))
    base, joint, tip = pose.thumb
    caps.append(_Capsule(base, joint, 1.3 * s, 1.0 * s, 0.9, skin, 3))
    caps.append(_Capsule(joint, tip, 1.0 * s, 0.85 * s, 1.0, skin, 3, nail=True))
    return caps


def _clip_near(cam: _Camera, caps: list[_Capsule]) -> list[_Capsule]:
    """Cut capsules at NEAR cm from the camera (the arm may reach past it)."""
    out = []
    for cap in caps:
        za, zb = cam.depth(cap.a), cam.depth(cap.b)
        if za < NEAR and zb < NEAR:
            continue
        a, b, ra, rb, bands = cap.a, cap.b, cap.ra, cap.rb, cap.bands
        if zb < NEAR:  # keep the share k from a
            k = (za - NEAR) / (za - zb)
            b, rb = a + (b - a) * k, ra + (rb - ra) * k
            bands = tuple((t0 / k, t1 / k, c) for t0, t1, c in bands)
        elif za < NEAR:  # keep the share k towards b
            k = (zb - NEAR) / (zb - za)
            a, ra = b + (a - b) * k, rb + (ra - rb) * k
            bands = tuple(((t0 - 1 + k) / k, (t1 - 1 + k) / k, c) for t0, t1, c in bands)
        out.append(_Capsule(a, b, ra, rb, cap.flat, cap.colour, cap.group, cap.nail, bands))
    return out


def _reach(cam: _Camera, caps: list[_Capsule]) -> np.ndarray:
    """Canvas (x0, y0, x1, y1) of each capsule."""
    ends = np.array([[c.a, c.b] for c in caps])
    uv, z = cam.project(ends)
    r = cam.f * np.array([[c.ra, c.rb] for c in caps]) / z + 1.5
    return np.stack(
        [
            (uv[..., 0] - r).min(1),
            (uv[..., 1] - r).min(1),
            (uv[..., 0] + r).max(1),
            (uv[..., 1] + r).max(1),
        ],
        1,
    )


def _draw_hand(sheet: _Sheet, cam: _Camera, caps: list[_Capsule], light: _Light, nail):
    """The capsules as one lit body: each pixel shows the capsule nearest the camera (its
    cross-section's normal lit by the light), a sleeve or a watch band along the forearm,
    nails at the fingertips; where two parts meet (a finger and the back of the hand, two
    fingers, the sleeve and the wrist) a crease darkens."""
    sheet.floats()
    h, w = sheet.alpha.shape
    best = np.full((h, w), -1e9, np.float32)
    second = best.copy()  # the nearest part of another group
    group = np.full((h, w), -1, np.int32)
    colour = np.zeros((h, w, 3), np.float32)
    cover = np.zeros((h, w), np.float32)
    lx, ly, lz = light.to
    nail = np.asarray(nail, np.float32)
    boxes = _reach(cam, caps) - [*sheet.origin, *sheet.origin]
    for cap, (x0, y0, x1, y1) in zip(caps, boxes, strict=True):
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        x1, y1 = min(int(x1) + 2, w), min(int(y1) + 2, h)
        if x1 <= x0 or y1 <= y0:
            continue
        (ua, va), za = cam.project(cap.a)
        (ub, vb), zb = cam.project(cap.b)
        ua, va, ub, vb = ua - sheet.x0, va - sheet.y0, ub - sheet.x0, vb - sheet.y0
        xs = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(ua)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(va)
        ex, ey = np.float32(ub - ua), np.float32(vb - va)
        l2 = max(float(ex * ex + ey * ey), 1e-6)
        t = np.clip((xs * ex + ys * ey) / np.float32(l2), 0.0, 1.0)
        px, py = xs - t * ex, ys - t * ey
        d = np.sqrt(px * px + py * py)
        r = np.float32(cam.f * cap.ra / za) + np.float32(cam.f * (cap.rb / zb - cap.ra / za)) * t
        cov = np.clip(r - d + 0.5, 0.0, 1.0)
        x = np.minimum(d / r, 0.985)
        bulge = np.sqrt(1 - x * x)
        radius = np.float32(cap.ra) + np.float32(cap.rb - cap.ra) * t
        height = radius * np.float32(cap.flat) * bulge - (np.float32(za) + np.float32(zb - za) * t)
        height -= (cov <= 0) * np.float32(1e9)
        slope = np.float32(cap.flat) * x / bulge
        inv = 1 / np.sqrt(1 + slope * slope)
        dd = np.maximum(d, 1e-3)
        lam = np.clip(((px * lx + py * ly) / dd * slope * inv + inv * lz + 0.25) / 1.25, 0, 1)
        shade = (light.ambient + light.diffuse * lam)[..., None]
        col = np.asarray(cap.colour, np.float32) * shade + (28 * lam**12)[..., None]  # sheen
        along = np.sqrt(l2) + 1
        for start, end, other in cap.bands:
            m = np.clip((t - start) * along, 0, 1) * np.clip((end - t) * along, 0, 1)
            col += (np.asarray(other, np.float32) * shade - col) * m[..., None]
        if cap.nail:
            m = np.clip((0.6 - x) / 0.15, 0, 1) * np.clip((t - 0.45) / 0.12, 0, 1)
            col += (nail * shade - col) * (0.75 * m)[..., None]
        b_, s_, g_ = best[y0:y1, x0:x1], second[y0:y1, x0:x1], group[y0:y1, x0:x1]
        win = height > b_
        other = g_ != cap.group
        s_[:] = np.where(win, np.where(other, b_, s_), np.where(other, np.maximum(s_, height), s_))
        b_[win] = height[win]
        g_[win] = cap.group
        colour[y0:y1, x0:x1][win] = col[win]
        np.maximum(cover[y0:y1, x0:x1], cov, out=cover[y0:y1, x0:x1])
    colour *= (1 - 0.3 * np.exp(-(((best - second) / 0.25) ** 2)))[..., None]  # creases
    sheet.over(colour, cover)


def _hand_shadow(mask: np.ndarray, cam: _Camera, caps: list[_Capsule], light: _Light):
    ends = light.cast(np.array([[c.a, c.b] for c in caps]))
    uv, z = cam.project(ends)
    widths = cam.f * np.array([c.ra + c.rb for c in caps]) / z.sum(1)
    for (a, b), width in zip(_fx(uv), widths, strict=True):
        cv2.line(mask, tuple(a), tuple(b), 255, max(int(2 * width), 1), cv2.LINE_AA, SUB)


# --- the thing pushed --------------------------------------------------------------------


@dataclass
class _Thing:
    kind: str  # cup, box, ball, book
    dims: np.ndarray  # cup (R, H); box and book (w, d, h); ball (R,)
    top: float  # height of its top, cm
    footprint: np.ndarray  # (k, 2) convex outline about its centre, unturned
    colours: dict
    handle: float  # the cup's handle: its angle
    pattern: int  # the ball's pattern, the book cover's


def _thing(rng) -> _Thing:
    kind = ("cup", "box", "ball", "book")[int(rng.integers(4))]
    colours = {"body": hue(rng, 30, 235), "second": hue(rng, 30, 235)}
    if kind == "cup":
        R, H = rng.uniform(3.4, 4.3), rng.uniform(7.5, 10.0)
        colours["inside"] = colours["body"] if rng.random() < 0.5 else hue(rng, 200, 250, 0.8)
        colours["drink"] = rng.choice(
            [[30, 55, 90], [60, 110, 160], [190, 215, 230]]
        ) * rng.uniform(0.7, 1.1, 3)
        return _Thing(kind, np.array([R, H]), H, R * _ring(24), colours, rng.uniform(0, 6.3), 0)
    if kind == "ball":
        R = rng.uniform(3.0, 4.0)
        return _Thing(kind, np.array([R]), 2 * R, R * _ring(24), colours, 0.0, int(rng.integers(3)))
    if kind == "box":
        w, d, h = rng.uniform(6, 10), rng.uniform(5, 8), rng.uniform(3.5, 7)
    else:
        w, d, h = rng.uniform(11, 14), rng.uniform(8, 10.5), rng.uniform(1.5, 3.0)
        colours["pages"] = np.array([215.0, 232, 240]) * rng.uniform(0.85, 1.02)
    corners = np.array([[-w, -d], [w, -d], [w, d], [-w, d]]) / 2
    return _Thing(kind, np.array([w, d, h]), h, corners, colours, 0.0, int(rng.integers(3)))


def _outline(thing: _Thing, c, rot) -> np.ndarray:
    return _turn(thing.footprint, rot) + c


def _exit(thing: _Thing, c, rot, a, b, s: float) -> float:
    """How far from `c + b s` along `a` the thing's outline is (convex outline, s clamped)."""
    rel = _turn(thing.footprint, rot)
    lateral = rel @ b
    o = b * np.clip(s, 0.85 * lateral.min(), 0.85 * lateral.max())
    edge = np.roll(rel, -1, 0) - rel
    normal = np.stack([edge[:, 1], -edge[:, 0]], 1)
    normal *= np.where((normal * rel).sum(1) < 0, -1.0, 1.0)[:, None]  # outward
    along = normal @ a
    ok = along > 1e-9
    return max(float((((normal * (rel - o)).sum(1))[ok] / along[ok]).min()), 0.0)


def _thing_points(thing: _Thing, c, rot) -> np.ndarray:
    """3-D points that bound the thing (for fitting the view, boxes and shadows)."""
    ring = _outline(thing, c, rot)
    if thing.kind == "cup":
        ring = np.concatenate([ring, c + _turn([[thing.dims[0] + 2.6, 0.0]], rot + thing.handle)])
    low = np.column_stack([ring, np.zeros(len(ring))])
    high = np.column_stack([ring, np.full(len(ring), thing.top)])
    return np.concatenate([low, high])


def _thing_shadow(mask, cam: _Camera, thing: _Thing, c, rot, light: _Light):
    pts = _thing_points(thing, c, rot)
    if thing.kind == "ball":
        R = thing.dims[0]
        centre = light.cast(_xyz(c, R))
        pts = np.column_stack([c + R * _ring(16), np.zeros(16)])
        pts = np.concatenate([pts, centre + np.column_stack([R * _ring(16), np.zeros(16)])])
    uv = cam.project(light.cast(pts))[0]
    hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2)
    cv2.fillPoly(mask, [_fx(hull)], 255, cv2.LINE_AA, SUB)


def _draw_thing(sheet: _Sheet, cam: _Camera, thing: _Thing, c, rot, light: _Light):
    col = thing.colours
    if thing.kind == "ball":
        _draw_ball(sheet, cam, thing, c, rot, light)
        return
    if thing.kind == "cup":
        _draw_cup(sheet, cam, thing, c, rot, light)
        return
    w, d, h = thing.dims
    ring = _outline(thing, c, rot)
    low = np.column_stack([ring, np.zeros(4)])
    high = np.column_stack([ring, np.full(4, h)])
    uv_low, uv_high = cam.project(low)[0], cam.project(high)[0]
    body = col["body"]
    hull = cv2.convexHull(np.concatenate([uv_low, uv_high]).astype(np.float32)).reshape(-1, 2)
    sheet.poly(hull, body * light.ambient)
    centre = _xyz(c, h / 2)
    for k in range(4):
        j = (k + 1) % 4
        normal = _xyz(_unit((ring[k] + ring[j]) / 2 - c), 0.0)
        if np.dot(normal, cam.pos - centre) <= 0:
            continue
        face = np.array([uv_low[k], uv_low[j], uv_high[j], uv_high[k]])
        side = body
        if thing.kind == "book" and k != 3:  # three sides show the pages
            side = col["pages"]
        sheet.poly(face, side * light.shade(normal))
        if thing.kind == "book" and k != 3:
            for f in (0.3, 0.55, 0.8):
                a = low[k] + (high[k] - low[k]) * f
                b = low[j] + (high[j] - low[j]) * f
                sheet.line(cam.project(np.array([a, b]))[0], side * 0.8 * light.shade(normal), 1)
    lit = light.shade(UP)
    sheet.poly(uv_high, body * lit)

    def on_top(x0, y0, x1, y1, colour):  # a rectangle on the top, in shares of w and d
        pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) - 0.5
        pts = _turn(pts * [w, d], rot) + c
        sheet.poly(cam.project(np.column_stack([pts, np.full(4, h + 0.01)]))[0], colour * lit)

    if thing.kind == "box":
        if thing.pattern == 0:  # tape along the top
            on_top(0.0, 0.42, 1.0, 0.58, np.array([150.0, 190, 215]) * 0.9)
        elif thing.pattern == 1:  # a label
            on_top(0.15, 0.2, 0.65, 0.55, np.array([235.0, 238, 240]))
            on_top(0.2, 0.28, 0.55, 0.33, col["second"] * 0.6)
        else:  # a ribbon
            on_top(0.45, 0.0, 0.55, 1.0, col["second"])
            on_top(0.0, 0.45, 1.0, 0.55, col["second"])
    else:
        on_top(0.1, 0.12, 0.9, 0.35 + 0.1 * thing.pattern, col["second"])
        on_top(0.2, 0.2, 0.7, 0.24, np.array([240.0, 240, 240]))
        if thing.pattern == 2:
            on_top(0.3, 0.55, 0.7, 0.85, col["second"] * 0.7)


def _draw_cup(sheet: _Sheet, cam: _Camera, thing: _Thing, c, rot, light: _Light):
    R, H = thing.dims
    col = thing.colours
    n = 24
    ring = R * _ring(n)
    ring = _turn(ring, rot) + c
    low = np.column_stack([ring, np.zeros(n)])
    high = np.column_stack([ring, np.full(n, H)])
    uv_low, uv_high = cam.project(low)[0], cam.project(high)[0]
    body = col["body"]
    # the handle: a loop on one side, behind the cup or in front of it
    out = _turn(np.array([1.0, 0.0]), rot + thing.handle)
    side = _xyz(c + out * R, H * 0.5)
    taus = np.linspace(0, np.pi, 9)
    loop = np.array(
        [_xyz(c + out * (R - 0.2 + 2.3 * np.sin(u)), H * (0.5 + 0.3 * np.cos(u))) for u in taus]
    )
    loop_uv, loop_z = cam.project(loop)
    width = cam.f * 0.6 / loop_z.mean()
    handle_colour = body * light.shade(_xyz(out, 0.3))
    near = np.dot(_xyz(out, 0.0), cam.pos - side) > 0
    if not near:
        sheet.line(loop_uv, handle_colour, width)
    hull = cv2.convexHull(np.concatenate([uv_low, uv_high]).astype(np.float32)).reshape(-1, 2)
    sheet.poly(hull, body * light.ambient)
    for k in range(n):
        j = (k + 1) % n
        normal = _xyz((ring[k] + ring[j]) / 2 - c, 0.0)
        if np.dot(normal, cam.pos - _xyz((ring[k] + ring[j]) / 2, H / 2)) <= 0:
            continue
        sheet.poly(
            np.array([uv_low[k], uv_low[j], uv_high[j], uv_high[k]]), body * light.shade(normal)
        )
    if near:
        sheet.line(loop_uv, handle_colour, width)
    lit = light.shade(UP)
    sheet.poly(uv_high, np.minimum(body * 1.08 + 12, 255) * lit)  # the rim
    inner = (R - 0.35) * _ring(n)
    inner = _turn(inner, rot) + c
    mouth = cam.project(np.column_stack([inner, np.full(n, H)]))[0]
    sheet.poly(mouth, col["inside"] * light.ambient * 0.95)
    level = H * 0.72
    drink = cam.project(np.column_stack([inner * 0.98 + c * 0.02, np.full(n, level)]))[0]
    area, seen = cv2.intersectConvexConvex(mouth.astype(np.float32), drink.astype(np.float32))
    if area > 0 and seen is not None:
        sheet.poly(seen.reshape(-1, 2), col["drink"] * lit)


def _draw_ball(sheet: _Sheet, cam: _Camera, thing: _Thing, c, rot, light: _Light):
    R = thing.dims[0]
    (u, v), z = cam.project(_xyz(c, R))
    r = cam.f * R / z
    u, v = u - sheet.x0, v - sheet.y0
    h, w = sheet.alpha8.shape
    x0, x1 = max(int(u - r - 2), 0), min(int(u + r + 3), w)
    y0, y1 = max(int(v - r - 2), 0), min(int(v + r + 3), h)
    if x1 <= x0 or y1 <= y0:
        return
    xs = (np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(u)) / np.float32(r)
    ys = (np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(v)) / np.float32(r)
    dd = np.sqrt(xs * xs + ys * ys)
    cover = np.clip((1 - dd) * r + 0.5, 0.0, 1.0)
    nz = np.sqrt(np.clip(1 - dd * dd, 0.0, 1.0))
    nx, ny = xs, ys
    lx, ly, lz = light.to
    lam = np.clip(nx * lx + ny * ly + nz * lz, 0.0, 1.0)
    # the pattern, in the ball's own frame (it turns with the ball, it does not roll)
    cr, sr = np.cos(-rot), np.sin(-rot)
    ax, ay = cr * nx - sr * ny, sr * nx + cr * ny
    if thing.pattern == 0:  # a band round it
        mark = np.abs(ay) < 0.22
    elif thing.pattern == 1:  # segments, like a beach ball
        mark = np.mod(np.arctan2(ay, ax) * 3 / np.pi, 2) < 1
    else:  # a seam
        mark = np.abs(ay - 0.35 * np.sin(3 * np.arctan2(nz, ax))) < 0.05
    base = np.where(mark[..., None], thing.colours["second"], thing.colours["body"])
    colour = base * (light.ambient + light.diffuse * lam)[..., None]
    colour += (90 * lam**30)[..., None]
    sheet.over(colour.astype(np.float32), cover.astype(np.float32), x0, y0)


# --- the lidded thing ---------------------------------------------------------------------


@dataclass
class _Lidded:
    kind: str  # box, tin, notebook
    hinge: np.ndarray  # (3,) the middle of the hinge, on top of the base
    eu: np.ndarray  # (3,) along the hinge
    ev: np.ndarray  # (3,) from the hinge across the base, in the table's plane
    width: float  # along eu, cm
    depth: float  # along ev
    base: float  # height of the base
    thick: float  # of the lid
    wall: float  # of the base's walls (0: a solid base, the notebook's pages)
    over: float  # how far the lid overhangs the base
    max_angle: float  # radians
    outside: np.ndarray  # float32 BGR textures, rows along ev, columns along eu
    inside: np.ndarray
    colours: dict

    def angle(self, v: float) -> float:
        return self.max_angle * float(np.clip((v - 0.08) / 0.86, 0.0, 1.0))

    def frame(self, theta: float):
        """The lid's outward direction (hinge -> free edge) and its outer normal."""
        out = self.ev * np.cos(theta) + UP * np.sin(theta)
        return out, -self.ev * np.sin(theta) + UP * np.cos(theta)

    def corners(self, theta: float):
        """The lid's underside and top (each (4, 3): hinge-left, hinge-right, free-right,
        free-left) and its outer normal."""
        out, normal = self.frame(theta)
        hw = self.width / 2 + self.over
        s0, s1 = -self.over, self.depth + self.over
        under = np.array(
            [
                self.hinge + self.eu * u + out * s
                for u, s in ((-hw, s0), (hw, s0), (hw, s1), (-hw, s1))
            ]
        )
        return under, under + normal * self.thick, normal

    def edge(self, theta: float):
        """The middle of the lid's free edge (mid-thickness), its outward direction, normal."""
        out, normal = self.frame(theta)
        g = self.hinge + out * (self.depth + self.over) + normal * self.thick / 2
        return g, out, normal

    def footprint(self) -> np.ndarray:
        hw = self.width / 2
        o = self.hinge - UP * self.base
        return np.array(
            [
                o - self.eu * hw,
                o + self.eu * hw,
                o + self.eu * hw + self.ev * self.depth,
                o - self.eu * hw + self.ev * self.depth,
            ]
        )

    def points(self) -> np.ndarray:
        """3-D points bounding the thing as its lid opens."""
        pts = [self.footprint(), self.footprint() + UP * self.base]
        for theta in np.linspace(0, self.max_angle, 5):
            pts += list(self.corners(theta)[:2])
        return np.concatenate(pts)


def _texture(rng, kind: str, w: float, d: float, colours: dict, outside: bool) -> np.ndarray:
    """A lid's face as a float32 BGR image, 8 pixels a cm (rows along ev, columns along eu)."""
    tw, th = max(int(w * 8), 8), max(int(d * 8), 8)
    img = np.empty((th, tw, 3), np.float32)
    v, u = np.mgrid[0:th, 0:tw].astype(np.float32)
    v, u = (v + 0.5) / th, (u + 0.5) / tw
    if not outside:
        img[:] = colours["lining"]
        if kind == "notebook":  # the inside of the cover: plain board
            img *= 1 + 0.03 * rng.normal(0, 1, (th, tw, 1)).astype(np.float32)
        return img
    img[:] = colours["lid"]
    if kind == "box":
        style = int(rng.integers(3))
        if style == 0:  # cardboard with a printed label
            img *= 1 + 0.04 * rng.normal(0, 1, (th, tw, 1)).astype(np.float32)
            label = (np.abs(u - 0.5) < 0.28) & (np.abs(v - 0.45) < 0.18)
            img[label] = colours["print"]
            img[label & (np.abs(v - 0.42) < 0.03)] = colours["print"] * 0.4
        elif style == 1:  # a gift box with a ribbon
            ribbon = (np.abs(u - 0.5) < 0.06) | (np.abs(v - 0.5) < 0.08)
            img[ribbon] = colours["print"]
        else:  # a wooden box: grain and a border
            grain = np.sin(2 * np.pi * (v * rng.uniform(6, 12) + 0.3 * np.sin(7 * u)))
            img *= (1 + 0.07 * grain)[..., None]
            border = np.minimum(np.minimum(u, 1 - u), np.minimum(v, 1 - v)) < 0.06
            img[border] *= 0.8
    elif kind == "tin":
        sheen = 1 + 0.25 * np.exp(-(((u - rng.uniform(0.2, 0.8)) / 0.15) ** 2))
        img *= sheen[..., None]
        disc = ((u - 0.5) * w) ** 2 + ((v - 0.5) * d) ** 2 < (0.3 * min(w, d)) ** 2
        img[disc] = colours["print"]
        rim = np.minimum(np.minimum(u, 1 - u), np.minimum(v, 1 - v)) < 0.05
        img[rim] = colours["lid"] * 0.75
    else:  # a notebook's cover: a label, maybe an elastic band
        img *= 1 + 0.05 * _noise(rng, 6, 32)[(v * 31).astype(int), (u * 31).astype(int)][..., None]
        label = (np.abs(u - 0.5) < 0.3) & (np.abs(v - 0.3) < 0.1)
        img[label] = np.array([235.0, 240, 245])
        if rng.random() < 0.5:
            img[np.abs(v - 0.86) < 0.03] = colours["print"] * 0.5
    return np.clip(img, 0, 255)


def _lidded(rng) -> _Lidded:
    kind = ("box", "tin", "notebook")[int(rng.integers(3))]
    colours = {"lid": hue(rng, 40, 230, 0.2), "print": hue(rng, 20, 240)}
    if kind == "box":
        w, d, base = rng.uniform(8, 11), rng.uniform(5.5, 7.5), rng.uniform(3.0, 5.0)
        thick, wall, over, top = rng.uniform(0.5, 0.9), 0.45, 0.2, rng.uniform(95, 118)
        if rng.random() < 0.35:  # cardboard
            colours["lid"] = np.array([95.0, 145, 185]) * rng.uniform(0.8, 1.1)
        colours["lining"] = hue(rng, 60, 240, 0.3)
        colours["walls"] = colours["lid"] * rng.uniform(0.85, 1.0)
        colours["floor"] = colours["lining"] * 0.85
    elif kind == "tin":
        w, d, base = rng.uniform(7.5, 10), rng.uniform(5, 7), rng.uniform(1.8, 2.6)
        thick, wall, over, top = 0.35, 0.15, 0.1, rng.uniform(95, 112)
        colours["lining"] = np.array([195.0, 195, 200]) * rng.uniform(0.85, 1.05)
        colours["walls"] = colours["lid"] * 0.9
        colours["floor"] = colours["lining"] * 0.9
    else:
        w, d, base = rng.uniform(10, 12.5), rng.uniform(7, 9), rng.uniform(0.8, 1.5)
        thick, wall, over, top = 0.25, 0.0, 0.15, rng.uniform(150, 175)
        colours["lining"] = np.array([225.0, 232, 238]) * rng.uniform(0.85, 1.0)
        colours["walls"] = np.array([215.0, 230, 240]) * rng.uniform(0.85, 1.0)
        colours["floor"] = np.array([238.0, 244, 248]) * rng.uniform(0.88, 1.0)
        colours["ink"] = rng.choice([[120, 40, 20], [40, 40, 40], [60, 50, 160]]).astype(float)
    return _Lidded(
        kind=kind,
        hinge=np.zeros(3),
        eu=np.array([1.0, 0.0, 0.0]),
        ev=np.array([0.0, 1.0, 0.0]),
        width=w,
        depth=d,
        base=base,
        thick=thick,
        wall=wall,
        over=over,
        max_angle=np.radians(top),
        outside=_texture(rng, kind, w + 2 * over, d + 2 * over, colours, True),
        inside=_texture(rng, kind, w + 2 * over, d + 2 * over, colours, False),
        colours=colours,
    )


def _lid_shadow(mask, cam: _Camera, lid: _Lidded, theta: float, light: _Light):
    """The base's and the lid's shadow on the table."""
    under, top, _ = lid.corners(theta)
    pts = np.concatenate([lid.footprint(), lid.footprint() + UP * lid.base, top])
    uv = cam.project(light.cast(pts))[0]
    hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2)
    cv2.fillPoly(mask, [_fx(hull)], 255, cv2.LINE_AA, SUB)


def _inner_shadow(mask, cam: _Camera, lid: _Lidded, theta: float, light: _Light):
    """The lid's shadow inside the base (on its floor)."""
    under, _, _ = lid.corners(theta)
    p = np.array(under, np.float64)
    floor = lid.base * 0.1
    p[:, :2] += (p[:, 2:3] - floor) * light.slant
    p[:, 2] = floor
    uv = cam.project(p)[0]
    hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2)
    cv2.fillPoly(mask, [_fx(hull)], 255, cv2.LINE_AA, SUB)


def _draw_lid(sheet: _Sheet, cam: _Camera, lid: _Lidded, theta: float, light: _Light):
    under, top, normal = lid.corners(theta)
    uv_under, uv_top = cam.project(under)[0], cam.project(top)[0]
    edge = lid.colours["lid"] * 0.8
    centre = top.mean(0)
    for k in range(4):  # the lid's edges, then the face the camera sees
        j = (k + 1) % 4
        mid = (under[k] + under[j]) / 2
        outward = mid - under.mean(0)
        sheet.poly(
            np.array([uv_under[k], uv_under[j], uv_top[j], uv_top[k]]), edge * light.shade(outward)
        )
    seen_outside = np.dot(normal, cam.pos - centre) > 0
    face, uv = (lid.outside, uv_top) if seen_outside else (lid.inside, uv_under)
    lit = light.shade(normal if seen_outside else -normal)
    th, tw = face.shape[:2]
    src = np.float32([[0, 0], [tw, 0], [tw, th], [0, th]]) - 0.5
    dst = (uv - sheet.origin).astype(np.float32)
    warp = cv2.getPerspectiveTransform(src, dst)
    size = (sheet.alpha8.shape[1], sheet.alpha8.shape[0])
    colour = cv2.warpPerspective(face * lit, warp, size, flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.ones((th, tw), np.float32), warp, size, flags=cv2.INTER_LINEAR)
    sheet.over(colour, cover)


def _draw_base(img, on_table, inside, cam: _Camera, lid: _Lidded, light: _Light, rng):
    """The lidded thing's base on the canvas (uint8), with where shadows fall (uint8 masks):
    `on_table` loses the base, `inside` gains its inside."""
    col = lid.colours
    foot = lid.footprint()
    rim = foot + UP * lid.base
    uv_foot, uv_rim = cam.on(foot), cam.on(rim)
    hull = cv2.convexHull(np.concatenate([uv_foot, uv_rim]).astype(np.float32)).reshape(-1, 2)
    cv2.fillPoly(on_table, [_fx(hull)], 0, cv2.LINE_AA, SUB)
    centre = (foot.mean(0) + rim.mean(0)) / 2
    walls = col["walls"]
    for k in range(4):
        j = (k + 1) % 4
        outward = (foot[k] + foot[j]) / 2 - foot.mean(0)
        if np.dot(outward, cam.pos - centre) <= 0:
            continue
        face = np.array([uv_foot[k], uv_foot[j], uv_rim[j], uv_rim[k]])
        side = walls  # a notebook: pages on three sides, the spine at the hinge (k = 0)
        if lid.kind == "notebook" and k == 0:
            side = col["lid"] * 0.9
        cv2.fillPoly(img, [_fx(face)], _c(side * light.shade(outward)), cv2.LINE_AA, SUB)
        if lid.kind == "notebook" and k != 0:
            for f in np.linspace(0.2, 0.8, 4):
                a, b = foot[k] + UP * lid.base * f, foot[j] + UP * lid.base * f
                line = cam.on(np.array([a, b]))
                cv2.polylines(img, [_fx(line)], False, _c(side * 0.8), 1, cv2.LINE_AA, SUB)
    lit = light.shade(UP)
    cv2.fillPoly(img, [_fx(uv_rim)], _c(walls * 1.05 * lit), cv2.LINE_AA, SUB)
    if lid.wall <= 0:  # a notebook: the first page, lined and written on
        cv2.fillPoly(img, [_fx(uv_rim)], _c(col["floor"] * lit), cv2.LINE_AA, SUB)
        o, eu, ev = foot[0] + UP * lid.base, lid.eu, lid.ev
        for s in np.arange(1.2, lid.depth - 0.5, 0.62):
            a, b = o + ev * s + eu * 0.4, o + ev * s + eu * (lid.width - 0.4)
            cv2.polylines(
                img, [_fx(cam.on(np.array([a, b])))], False, (200, 170, 150), 1, cv2.LINE_AA, SUB
            )
            if rng.random() < 0.8 and s < lid.depth * 0.8:  # a line of handwriting
                x = np.linspace(0.8, rng.uniform(3, lid.width - 0.8), 14)
                y = s - 0.15 - 0.18 * np.abs(np.sin(x * rng.uniform(3, 6)))
                pts = o + np.outer(x, eu) + np.outer(y, ev)
                cv2.polylines(img, [_fx(cam.on(pts))], False, _c(col["ink"]), 1, cv2.LINE_AA, SUB)
        return
    # a box or tin: the rim, the inside walls the camera sees, the floor, what lies there
    o = foot[0] + UP * lid.base
    eu, ev = lid.eu, lid.ev
    opening = np.array(
        [
            o + eu * lid.wall + ev * lid.wall,
            o + eu * (lid.width - lid.wall) + ev * lid.wall,
            o + eu * (lid.width - lid.wall) + ev * (lid.depth - lid.wall),
            o + eu * lid.wall + ev * (lid.depth - lid.wall),
        ]
    )
    floor = opening - UP * (lid.base * 0.9)
    uv_open, uv_floor = cam.on(opening), cam.on(floor)
    cv2.fillPoly(img, [_fx(uv_open)], _c(col["lining"] * light.ambient * 0.9), cv2.LINE_AA, SUB)
    cv2.fillPoly(inside, [_fx(uv_open)], 255, cv2.LINE_AA, SUB)
    mid = opening.mean(0)
    for k in range(4):
        j = (k + 1) % 4
        inward = mid - (opening[k] + opening[j]) / 2
        face = np.array([uv_open[k], uv_open[j], uv_floor[j], uv_floor[k]])
        _fill_seen(img, face, uv_open, col["lining"] * light.shade(inward) * 0.85)
    _fill_seen(img, uv_floor, uv_open, col["floor"] * lit * 0.9)
    things = int(rng.integers(0, 7)) if lid.kind == "tin" else int(rng.integers(0, 3))
    sweet = hue(rng, 150, 250, 0.6) if rng.random() < 0.5 else hue(rng, 40, 140)
    for _ in range(things):  # mints or sweets in a tin, a trinket or two in a box
        r = rng.uniform(0.6, 0.9) if lid.kind == "tin" else rng.uniform(0.8, 1.6)
        x = rng.uniform(lid.wall + r, lid.width - lid.wall - r)
        y = rng.uniform(lid.wall + r, lid.depth - lid.wall - r)
        p = floor[0] - eu * lid.wall - ev * lid.wall + eu * x + ev * y
        disc = np.column_stack(
            [p[0] + r * _ring(12)[:, 0], p[1] + r * _ring(12)[:, 1], np.full(12, p[2] + 0.3)]
        )
        colour = sweet if lid.kind == "tin" else hue(rng, 30, 240)
        _fill_seen(img, cam.on(disc), uv_open, colour * lit)


def _fill_seen(img, polygon, window, colour) -> None:
    """Fill the part of convex `polygon` (image points) seen through convex `window`."""
    area, seen = cv2.intersectConvexConvex(
        np.asarray(polygon, np.float32), np.asarray(window, np.float32)
    )
    if area > 0 and seen is not None:
        cv2.fillPoly(img, [_fx(seen.reshape(-1, 2))], _c(colour), cv2.LINE_AA, SUB)


# --- the table and its clutter ------------------------------------------------------------


def _table(appearance: str, rng, X, Y, px) -> np.ndarray:
    """The table's surface at table points (X, Y) (cm), `px` cm a pixel: float32 BGR."""
    alpha = rng.uniform(-0.35, 0.35) + (np.pi / 2 if rng.random() < 0.5 else 0.0)
    p = X * np.cos(alpha) + Y * np.sin(alpha)
    q = -X * np.sin(alpha) + Y * np.cos(alpha)
    shape = X.shape
    if appearance == "wood":
        palette = np.array(
            [
                [95, 150, 200],
                [45, 75, 110],
                [120, 180, 225],
                [60, 95, 160],
                [150, 165, 175],
                [35, 48, 65],
            ],
            np.float32,
        )
        base = palette[int(rng.integers(len(palette)))] * rng.uniform(0.85, 1.1) + rng.uniform(
            -8, 8, 3
        )
        pw = rng.uniform(9, 18)
        j = np.floor(q / pw)
        tones = (1 + rng.normal(0, 0.07, 64)).astype(np.float32)
        shifts = rng.uniform(0, 200, 64).astype(np.float32)
        jj = np.mod(j, 64).astype(int)
        wave = _noise(rng, 6)
        fine = _noise(rng, 12)
        qi = q - j * pw
        phase = qi * rng.uniform(0.8, 1.6) + 2.2 * _at(
            wave, (p + shifts[jj]) / 60, qi / 20 + jj / 7
        )
        lines = (0.5 + 0.5 * np.sin(2 * np.pi * phase)) ** 6
        streak = _at(fine, p / 40 + jj / 5, q / 1.2)
        shade = tones[jj] * (1 - 0.2 * lines + 0.05 * streak)
        length = rng.uniform(60, 160)
        joint = _band(np.abs(np.mod(p + shifts[jj], length) - length / 2) - length / 2, 0.12, px)
        gap = _band(np.abs(qi - pw / 2) - pw / 2, 0.15, px)
        shade *= 1 - 0.45 * np.maximum(gap, joint)
        for _ in range(int(rng.integers(0, 4))):  # knots
            kp, kq = rng.uniform(-30, 30), rng.uniform(-40, 40)
            r = np.sqrt(((p - kp) / 2.5) ** 2 + (q - kq) ** 2)
            shade *= 1 - 0.35 * np.exp(-r / 0.6) - 0.08 * np.exp(-r / 2.5) * np.sin(r * 5) ** 2
        sx, sy, size = rng.uniform(-25, 25), rng.uniform(-35, 35), rng.uniform(8, 20)
        sheen = rng.uniform(8, 30) * np.exp(-((X - sx) ** 2 + (Y - sy) ** 2) / (2 * size**2))
        img = base[None, None, :] * shade[..., None] + sheen[..., None]  # a window in the varnish
    elif appearance == "desk":
        base = np.full(3, rng.uniform(200, 240)) + rng.uniform(-8, 8, 3)
        speck, cloud = _noise(rng, 40), _noise(rng, 5)
        shade = 1 + 0.012 * _at(speck, X / 8, Y / 8) + 0.02 * _at(cloud, X / 80, Y / 80)
        img = base[None, None, :].astype(np.float32) * shade[..., None]
    elif appearance == "counter":
        if rng.random() < 0.7:  # tiles and grout
            size = rng.uniform(7, 15)
            long = size * (2 if rng.random() < 0.35 else 1)  # subway tiles, rows offset
            row = np.floor(q / size)
            pp = p + np.mod(row, 2) * long / 2 * (long > size)
            col = np.floor(pp / long)
            tile = np.array(
                [
                    [235, 235, 235],
                    [200, 225, 235],
                    [150, 90, 40],
                    [90, 140, 60],
                    [60, 60, 60],
                    [70, 110, 190],
                    [160, 200, 205],
                ],
                np.float32,
            )[int(rng.integers(7))] * rng.uniform(0.85, 1.05)
            grout = np.full(
                3, rng.choice([rng.uniform(180, 225), rng.uniform(60, 110)]), np.float32
            )
            tones = (1 + rng.normal(0, 0.035, (32, 32))).astype(np.float32)
            tone = tones[np.mod(row, 32).astype(int), np.mod(col, 32).astype(int)]
            glaze = _noise(rng, 10)
            g = rng.uniform(0.15, 0.28)
            du = np.abs(pp - (col + 0.5) * long) - long / 2
            dv = np.abs(q - (row + 0.5) * size) - size / 2
            line = np.maximum(_band(du, g, px), _band(dv, g, px))
            surface = tile * (tone * (1 + 0.025 * _at(glaze, p / 20, q / 20)))[..., None]
            img = surface * (1 - line[..., None]) + grout * line[..., None]
        else:  # speckled stone
            base = hue(rng, 40, 200, 0.6)
            a, b, cloud = _noise(rng, 48), _noise(rng, 48), _noise(rng, 6)
            dark = np.clip((_at(a, X / 9, Y / 9) - 1.1) / 0.3, 0, 1)
            light = np.clip((_at(b, X / 9, Y / 9) - 1.3) / 0.3, 0, 1)
            shade = 1 + 0.06 * _at(cloud, X / 60, Y / 60)
            img = base[None, None, :] * (shade * (1 - 0.6 * dark))[..., None]
            img = img * (1 - 0.7 * light[..., None]) + 165 * light[..., None]
    else:  # a tablecloth
        c1, c2 = hue(rng, 30, 220), np.array([235.0, 238, 240]) * rng.uniform(0.88, 1.0)
        if rng.random() < 0.3:
            c2 = hue(rng, 150, 240, 0.5)
        style = int(rng.integers(4))
        if style == 0:  # gingham
            w = rng.uniform(1.0, 2.8)
            a = _band(np.mod(p, 2 * w) - w / 2, w / 2, px)
            b = _band(np.mod(q, 2 * w) - w / 2, w / 2, px)
            k = (0.5 * (a + b))[..., None]
            img = c2 * (1 - k) + c1 * k
        elif style == 1:  # stripes
            w = rng.uniform(0.6, 2.5)
            c3 = hue(rng, 30, 220)
            m = np.mod(q / w, 5)
            a = _band(m - 1.0, 0.6, px / w)[..., None]
            b = _band(m - 3.2, 0.3, px / w)[..., None]
            img = c2 * (1 - a - b) + c1 * a + c3 * b
        elif style == 2:  # dots
            s, r = rng.uniform(2.2, 4.0), rng.uniform(0.3, 0.75)
            row = np.floor(q / s)
            pp = p + np.mod(row, 2) * s / 2
            d = np.hypot(pp - (np.floor(pp / s) + 0.5) * s, q - (row + 0.5) * s)
            k = _band(d, r, px)[..., None]
            img = c2 * (1 - k) + c1 * k
        else:  # plaid
            img = np.broadcast_to(c2, (*shape, 3)).astype(np.float32)
            for _ in range(3):
                c, w, s = hue(rng, 30, 220), rng.uniform(0.4, 1.5), rng.uniform(5, 9)
                off = rng.uniform(0, s)
                a = _band(np.mod(p + off, s) - w / 2, w / 2, px)
                b = _band(np.mod(q + off, s) - w / 2, w / 2, px)
                img = img * (1 - 0.45 * a[..., None]) + c * 0.45 * a[..., None]
                img = img * (1 - 0.45 * b[..., None]) + c * 0.45 * b[..., None]
        folds = _noise(rng, 5)
        shade = 1 + 0.07 * _at(folds, X / 50, Y / 50)
        for _ in range(int(rng.integers(1, 3))):  # creases from being folded
            a = rng.uniform(0, np.pi)
            d = X * np.cos(a) + Y * np.sin(a) - rng.uniform(-20, 20)
            shade += 0.06 * np.tanh(d / 0.4) * np.exp(-np.abs(d) / 1.5)
        img = img * shade[..., None]
    return np.ascontiguousarray(img, np.float32)


def _far_from(point, zones, radius: float) -> bool:
    """Whether a disc at `point` keeps clear of every zone (capsules: a, b, radius)."""
    for a, b, r in zones:
        e = b - a
        t = np.clip(np.dot(point - a, e) / max(np.dot(e, e), 1e-9), 0, 1)
        if np.linalg.norm(point - a - t * e) < r + radius:
            return False
    return True


def _disc(c, r, z, n=20) -> np.ndarray:
    return np.column_stack([c[0] + r * _ring(n)[:, 0], c[1] + r * _ring(n)[:, 1], np.full(n, z)])


def _rect(c, w, d, angle, z) -> np.ndarray:
    pts = _turn(np.array([[-w, -d], [w, -d], [w, d], [-w, d]]) / 2, angle) + c
    return np.column_stack([pts, np.full(4, z)])


def _clutter(appearance: str, rng, zones, area) -> list:
    """What lies on the table, away from the action: (kind, table xy, seed of its looks)."""
    if appearance == "wood":
        items = [(5.0, "coaster"), (7.0, "pen"), (8.0, "phone"), (4.0, "fruit")]
        items = [items[i] for i in sorted(rng.choice(4, int(rng.integers(1, 4)), replace=False))]
    elif appearance == "desk":
        items = [(14.0, "paper") for _ in range(int(rng.integers(1, 4)))]
        items += [(0.0, "keyboard"), (4.5, "note"), (7.0, "pen"), (6.0, "mouse")]
    elif appearance == "counter":
        items = [(12.0, "towel"), (14.0, "board"), (9.0, "knife")]
        items += [(4.0, "fruit") for _ in range(int(rng.integers(1, 4)))]
    else:
        items = [(9.0, "napkin"), (12.0, "plate"), (2.5, "shaker"), (4.0, "glass")]
        items = [items[i] for i in sorted(rng.choice(4, int(rng.integers(2, 5)), replace=False))]
    out, placed = [], []
    for radius, kind in items:  # flat things first, tall ones last
        if kind == "keyboard":  # along the far or the near edge of the view
            y = area[1] + rng.uniform(0, 6) if rng.random() < 0.5 else area[3] - rng.uniform(0, 6)
            out.append((kind, np.array([rng.uniform(-8, 8), y]), int(rng.integers(2**31))))
            continue
        for _ in range(40):
            c = np.array([rng.uniform(area[0], area[2]), rng.uniform(area[1], area[3])])
            if _far_from(c, zones, radius * 0.8) and all(
                np.linalg.norm(c - q) > 0.7 * (radius + r) for q, r in placed
            ):
                placed.append((c, radius))
                out.append((kind, c, int(rng.integers(2**31))))
                break
    return out


def _poly(img, cam, pts, colour):
    cv2.fillPoly(img, [_fx(cam.on(pts))], _c(colour), cv2.LINE_AA, SUB)


def _thing_on_table(kind, rng, img, shade, cam: _Camera, light: _Light, c):
    if kind == "keyboard":
        _keyboard(rng, img, shade, cam, light, c)
        return
    angle = rng.uniform(0, np.pi)
    lit = light.shade(UP)

    def shadow(pts):
        uv = cam.on(light.cast(pts))
        hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2)
        cv2.fillPoly(shade, [_fx(hull)], 255, cv2.LINE_AA, SUB)

    if kind == "paper":
        w, d = (21.0, 29.7) if rng.random() < 0.6 else (14.8, 21.0)
        sheet = _rect(c, w, d, angle, 0.05)
        _poly(img, cam, sheet, np.array([246.0, 248, 250]) * rng.uniform(0.93, 1.0) * lit)
        ink = rng.uniform(60, 130)
        y = -d / 2 + rng.uniform(2, 3.5)
        while y < d / 2 - 2:  # lines of text, word by word
            x = -w / 2 + 2.2
            end = w / 2 - 2.2 - (rng.uniform(0, w * 0.6) if rng.random() < 0.2 else 0)
            while x < end:
                n = rng.uniform(0.6, 2.6)
                a, b = _turn(np.array([[x, y], [min(x + n, end), y]]), angle) + c
                pts = np.array([[*a, 0.06], [*b, 0.06]])
                cv2.polylines(
                    img, [_fx(cam.on(pts))], False, _c(np.full(3, ink)), 1, cv2.LINE_AA, SUB
                )
                x += n + 0.35
            y += rng.choice([0.6, 0.6, 0.6, 1.4])
    elif kind == "note":
        colour = np.array(
            rng.choice([[120, 240, 250], [200, 160, 250], [160, 240, 170], [240, 200, 140]]), float
        )
        for k in range(int(rng.integers(1, 4))):
            note = _rect(
                c + rng.normal(0, 0.3, 2), 7.6, 7.6, angle + rng.normal(0, 0.1), 0.05 + 0.02 * k
            )
            _poly(img, cam, note, colour * lit * (0.96 + 0.04 * k))
    elif kind == "pen":
        a = _turn(np.array([[-7.0, 0.0], [7.0, 0.0]]), angle) + c
        pts = np.array([[*a[0], 0.45], [*a[1], 0.45]])
        shadow(pts)
        uv = cam.on(pts)
        width = 2 * cam.f * 0.45 / cam.depth(pts).mean()
        colour = hue(rng, 20, 230)
        cv2.polylines(img, [_fx(uv)], False, _c(colour * lit), max(int(width), 1), cv2.LINE_AA, SUB)
        cap = uv[0] + (uv[1] - uv[0]) * 0.22
        cv2.polylines(
            img,
            [_fx(np.array([uv[0], cap]))],
            False,
            _c(colour * 0.5),
            max(int(width), 1),
            cv2.LINE_AA,
            SUB,
        )
        cv2.polylines(
            img,
            [_fx(uv + np.array([0.0, -width * 0.2]))],
            False,
            _c(np.minimum(colour * lit + 60, 255)),
            1,
            cv2.LINE_AA,
            SUB,
        )
    elif kind == "phone":
        shadow(_rect(c, 7.2, 15, angle, 0.8))
        _poly(img, cam, _rect(c, 7.2, 15, angle, 0.8), np.array([30.0, 30, 30]))
        _poly(img, cam, _rect(c, 6.6, 14, angle, 0.81), hue(rng, 20, 70, 0.6) * lit)
    elif kind == "coaster":
        r = rng.uniform(4.5, 5.5)
        shadow(_disc(c, r, 0.4))
        colour = hue(rng, 40, 200, 0.5)
        _poly(img, cam, _disc(c, r, 0.4), colour * lit)
        _poly(img, cam, _disc(c, r * 0.8, 0.41), colour * 0.85 * lit)
    elif kind == "fruit":
        r = rng.uniform(3.0, 4.0)
        colour = np.array(
            rng.choice([[40, 40, 190], [60, 170, 110], [30, 140, 240], [40, 210, 235]]), float
        )
        shadow(_disc(c, r, r))
        for k, f in enumerate(np.linspace(1.0, 0.25, 5)):  # rings brighter towards the light
            centre = c + light.to[:2] * r * (1 - f) * 0.6
            _poly(
                img,
                cam,
                _disc(centre, r * f, 2 * r * (0.8 + 0.2 * (1 - f))),
                colour * (0.55 + 0.12 * k),
            )
        stem = np.array([[*c, 2 * r], [*(c + rng.normal(0, 0.6, 2)), 2 * r + 0.4]])
        cv2.polylines(img, [_fx(cam.on(stem))], False, (30, 60, 90), 2, cv2.LINE_AA, SUB)
    elif kind == "mouse":
        pts = _rect(c, 6.0, 10.5, angle, 3.0)
        shadow(pts)
        colour = hue(rng, 20, 220, 0.8)
        outline = _turn(_ring(20) * [3.0, 5.2], angle) + c
        _poly(img, cam, np.column_stack([outline, np.full(20, 1.0)]), colour * 0.6)  # its sides
        _poly(img, cam, np.column_stack([outline, np.full(20, 3.0)]), colour * lit)
        a = _turn(np.array([[0.0, -5.2], [0.0, -1.5]]), angle) + c
        cv2.polylines(
            img,
            [_fx(cam.on(np.column_stack([a, [3.05, 3.05]])))],
            False,
            _c(colour * 0.5),
            1,
            cv2.LINE_AA,
            SUB,
        )
    elif kind == "board":
        w, d, h = rng.uniform(24, 34), rng.uniform(16, 22), rng.uniform(1.2, 2.0)
        top = _rect(c, w, d, angle, h)
        shadow(np.concatenate([top, _rect(c, w, d, angle, 0)]))
        if rng.random() < 0.6:
            colour = np.array([100.0, 160, 205]) * rng.uniform(0.7, 1.1)
        else:
            colour = np.array(rng.choice([[235, 235, 235], [90, 170, 90], [60, 60, 200]]), float)
        hull = cv2.convexHull(
            cam.on(np.concatenate([top, _rect(c, w, d, angle, 0)])).astype(np.float32)
        ).reshape(-1, 2)
        cv2.fillPoly(img, [_fx(hull)], _c(colour * 0.7), cv2.LINE_AA, SUB)
        _poly(img, cam, top, colour * lit)
        for _ in range(int(rng.integers(5, 15))):  # knife marks
            a = rng.uniform(-0.4, 0.4, 2) * [w, d]
            b = a + rng.normal(0, 3, 2)
            seg = _turn(np.array([a, b]), angle) + c
            cv2.polylines(
                img,
                [_fx(cam.on(np.column_stack([seg, [h, h]])))],
                False,
                _c(colour * 0.85 * lit),
                1,
                cv2.LINE_AA,
                SUB,
            )
        hole = _turn(np.array([[w / 2 - 2.5, 0.0]]), angle)[0] + c
        _poly(img, cam, _disc(hole, 1.0, h), colour * 0.4)
    elif kind == "towel":
        w, d = rng.uniform(28, 40), rng.uniform(18, 26)
        colour = np.array([235.0, 238, 240]) * rng.uniform(0.85, 1.0)
        stripe = hue(rng, 30, 220)
        _poly(img, cam, _rect(c, w, d, angle, 0.3), colour * lit)
        for k in range(int(rng.integers(1, 4))):
            off = _turn(np.array([[0.0, -d / 2 + 2 + 1.5 * k]]), angle)[0]
            _poly(img, cam, _rect(c + off, w, 0.8, angle, 0.31), stripe * lit)
    elif kind == "knife":
        blade = _turn(np.array([[-1.0, -0.9], [10.0, -0.3], [11.5, 0.4], [-1.0, 0.9]]), angle) + c
        grip = _turn(np.array([[-11.0, -0.9], [-1.0, -0.9], [-1.0, 0.9], [-11.0, 0.9]]), angle) + c
        shadow(np.column_stack([np.concatenate([blade, grip]), np.full(8, 1.0)]))
        _poly(
            img, cam, np.column_stack([blade, np.full(4, 0.4)]), np.array([205.0, 205, 210]) * lit
        )
        _poly(img, cam, np.column_stack([grip, np.full(4, 1.0)]), hue(rng, 20, 90, 0.5) * lit)
    elif kind == "plate":
        r = rng.uniform(9.5, 12.5)
        shadow(_disc(c, r, 1.5, 28))
        colour = (
            np.array([245.0, 245, 245]) * rng.uniform(0.85, 1.0)
            if rng.random() < 0.7
            else hue(rng, 60, 230, 0.3)
        )
        _poly(img, cam, _disc(c, r, 1.5, 28), colour * lit)
        _poly(img, cam, _disc(c, r * 0.7, 0.7, 28), colour * lit * 0.93)
        if rng.random() < 0.5:  # a coloured line round the rim
            rim = cam.on(_disc(c, r * 0.88, 1.2, 28))
            cv2.polylines(img, [_fx(rim)], True, _c(hue(rng, 30, 200)), 2, cv2.LINE_AA, SUB)
    elif kind == "napkin":
        s = rng.uniform(12, 18)
        colour = hue(rng, 90, 245, 0.4)
        _poly(img, cam, _rect(c, s, s, angle, 0.4), colour * lit)
        fold = _turn(np.array([[-s / 2, s / 2], [s / 2, -s / 2]]), angle) + c
        cv2.polylines(
            img,
            [_fx(cam.on(np.column_stack([fold, [0.41, 0.41]])))],
            False,
            _c(colour * 0.8),
            1,
            cv2.LINE_AA,
            SUB,
        )
    elif kind == "glass":
        r = rng.uniform(3.0, 3.8)
        h = rng.uniform(9, 13)
        shadow(np.concatenate([_disc(c, r, 0), _disc(c, r, h)]) * [1, 1, 0.25])
        rim, foot = cam.on(_disc(c, r, h)), cam.on(_disc(c, r, 0.3))
        hull = cv2.convexHull(np.concatenate([rim, foot]).astype(np.float32)).reshape(-1, 2)
        layer = img.copy()
        cv2.fillPoly(layer, [_fx(hull)], (245, 245, 245), cv2.LINE_AA, SUB)
        cv2.addWeighted(layer, 0.18, img, 0.82, 0, dst=img)
        cv2.polylines(img, [_fx(rim)], True, (235, 235, 235), 2, cv2.LINE_AA, SUB)
        cv2.polylines(img, [_fx(foot)], True, (200, 200, 200), 1, cv2.LINE_AA, SUB)
    elif kind == "shaker":
        r, h = rng.uniform(1.6, 2.2), rng.uniform(6, 8)
        shadow(np.concatenate([_disc(c, r, 0), _disc(c, r, h)]))
        body = np.concatenate([cam.on(_disc(c, r, 0)), cam.on(_disc(c, r, h))])
        hull = cv2.convexHull(body.astype(np.float32)).reshape(-1, 2)
        glass = np.array([215.0, 220, 225]) if rng.random() < 0.5 else np.array([60.0, 60, 60])
        cv2.fillPoly(img, [_fx(hull)], _c(glass * 0.8), cv2.LINE_AA, SUB)
        _poly(img, cam, _disc(c, r, h), np.array([200.0, 200, 205]) * lit)


def _keyboard(rng, img, shade, cam: _Camera, light: _Light, c):
    """A keyboard (at the far or near edge of the view, partly in it)."""
    angle = rng.uniform(-0.12, 0.12)
    w, d, h = rng.uniform(36, 44), rng.uniform(12, 15), 2.0
    dark = rng.random() < 0.6
    body = np.array([40.0, 40, 42]) if dark else np.array([215.0, 215, 218])
    key = body * (1.3 if dark else 1.05)
    top, low = _rect(c, w, d, angle, h), _rect(c, w, d, angle, 0)
    uv = cam.on(light.cast(np.concatenate([top, low])))
    cv2.fillPoly(
        shade, [_fx(cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2))], 255, cv2.LINE_AA, SUB
    )
    hull = cv2.convexHull(cam.on(np.concatenate([top, low])).astype(np.float32)).reshape(-1, 2)
    cv2.fillPoly(img, [_fx(hull)], _c(body * 0.7), cv2.LINE_AA, SUB)
    lit = light.shade(UP)
    _poly(img, cam, top, body * lit)
    pitch = 1.9
    for r in range(6):
        yy = -d / 2 + 1.2 + r * pitch
        x = -w / 2 + 1.0
        while x < w / 2 - 2.5:
            kw = 1.5 if rng.random() > 0.08 else 3.3
            pts = (
                _turn(np.array([[x, yy], [x + kw, yy], [x + kw, yy + 1.5], [x, yy + 1.5]]), angle)
                + c
            )
            _poly(img, cam, np.column_stack([pts, np.full(4, h + 0.4)]), key * lit)
            x += kw + 0.4


# --- the phone's camera -------------------------------------------------------------------


@dataclass
class _Phone:
    drift: np.ndarray  # (2,) pixels a frame, either way
    sway: np.ndarray  # (4, k, 3): x, y (pixels), roll (radians), zoom: amplitude, period, phase
    focus: np.ndarray  # blur: base, breathing amplitude, period, phase; hunts: size, period,
    # phase, width
    shutter: float  # share of a frame's time the shutter is open (motion blur)
    exposure: np.ndarray  # amplitude, period, phase
    balance: np.ndarray  # (3, 3) per channel: amplitude, period, phase
    metering: tuple[float, float]  # target mean, strength
    vignette: np.ndarray  # (h, w, 3)
    tint: np.ndarray  # (3,) the light's colour as the phone leaves it
    noise: tuple[float, float]  # noise: in the dark, its growth with the light
    grain: np.ndarray  # float32 unit noise, a little larger than the frame: cropped anew each frame
    unsharp: np.ndarray  # the phone's sharpening, a 1-D kernel

    def wave(self, k: int, t: float) -> float:
        a, period, phase = self.sway[k].T
        return float(np.sum(a * np.sin(2 * np.pi * t / period + phase)))

    def blur(self, t: float) -> float:
        """The lens's blur at frame t: a slow breathing and, now and then, a hunt (both
        periodic, from a random phase: nothing about them tells time's direction)."""
        base, amp, period, phase, hunt, every, at, width = self.focus
        breath = amp * (0.5 + 0.5 * np.sin(2 * np.pi * t / period + phase))
        near = np.sin(np.pi * (t - at) / every) * every / np.pi  # frames to the nearest hunt
        return float(base + breath + hunt * np.exp(-((near / width) ** 2)))


def _gauss(sigma: float, half: int | None = None) -> np.ndarray:
    """A 1-D Gaussian kernel."""
    half = half if half is not None else max(int(np.ceil(2.5 * sigma)), 1)
    x = np.arange(-half, half + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _phone(rng, width: int, height: int) -> _Phone:
    sway = []
    for big, fast in ((2.2, 0.5), (2.2, 0.5), (0.006, 0.0015), (0.008, 0.002)):
        terms = [
            (big * rng.uniform(0.3, 1.0), rng.uniform(35, 110), rng.uniform(0, 2 * np.pi)),
            (big * rng.uniform(0.15, 0.5), rng.uniform(12, 30), rng.uniform(0, 2 * np.pi)),
            (fast * rng.uniform(0.3, 1.0), rng.uniform(3.5, 8), rng.uniform(0, 2 * np.pi)),
        ]
        sway.append(terms)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xs - width / 2) ** 2 + (ys - height / 2) ** 2) / ((width / 2) ** 2 + (height / 2) ** 2)
    vignette = np.repeat((1 - rng.uniform(0.1, 0.3) * r2)[..., None], 3, axis=2)
    hunting, every = rng.random() < 0.5, rng.uniform(80, 200)
    amount = rng.uniform(0.2, 0.6)
    return _Phone(
        drift=rng.uniform(0.0, 0.06) * np.array([np.cos(angle), np.sin(angle)]),
        sway=np.array(sway),
        focus=np.array(
            [
                rng.uniform(0.2, 0.7),
                rng.uniform(0.2, 1.0),
                rng.uniform(40, 120),
                rng.uniform(0, 2 * np.pi),
                rng.uniform(0.8, 1.8) * hunting,
                every,
                rng.uniform(0, every),
                rng.uniform(3, 7),
            ]
        ),
        shutter=rng.uniform(0.4, 1.0),
        exposure=np.array([rng.uniform(0.02, 0.07), rng.uniform(50, 160), rng.uniform(0, 7)]),
        balance=np.column_stack(
            [rng.uniform(0.01, 0.035, 3), rng.uniform(70, 220, 3), rng.uniform(0, 7, 3)]
        ),
        metering=(rng.uniform(105, 135), rng.uniform(0.2, 0.5)),
        vignette=vignette.astype(np.float32),
        tint=(1 + rng.uniform(-0.06, 0.06, 3)).astype(np.float32),
        noise=(rng.uniform(1.0, 2.2), rng.uniform(0.006, 0.016)),
        grain=rng.standard_normal((height + 24, width + 24, 3), dtype=np.float32),
        unsharp=(1 + amount) * np.eye(1, 7, 3).ravel() - amount * _gauss(1.0, 3),
    )


# --- the scene ------------------------------------------------------------------------------


@dataclass
class _Scene:
    appearance: str
    cams: dict  # the phone's view of each target ("push", "lid"): it films what the hand does
    light: _Light
    thing: _Thing
    track: tuple  # start, end (table xy, cm), turn at the middle, turn over the way
    lidded: _Lidded
    hand: _Hand
    rest: dict  # per target: the grasp point and the elbow's place when the hand is there
    clutter: list
    seeds: tuple[int, int]  # the table's looks, the lidded thing's contents
    phone: _Phone
    size: tuple[int, int]  # the frame's width, height
    backdrops: dict  # per target, once drawn: canvas, where shadows fall on the table, inside
    stage: tuple | None = None  # the backdrop with the thing the hand does not hold, once drawn
    sprites: dict = field(default_factory=dict)  # per target, once drawn: the hand
    last: tuple | None = None  # the last frame before the camera, and its state

    def place(self, v: float):
        start, end, turn, swing = self.track
        return start + (end - start) * v, turn + swing * (v - 0.5)


def _push_pose(scene: _Scene, c, rot) -> _Pose:
    """The hand holding the thing from above (the same grip whichever way it moves): a claw
    over a cup, a ball or a box, the fingers lying over its top and down its far side, the
    thumb down its near side; a flat hand on a book, fingers forward, the thumb alongside."""
    thing, hand = scene.thing, scene.hand
    s = hand.size
    mid, rest = scene.rest["push"]
    elbow = rest + _xyz(0.55 * (c - mid), 0.0)
    a = _unit(c - elbow[:2])
    b = hand.thumb * _left(a)
    top = thing.top
    rf, lengths = hand.rf, hand.lengths
    offsets = np.array([1.0, 0.34, -0.32, -0.92]) * 2.45 * s
    spread = np.array([0.12, 0.04, -0.04, -0.12])  # the fingers fan out a little
    fingers = []
    if thing.kind == "book":
        back = _exit(thing, c, rot, -a, b, 0.0)
        knuckles = _xyz(c + a * (0.35 * (_exit(thing, c, rot, a, b, 0.0) - back)), top + 1.2 * s)
        for i, o in enumerate(offsets):
            k = knuckles + _xyz(b * o, -0.2 * s)
            way = _unit(a + b * spread[i])
            m = k + _xyz(way * 0.5 * lengths[i], -0.25 * s)
            t = m + _xyz(way * 0.45 * lengths[i], -0.3 * s)
            fingers.append((k, m, t))
        wrist = knuckles - _xyz(a * 8.6 * s, -0.3 * s)
        base = wrist + _xyz(a * 2.2 * s + b * 2.2 * s, -0.4 * s)
        joint = base + _xyz((a * 0.5 + b * 0.85) * 3.2 * s, -0.1 * s)
        tip = joint + _xyz((a * 0.85 + b * 0.45) * 2.6 * s, -0.2 * s)
        return _Pose(wrist, knuckles, fingers, (base, joint, tip), elbow)
    if thing.kind == "ball":
        R = thing.dims[0]
        front = R
        knuckles = _xyz(c + a * (front - 0.45 * lengths[1]), 2 * R + 0.8 * s)
        for i, o in enumerate(offsets):
            lat = np.clip(o * 1.1, -0.85 * R, 0.85 * R)
            rr = np.sqrt(R * R - lat * lat)
            k = knuckles + _xyz(b * o * 0.9, -0.3 * s)
            m = _xyz(c + b * lat + a * rr * 0.7, R + rr * 0.71 + 0.8 * rf[i])
            t = _xyz(c + b * lat * 1.05 + a * (rr + 0.7 * rf[i]), R - 0.1 * rr)
            fingers.append((k, m, t))
        near = R
        low = R
    else:
        front = _exit(thing, c, rot, a, b, 0.0)
        knuckles = _xyz(c + a * (front - 0.45 * lengths[1]), top + 1.3 * s)
        for i, o in enumerate(offsets):
            e = _exit(thing, c, rot, a, b, o * 1.08)
            k = knuckles + _xyz(b * o, -0.25 * s)
            m = _xyz(c + b * o * 1.08 + a * (e + 0.2 * s), top + 0.8 * rf[i])
            t = _xyz(c + b * o * 1.12 + a * (e + 0.8 * rf[i]), max(top - 0.5 * lengths[i], rf[i]))
            fingers.append((k, m, t))
        near = _exit(thing, c, rot, -a, b, 1.5 * s)
        low = max(top * 0.5, s)
    wrist = knuckles - _xyz(a * 8.6 * s, -0.7 * s)
    base = wrist + _xyz(a * 2.4 * s + b * 2.2 * s, -0.7 * s)
    joint = _xyz(
        c - a * (near * 0.75) + b * 2.2 * s, top + 0.4 * s if thing.kind != "ball" else 1.6 * near
    )
    tip = _xyz(c - a * (near + 0.7 * s) + b * 1.3 * s, low)
    return _Pose(wrist, knuckles, fingers, (base, joint, tip), elbow)


def _lid_grip(scene: _Scene, theta: float):
    """The middle of the lid's free edge, the lid's outward direction and normal, where the
    elbow is, and the horizontal direction from the knuckles to the wrist."""
    g, out, normal = scene.lidded.edge(theta)
    g0, rest = scene.rest["lid"]
    elbow = rest + (g - g0) * np.array([0.5, 0.5, 0.6])
    towards = _unit(elbow - g)
    return g, out, normal, elbow, _unit(_xyz(out[:2] * 0.3 + towards[:2] * 0.7, 0.0))


def _lid_pose(scene: _Scene, theta: float) -> _Pose:
    """The hand pinching the lid's free edge: fingers on the face the camera sees, the thumb
    on the other, the palm beyond the edge."""
    lid, hand, cam = scene.lidded, scene.hand, scene.cams["lid"]
    s = hand.size
    g, out, normal, elbow, back = _lid_grip(scene, theta)
    up = normal * float(np.clip(4 * np.dot(normal, _unit(cam.pos - g)), -1, 1))
    side = hand.thumb * _xyz(_left(_unit(-back[:2] + 1e-6)), 0.0)
    lateral = lid.eu * (1.0 if np.dot(lid.eu, side) >= 0 else -1.0)
    rf, lengths = hand.rf, hand.lengths
    offsets = np.array([1.0, 0.33, -0.33, -0.95]) * 2.3 * s
    knuckles = g + back * 2.2 * s + up * 1.3 * s + UP * 0.6 * s
    fingers = []
    for i, o in enumerate(offsets):
        k = knuckles + lateral * o
        m = g + lateral * o * 1.02 - out * 0.6 * s + up * (0.5 * lid.thick + 1.1 * rf[i])
        t = (
            g
            + lateral * o * 0.95
            - out * (0.45 * lengths[i])
            + up * (0.5 * lid.thick + 0.85 * rf[i])
        )
        fingers.append((k, m, t))
    wrist = knuckles + back * 8.6 * s + UP * 0.6 * s
    base = wrist - back * 2.6 * s + lateral * 2.4 * s - up * 0.4 * s
    joint = g + back * 1.4 * s + lateral * 2.0 * s - up * (0.5 * lid.thick + 1.0 * s)
    tip = g - out * 0.5 * s + lateral * 1.2 * s - up * (0.5 * lid.thick + 0.9 * s)
    return _Pose(wrist, knuckles, fingers, (base, joint, tip), elbow)


def _aim(cam: _Camera, points):
    """Move the camera along the table so that `points` lie around the middle of the view."""
    for _ in range(3):
        d = (np.asarray(points) - cam.pos) @ cam.axes.T
        x, y = d[:, 0] / d[:, 2], d[:, 1] / d[:, 2]
        z = float(np.median(d[:, 2]))
        move = (x.min() + x.max()) / 2 * z * cam.axes[0] + (y.min() + y.max()) / 2 * z * cam.axes[1]
        cam.pos = cam.pos + move * [1.0, 1.0, 0.0]


def _fit(cam: _Camera, points, radii, limits) -> float:
    """The largest focal length at which `points` (3-D, each with a radius in cm) stay
    within `limits` pixels of the centre."""
    d = (np.asarray(points) - cam.pos) @ cam.axes.T
    z = np.maximum(d[:, 2], 1.0)
    reach = np.abs(d[:, :2]) / z[:, None] + (np.asarray(radii) / z)[:, None]
    return float((np.asarray(limits)[:, None] / reach).min())


def _backdrop(scene: _Scene, cam: _Camera):
    """The table, its clutter and the lidded thing's base as `cam` sees them, with where
    shadows fall on the table and inside the base."""
    width, height = scene.size
    W, H = width + 2 * MARGIN, height + 2 * MARGIN
    light, lid = scene.light, scene.lidded
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    X, Y, depth = (v.astype(np.float32) for v in cam.ground(xs, ys))
    looks = np.random.default_rng(scene.seeds[0])
    table = _table(scene.appearance, looks, X, Y, depth / cam.f)
    img = np.clip(table, 0, 255).astype(np.uint8)
    shade = np.zeros((H, W), np.uint8)
    for kind, c, seed in scene.clutter:
        _thing_on_table(kind, np.random.default_rng(seed), img, shade, cam, light, c)
    on_table = np.full((H, W), 255, np.uint8)
    inside = np.zeros((H, W), np.uint8)
    _draw_base(img, on_table, inside, cam, lid, light, np.random.default_rng(scene.seeds[1]))
    # the clutter's shadows; the light falls off across the table from where it comes
    shadow = cv2.GaussianBlur(shade.astype(np.float32) / 255, (0, 0), light.soft)
    on_table = on_table.astype(np.float32) / 255
    canvas = img.astype(np.float32) * (1 - light.shadow * shadow * on_table)[..., None]
    glow = 1 + looks.uniform(0.05, 0.2) * (X * light.to[0] + Y * light.to[1]) / 30
    canvas *= np.clip(glow, 0.7, 1.3)[..., None]
    # depth of field: what lies far from the focused distance is blurred
    focus = float(np.median(depth))
    spread = np.clip(np.abs(1 / depth - 1 / focus) * focus * looks.uniform(1.5, 3.5), 0, 1)[
        ..., None
    ]
    canvas = canvas * (1 - spread) + cv2.GaussianBlur(canvas, (0, 0), 1.6) * spread
    return canvas.astype(np.float32), on_table, inside.astype(np.float32) / 255


@dataclass
class _Sprite:
    """The hand and arm (and, when it pushes, what it holds) drawn once at a reference pose,
    moved each frame by the turn, scale and shift that take two of its points where they are
    now; its shadow likewise, by where those points' shadows fall."""

    image: np.ndarray  # float32 (h, w, 4): premultiplied colour and coverage
    points: np.ndarray  # (2, 2): the two points that carry it, in its pixels
    shadow: np.ndarray  # float32 (h, w, 1): the shadow on the table (0-1, blurred)
    cast: np.ndarray  # (2, 2): the two points' shadows, in its pixels


def _anchors(scene: _Scene, on_lid: bool, v: float) -> np.ndarray:
    """Two 3-D points that carry the hand (v: the push variable, or the lid's angle): the
    middle of the pushed thing's top and a point beside it (the hand turns and slides with
    the thing), or the middle of the lid's free edge and a point towards the wrist (the hand
    rises with the edge, growing as it nears the phone, and keeps its direction)."""
    if on_lid:
        g, _, _, _, back = _lid_grip(scene, v)
        return np.array([g, g + back * 5.0])
    c, rot = scene.place(v)
    return np.array([_xyz(c, scene.thing.top), _xyz(c + _turn([3.0, 0.0], rot), scene.thing.top)])


def _similar(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 map made of a turn, a scale and a shift that takes points src[0], src[1] to
    dst[0], dst[1]."""
    a, b = src[1] - src[0], dst[1] - dst[0]
    z = complex(*b) / complex(*a)  # turn and scale, as a complex factor
    m = np.array([[z.real, -z.imag], [z.imag, z.real]])
    return np.column_stack([m, dst[0] - m @ src[0]])


def _sprite(scene: _Scene, cam: _Camera, on_lid: bool) -> _Sprite:
    """Draw the hand (the arm, the thing it pushes) at a reference pose over the canvas and a
    margin round it (the arm is cut where the sprite ends)."""
    lid, light = scene.lidded, scene.light
    width, height = scene.size
    around = int(SPRITE * min(width, height))
    wide = _Camera(cam.f, cam.centre + around, cam.pos, cam.axes)
    shape = (height + 2 * (MARGIN + around), width + 2 * (MARGIN + around))
    v = lid.max_angle * 0.4 if on_lid else 0.5
    if on_lid:
        pose = _lid_pose(scene, v)
    else:
        c, rot = scene.place(v)
        pose = _push_pose(scene, c, rot)
    caps = _clip_near(wide, _arm(scene.hand, pose))
    box = _union(*[tuple(r) for r in _reach(wide, caps)])
    if not on_lid:
        box = _union(box, _box_of(wide.on(_thing_points(scene.thing, c, rot)), 3))
    sheet = _Sheet(box, shape)
    if not on_lid:
        _draw_thing(sheet, wide, scene.thing, c, rot, light)
    _draw_hand(sheet, wide, caps, light, scene.hand.nail)
    image = np.dstack([sheet.colour, sheet.alpha]).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    _hand_shadow(mask, wide, caps, light)
    if not on_lid:
        _thing_shadow(mask, wide, scene.thing, c, rot, light)
    x, y, w, h = cv2.boundingRect(mask)
    pad = int(3 * light.soft) + 2
    x0, y0 = max(x - pad, 0), max(y - pad, 0)
    shadow = cv2.GaussianBlur(
        mask[y0 : y + h + pad, x0 : x + w + pad].astype(np.float32) / 255, (0, 0), light.soft
    )
    points = wide.on(_anchors(scene, on_lid, v))
    cast = wide.on(light.cast(_anchors(scene, on_lid, v)))
    return _Sprite(
        image=image,
        points=points - sheet.origin,
        shadow=shadow[..., None],
        cast=cast - [x0, y0],
    )


def _warp(image: np.ndarray, move: np.ndarray, shape, motion):
    """`image` (h, w, n) moved onto a canvas of `shape` by the affine map `move` (its pixels
    to the canvas's) and blurred along `motion`: the canvas rows and columns it covers and
    the moved image there, or None if it falls outside."""
    h, w = image.shape[:2]
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], np.float64) @ move.T
    pad = float(np.hypot(*motion)) + 2
    x0, y0 = (max(int(np.floor(corners[:, k].min() - pad)), 0) for k in (0, 1))
    x1 = min(int(np.ceil(corners[:, 0].max() + pad)), shape[1])
    y1 = min(int(np.ceil(corners[:, 1].max() + pad)), shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    local = move.copy()
    local[:, 2] -= [x0, y0]
    out = cv2.warpAffine(
        image, local, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    if out.ndim == 2:
        out = out[..., None]
    kernel = _streak(motion)
    if kernel is not None:
        out = cv2.filter2D(out, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        if out.ndim == 2:
            out = out[..., None]
    return (y0, y1, x0, x1), out


def _stage(scene: _Scene, cam: _Camera, on_lid: bool, c, rot, theta: float):
    """The backdrop with what the hand does not hold (held still) and its shadow: the canvas,
    where shadows fall on the table and inside the base."""
    key = "lid" if on_lid else "push"
    if key not in scene.backdrops:
        scene.backdrops[key] = _backdrop(scene, cam)
    canvas, on_table, inside = scene.backdrops[key]
    canvas = canvas.copy()
    H, W = canvas.shape[:2]
    light, lid = scene.light, scene.lidded
    mask = np.zeros((H, W), np.uint8)
    if on_lid:
        _thing_shadow(mask, cam, scene.thing, c, rot, light)
        dark = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), light.soft) * on_table
        sheet = _Sheet(_box_of(cam.project(_thing_points(scene.thing, c, rot))[0], 3), (H, W))
        _draw_thing(sheet, cam, scene.thing, c, rot, light)
    else:
        inner = np.zeros((H, W), np.uint8)
        _lid_shadow(mask, cam, lid, theta, light)
        _inner_shadow(inner, cam, lid, theta, light)
        dark = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), light.soft) * on_table
        inner = cv2.GaussianBlur(inner.astype(np.float32) / 255, (0, 0), light.soft)
        dark = np.maximum(dark, inner * inside)
        sheet = _Sheet(_box_of(cam.project(lid.points())[0], 3), (H, W))
        _draw_lid(sheet, cam, lid, theta, light)
    canvas *= (1 - light.shadow * dark)[..., None]
    sheet.onto(canvas)
    return canvas, on_table, inside


class Tabletop(Generator):
    name = "tabletop"
    encoding = Encoding("WMV2", ".avi", (30.0, 15.0), 144, 256, 32, 72)
    appearances = ("cloth", "counter", "desk", "wood")
    variables = {"push": ("push_right", "push_left"), "lid": ("open", "close")}
    mixed_appearances = ("desk", "wood")
    mixed_dynamics = ("push_right", "push_left", STILL)

    def ease(self, s):
        return 0.4 * s + 0.6 * s * s * (3 - 2 * s)  # a little slower at the ends

    def states(self, plan, n_frames, rng):
        """As `Generator.states`, and each frame also says what the hand holds (`hand`: 1 the
        lid, when the lid moves; 0 the pushed thing) and how far each variable goes in a
        frame there (`<variable>_step`, for the motion blur)."""
        out = super().states(plan, n_frames, rng)
        hand = 1.0 if plan.dynamic is not None and plan.dynamic.variable == "lid" else 0.0
        for variable in self.variables:
            path = np.array([state[variable] for state in out])
            step = np.abs(np.gradient(path)) if n_frames > 1 else np.zeros(n_frames)
            for state, d in zip(out, step, strict=True):
                state[variable + "_step"] = float(d)
        for state in out:
            state["hand"] = hand
        return out

    def scene(self, appearance, rng, width, height):
        W, H = width + 2 * MARGIN, height + 2 * MARGIN
        square = min(width, height)  # the side of the centre square the model sees
        edge, safe = square / 2, SAFE * square / 2  # pixels from the centre
        tilt = np.radians(rng.uniform(0, 24)) if rng.random() < 0.8 else 0.0
        dist = rng.uniform(34, 46)
        view = rng.uniform(36, 46)  # cm of table across the centre square, at most
        elevation, azimuth = np.radians(rng.uniform(35, 70)), rng.uniform(0, 2 * np.pi)
        to = np.array(
            [
                -np.cos(elevation) * np.cos(azimuth),
                -np.cos(elevation) * np.sin(azimuth),
                np.sin(elevation),
            ]
        )
        light = _Light(
            to=to,
            slant=-to[:2] / to[2],
            shadow=rng.uniform(0.25, 0.5),
            soft=rng.uniform(1.0, 2.6),
            ambient=rng.uniform(0.55, 0.7),
            diffuse=rng.uniform(0.35, 0.5),
        )
        # the things: one pushed along a track, and nearer the phone one with a lid, hinged
        # on its far side or (a notebook) on its left or right
        thing, lid = _thing(rng), _lidded(rng)
        turn = rng.uniform(-0.3, 0.3)
        if thing.kind in ("cup", "ball"):
            turn += rng.uniform(0, 2 * np.pi)
        swing = rng.uniform(-0.35, 0.35)
        reach = max(np.abs(_turn(thing.footprint, turn + k)[:, 1]).max() for k in (-0.2, 0.2))
        half = rng.uniform(4.0, 6.0)
        slope = rng.uniform(-0.12, 0.12)
        direction = np.array([np.cos(slope), np.sin(slope)])
        gap = rng.uniform(2.0, 6.0)
        yaw = rng.uniform(-0.2, 0.2)
        if lid.kind == "notebook" and rng.random() < 0.8:  # a cover opening to a side
            side = float(rng.choice([-1, 1]))
            lid.ev = np.array([side * np.cos(yaw), np.sin(yaw), 0.0])
            lid.eu = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
            hinge = np.array([rng.uniform(-4, 4), gap / 2 + lid.width / 2])
        else:  # hinged along the far side: the lid opens towards the phone
            lid.ev = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
            lid.eu = np.array([np.cos(yaw), np.sin(yaw), 0.0])
            behind = lid.depth * max(-np.cos(lid.max_angle), 0.0)
            hinge = np.array([rng.uniform(-4, 4), gap / 2 + behind])
        lid.hinge = _xyz(hinge, lid.base)
        centre = np.array([rng.uniform(-4, 4), -(reach + gap / 2 + abs(slope) * half)])
        track = (centre - direction * half, centre + direction * half, turn, swing)
        # the hand: its arm comes from the bottom or a side, a right or a left hand to match
        angle = rng.uniform(-1.25, 1.25)
        arm = np.array([np.sin(angle), np.cos(angle)])
        thumb = 1 if angle > 0.35 else -1 if angle < -0.35 else int(rng.choice([-1, 1]))
        size = rng.uniform(0.85, 1.1)
        skin = np.array([40, 60, 90]) + rng.uniform(0.15, 1) * np.array([120, 130, 150])
        skin = skin * rng.uniform(0.95, 1.05, 3)
        sleeve = None if rng.random() < 0.3 else hue(rng, 20, 230, rng.uniform(0, 0.6))
        watch = None
        if rng.random() < 0.25:
            watch = np.array([30.0, 30, 30]) if rng.random() < 0.6 else np.array([190.0, 195, 200])
        hand = _Hand(
            size=size,
            skin=skin,
            nail=np.minimum(skin * 0.6 + np.array([90.0, 95, 120]), 255),
            sleeve=sleeve,
            cuff=rng.uniform(0.3, 0.8),
            watch=watch,
            thumb=thumb,
            arm=arm,
            elbow=rng.uniform(5, 9),
        )
        forearm = 34.0 * size
        g0 = lid.edge(0.0)[0]
        rest = {
            "push": (centre, _xyz(centre + arm * forearm, hand.elbow)),
            "lid": (g0, _xyz(g0[:2] + arm * forearm, hand.elbow)),
        }
        # the phone films what the hand does: for each target, its aim and focal length
        forward = np.array([0.0, -np.sin(tilt), -np.cos(tilt)])
        down = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
        cams = {
            key: _Camera(
                f=square * dist / view,
                centre=np.array([(W - 1) / 2, (H - 1) / 2]),
                pos=-forward * dist,
                axes=np.array([[1.0, 0.0, 0.0], down, forward]),
            )
            for key in ("push", "lid")
        }
        scene = _Scene(
            appearance=appearance,
            cams=cams,
            light=light,
            thing=thing,
            track=track,
            lidded=lid,
            hand=hand,
            rest=rest,
            clutter=[],
            seeds=(int(rng.integers(2**31)), int(rng.integers(2**31))),
            phone=_phone(rng, width, height),
            size=(width, height),
            backdrops={},
        )
        for key in ("push", "lid"):
            cam = cams[key]
            if key == "push":
                poses = [_push_pose(scene, *scene.place(v)) for v in (0.0, 1.0)]
                things = [_thing_points(thing, *scene.place(v)) for v in (0.0, 1.0)]
            else:
                poses = [_lid_pose(scene, a) for a in np.linspace(0, lid.max_angle, 5)]
                things = [lid.points()]
            # fingers, knuckles and the thing inside, the wrist up to the square's edge
            points, radii, limits = [], [], []
            for pose in poses:
                joints = [pose.knuckles, *np.concatenate(pose.fingers), *pose.thumb]
                points += [*joints, pose.wrist]
                radii += [1.0 * size] * len(joints) + [2.6 * size]
                limits += [safe] * len(joints) + [edge - 2]
            for pts in things:
                points += list(pts)
                radii += [0.0] * len(pts)
                limits += [safe] * len(pts)
            points, radii, limits = np.array(points), np.array(radii), np.array(limits)
            _aim(cam, points[limits == safe])
            cam.f = min(cam.f, _fit(cam, points, radii, limits))
        # the clutter, clear of both actions and of the arm
        corners = (np.array([0.0, W, W, 0.0]), np.array([0.0, 0.0, H, H]))
        seen = np.concatenate([np.array(cam.ground(*corners)[:2]).T for cam in cams.values()])
        area = (*seen.min(0), *seen.max(0))
        zones = [
            (track[0], track[1], float(np.abs(thing.footprint).max()) + 3.5),
            (lid.points()[:, :2].min(0), lid.points()[:, :2].max(0), 3.0),
            (centre, centre + arm * forearm, 5.0),
            (g0[:2], g0[:2] + arm * forearm, 5.0),
        ]
        scene.clutter = _clutter(appearance, rng, zones, area)
        return scene

    def draw(self, scene: _Scene, state, index, rng):
        lid = scene.lidded
        on_lid = state.get("hand", 0.0) > 0.5
        key = "lid" if on_lid else "push"
        cam = scene.cams[key]
        c, rot = scene.place(state["push"])
        theta = lid.angle(state["lid"])
        now = (key, state["push"], state["lid"])
        if scene.last is not None and scene.last[0] == now:  # nothing moved (a still video)
            return self._photograph(scene, scene.last[1], float(index), rng)
        held = state["push"] if on_lid else state["lid"]
        if scene.stage is None or scene.stage[0] != (key, held):
            scene.stage = ((key, held), *_stage(scene, cam, on_lid, c, rot, theta))
        _, canvas, on_table, inside = scene.stage
        if key not in scene.sprites:
            scene.sprites[key] = _sprite(scene, cam, on_lid)
        sprite = scene.sprites[key]
        img = canvas.copy()
        # where the hand is, and how far what it holds moves in the image during one frame
        if on_lid:
            step = lid.max_angle * state.get("lid_step", 0.0) / 0.86 / 2
            ends = [lid.edge(float(np.clip(theta + d, 0, lid.max_angle)))[0] for d in (-step, step)]
            points = _anchors(scene, on_lid, theta)
        else:
            step = state.get("push_step", 0.0) / 2
            ends = [_xyz(scene.place(state["push"] + d)[0], 0.0) for d in (-step, step)]
            points = _anchors(scene, on_lid, state["push"])
        motion = (cam.on(ends[1]) - cam.on(ends[0])) * scene.phone.shutter
        light = scene.light
        # shadows: the lid's (it moves with the hand), the hand's and what it holds
        if on_lid:
            H, W = img.shape[:2]
            mask, inner = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
            _lid_shadow(mask, cam, lid, theta, light)
            _inner_shadow(inner, cam, lid, theta, light)
            x, y, w, h = cv2.boundingRect(np.maximum(mask, inner))
            pad = int(3 * light.soft) + 2
            box = (slice(max(y - pad, 0), y + h + pad), slice(max(x - pad, 0), x + w + pad))
            dark = cv2.GaussianBlur(mask[box].astype(np.float32) / 255, (0, 0), light.soft)
            inner = cv2.GaussianBlur(inner[box].astype(np.float32) / 255, (0, 0), light.soft)
            dark = np.maximum(dark * on_table[box], inner * inside[box])
            img[box] *= _three(1 - light.shadow * dark)
        cast = cam.on(light.cast(points))
        shade = _warp(
            sprite.shadow,
            _similar(sprite.cast, cast),
            img.shape,
            motion,
        )
        if shade is not None:
            (y0, y1, x0, x1), dark = shade
            dark = dark[..., 0] * np.maximum(on_table[y0:y1, x0:x1], inside[y0:y1, x0:x1])
            img[y0:y1, x0:x1] *= _three(1 - light.shadow * dark)
        if on_lid:  # the lid, then the hand holding it
            H, W = img.shape[:2]
            sheet = _Sheet(_box_of(cam.project(lid.points())[0], 3), (H, W))
            _draw_lid(sheet, cam, lid, theta, light)
            sheet.onto(img)
        move = _similar(sprite.points, cam.on(points))
        laid = _warp(sprite.image, move, img.shape, motion)
        if laid is not None:
            (y0, y1, x0, x1), layer = laid
            *colour, alpha = cv2.split(layer)
            region = img[y0:y1, x0:x1]
            region *= _three(1 - alpha)
            region += cv2.merge(colour)
        scene.last = (now, img)
        return self._photograph(scene, img, float(index), rng)

    def _photograph(self, scene: _Scene, img: np.ndarray, t: float, rng) -> np.ndarray:
        """The phone: its wander and roll, focus, exposure, white balance, noise, sharpening."""
        phone = scene.phone
        width, height = scene.size
        H, W = img.shape[:2]
        tx = phone.drift[0] * (t - MIDDLE) + phone.wave(0, t)
        ty = phone.drift[1] * (t - MIDDLE) + phone.wave(1, t)
        roll = phone.wave(2, t)
        blur = phone.blur(t)
        zoom = 1 + phone.wave(3, t) - 0.004 * blur  # focus breathing: sharper, a bit wider
        cos, sin = zoom * np.cos(roll), zoom * np.sin(roll)
        cx, cy = (W - 1) / 2 + tx, (H - 1) / 2 + ty
        hx, hy = (width - 1) / 2, (height - 1) / 2
        matrix = np.array(
            [[cos, -sin, cx - cos * hx + sin * hy], [sin, cos, cy - sin * hx - cos * hy]]
        )
        out = cv2.warpAffine(
            img,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        # the lens's focus and the phone's sharpening, as one separable filter
        kernel = np.convolve(_gauss(max(blur, 0.05)), phone.unsharp)
        out = cv2.sepFilter2D(out, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT)
        amp, period, phase = phone.exposure
        gain = 1 + amp * np.sin(2 * np.pi * t / period + phase)
        target, strength = phone.metering
        gain *= (target / max(float(out.mean()) * gain, 1.0)) ** strength
        amp, period, phase = phone.balance.T
        gain = gain * (1 + amp * np.sin(2 * np.pi * t / period + phase)) * phone.tint
        out *= phone.vignette
        out = cv2.transform(out, np.diag(gain))
        # sensor noise, growing with the light: a fresh crop of the video's noise each frame
        read, shot = phone.noise
        y = rng.integers(0, phone.grain.shape[0] - height + 1)
        x = rng.integers(0, phone.grain.shape[1] - width + 1)
        grain = phone.grain[y : y + height, x : x + width]
        if rng.random() < 0.5:
            grain = grain[::-1, ::-1]
        out += (read + shot * out) * grain
        return np.clip(out, 0, 255).astype(np.uint8)


TABLETOP = Tabletop()
