"""`rooms`: a person stands up, a door swings open, indoors; a tripod camera, MPEG-2 (.mov).

Kept out of tuning: written after `crossing`, before any recipe ran on it; used for
reporting only (docs/training.md).

Appearances: the room (kitchen, office, bedroom, hallway), drawn anew for every video from
its kind's parts: kitchen wall tiles, cupboards and a worktop over a checkered floor; an
office's painted wall, desk, monitor, noticeboard and carpet; a bedroom's wallpaper, bed,
bedside lamp and floorboards; a hallway's panelled wall, coats, mirror and a rug on the
boards; each with a window or a picture, all colours and places random. Variables: a person
(head, torso, arms and legs, seen from the side, facing left or right at random) seated on a
chair rises to standing in place (`stand_up`: seated -> standing, `sit_down`: back), and a
door on the back wall (a pantry cupboard, an office door, a wardrobe, a front door) swings
towards the camera in perspective, showing a space behind it lit otherwise (brighter or
darker, another tint) than the room (`open`: closed -> open, `close`: back). A moving
variable holds still for the first and last quarter of the video and moves between with a
smooth ease in and out (slow, quick in the middle, slow), like a person. Per video the
room, the person's size, colours and place, the door's side, the lighting, the camera and
its pipeline, length and frame rate (10 or 48 fps) are random. The camera stands still on a
tripod; its auto-exposure and white balance drift slowly with time and its metering partly
evens out the frame's brightness; in some rooms a lamp's flicker rolls down the frame
(rolling shutter); sensor noise grows with brightness and is drawn for every frame; each
frame is JPEG-compressed (a webcam's MJPEG stream) before the file's MPEG-2 encoding.
Frames are square, 200x200 (the model's centre crop keeps the whole frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthetic.base import STILL, Encoding, Generator, bgr, centre_square, hue, pt

HOLD = 0.25  # share of the video at each end where a moving variable holds still
#: what each room has behind its door, and the door itself
BEYOND = {"kitchen": "pantry", "office": "corridor", "bedroom": "wardrobe", "hallway": "outside"}


@dataclass
class _Scene:
    room: np.ndarray  # uint8 BGR: walls, floor, furniture and the chair
    beyond: np.ndarray  # float32 BGR, door-sized: what the open door shows, lit its own way
    leaf: np.ndarray  # uint8 BGR, door-sized: the door, hinge at column 0
    door: tuple[int, int, int, int]  # x0, y0, x1, y1 of the doorway
    hinge: int  # +1: hinge on the doorway's left edge, -1: on its right
    swing: float  # the door's widest opening, radians
    eye: tuple[float, float]  # the image of the camera's axis (x, y)
    depth: float  # the camera's distance to the back wall, pixels
    person: dict  # size, ankle x, feet y, facing and colours
    exposure: np.ndarray  # (amplitude, period, phase) of the exposure drift over the frames
    balance: np.ndarray  # (3, 3) per channel: amplitude, period, phase of the white balance
    metering: tuple[float, float]  # target mean, strength of the auto-exposure's correction
    flicker: np.ndarray  # amplitude, wavelength (rows), cycles rolled per frame, phase
    noise: tuple[float, float]  # read noise, shot noise gain
    quality: int  # JPEG quality of the camera's stream


def _travel(v: float) -> float:
    """Where a variable's drawing is along its way: ends of the range (0-0.1, 0.95-1) at rest."""
    return float(np.clip((v - 0.1) / 0.85, 0.0, 1.0))


def _box(img, x0, y0, x1, y1, colour, thickness=-1):
    cv2.rectangle(img, pt((x0, y0)), pt((x1, y1)), bgr(colour), thickness)


def _floor(kind, rng, width, height, wall_y, eye_y, depth) -> np.ndarray:
    """The floor seen from the camera (rows below `wall_y`), its pattern in perspective."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    z = (wall_y - eye_y) / (np.maximum(ys, wall_y) - eye_y)  # 1 at the wall, less nearer
    x = width / 2 + (xs - width / 2) * z  # across, on the wall's scale
    d = depth * z  # away from the camera
    floor = np.empty((height, width, 3), np.float32)
    if kind == "kitchen":  # checkered tiles
        tile = rng.uniform(18, 32)
        a, b = hue(rng, 150, 240, 0.6), hue(rng, 20, 120, 0.4)
        check = ((np.floor(x / tile) + np.floor(d / tile)) % 2)[..., None]
        floor[:] = a * check + b * (1 - check)
        grout = (np.mod(x / tile, 1) < 0.06) | (np.mod(d / tile, 1) < 0.06)
        floor[grout] = 0.5 * (a + b)
    elif kind == "office":  # carpet tiles
        base = hue(rng, 50, 150, 0.5)
        grain = cv2.resize(rng.normal(0, 1, (height // 4 + 1, width // 4 + 1)), (width, height))
        floor[:] = base * (1 + 0.08 * grain[..., None].astype(np.float32))
        tile = rng.uniform(35, 50)
        seams = (np.mod(x / tile, 1) < 0.03) | (np.mod(d / tile, 1) < 0.03)
        floor[seams] *= 0.85
    else:  # boards running away from the camera; the hallway has a runner on them
        board, length = rng.uniform(9, 16), rng.uniform(60, 140)
        wood = np.array([40.0, 90.0, 150.0]) * rng.uniform(0.5, 1.2) + rng.uniform(-15, 15, 3)
        index = np.floor(x / board).astype(int)
        tones = 1 + rng.normal(0, 0.09, 400)
        offsets = rng.uniform(0, length, 400)
        floor[:] = wood * tones[index % 400][..., None]
        joint = (np.mod(x / board, 1) < 0.1) | (
            np.mod((d + offsets[index % 400]) / length, 1) < 0.02
        )
        floor[joint] *= 0.65
        if kind == "hallway":
            middle, half = width * rng.uniform(0.35, 0.65), width * rng.uniform(0.14, 0.24)
            rug = np.abs(x - middle) < half
            floor[rug] = hue(rng, 30, 200)
            floor[rug & (np.abs(x - middle) > 0.75 * half)] = hue(rng, 30, 230)
    return floor


def _window(img, x0, y0, x1, y1, rng, dressing):
    """A window onto a bright sky, with curtains or blinds."""
    sky = rng.uniform(200, 255, 3) * np.array([1.0, 0.95, 0.85])
    _box(img, x0 - 3, y0 - 3, x1 + 3, y1 + 3, hue(rng, 170, 250, 0.8))
    for k in range(int(y0), int(y1)):
        img[k, int(x0) : int(x1)] = sky * (0.8 + 0.2 * (k - y0) / max(y1 - y0, 1))
    if rng.random() < 0.6:  # a tree or the building across
        _box(img, x0, y0 + (y1 - y0) * rng.uniform(0.4, 0.8), x1, y1, hue(rng, 40, 160))
    mid = (x0 + x1) / 2
    cv2.line(img, pt((mid, y0)), pt((mid, y1)), (235, 235, 235), 2)
    if dressing == "blinds":
        for k in np.arange(y0, y0 + (y1 - y0) * rng.uniform(0.2, 0.9), 3):
            cv2.line(img, pt((x0, k)), pt((x1, k)), (210, 215, 220), 1)
    elif dressing == "curtains":
        cloth = hue(rng)
        width = (x1 - x0) * rng.uniform(0.2, 0.35)
        _box(img, x0 - 6, y0 - 6, x0 + width, y1 + 8, cloth)
        _box(img, x1 - width, y0 - 6, x1 + 6, y1 + 8, cloth)


def _picture(img, x0, y0, x1, y1, rng):
    _box(img, x0 - 2, y0 - 2, x1 + 2, y1 + 2, hue(rng, 10, 120))
    _box(img, x0, y0, x1, y1, hue(rng, 60, 240))
    for _ in range(3):
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        r = rng.uniform(0.1, 0.3) * (x1 - x0)
        cv2.circle(img, pt((cx, cy)), int(r), bgr(hue(rng)), -1)
    _box(img, x0 - 2, y0 - 2, x1 + 2, y1 + 2, hue(rng, 10, 120), 2)


def _room(kind, rng, width, height, wall_y, span) -> np.ndarray:
    """The back wall and its furniture; `span` is the stretch of wall free of the door."""
    img = np.empty((height, width, 3), np.float32)
    paint = hue(rng, 110, 240, 0.55)
    img[:] = paint
    a, b = span
    w = b - a
    if kind == "kitchen":
        counter = wall_y - height * rng.uniform(0.17, 0.22)
        upper = counter - height * rng.uniform(0.2, 0.26)
        tile, grout = rng.uniform(7, 12), hue(rng, 180, 250, 0.9)
        glaze = hue(rng, 90, 250, 0.3)
        img[int(upper) : int(counter)] = grout
        for ty in np.arange(upper, counter, tile):
            for tx in np.arange(0, width, tile):
                tint = glaze * rng.uniform(0.92, 1.05)
                _box(img, tx + 1, ty + 1, tx + tile - 1, min(ty + tile - 1, counter), tint)
        front = hue(rng, 40, 240, 0.3)
        _box(img, 0, counter, width, wall_y, front)  # lower cupboards
        step = w / int(rng.integers(3, 5))
        for cx in np.arange(a, b - 1, step):
            _box(img, cx + 2, counter + 4, cx + step - 2, wall_y - 3, front * 0.85, 1)
            _box(img, cx + step - 8, counter + 8, cx + step - 6, counter + 20, (200, 200, 200))
        _box(img, 0, counter - 4, width, counter + 2, hue(rng, 20, 200, 0.5))  # worktop
        sink = rng.uniform(a, b - w / 4)
        _box(img, sink, counter - 3, sink + w / 4, counter, (150, 150, 150))
        cabinet_top = upper - height * rng.uniform(0.16, 0.2)
        _box(img, a, cabinet_top, b, upper - 4, front)  # upper cupboards
        for cx in np.arange(a, b, w / 3):
            _box(img, cx + 2, cabinet_top + 2, cx + w / 3 - 2, upper - 6, front * 0.88, 1)
    elif kind == "office":
        img *= np.linspace(1.05, 0.92, height, dtype=np.float32)[:, None, None]
        desk = wall_y - height * rng.uniform(0.18, 0.23)
        x0 = a + w * rng.uniform(0.0, 0.3)
        x1 = x0 + w * rng.uniform(0.55, 0.7)
        wood = hue(rng, 40, 200, 0.4)
        _box(img, x0, desk, x1, desk + 4, wood)
        for leg in (x0 + 2, x1 - 6):
            _box(img, leg, desk, leg + 4, wall_y, wood * 0.7)
        _box(img, x1 - w * 0.18, desk, x1 - 6, wall_y - 2, wood * 0.8)  # drawers
        mx = rng.uniform(x0 + 6, x1 - w * 0.3)
        _box(img, mx, desk - height * 0.15, mx + w * 0.25, desk - 8, (30, 30, 30))
        _box(img, mx + 2, desk - height * 0.15 + 2, mx + w * 0.25 - 2, desk - 10, hue(rng, 140))
        _box(img, mx + w * 0.11, desk - 8, mx + w * 0.14, desk, (40, 40, 40))
        board_y = desk - height * rng.uniform(0.38, 0.45)
        if rng.random() < 0.5:
            bx = a + w * rng.uniform(0.05, 0.35)
            _box(img, bx, board_y, bx + w * 0.45, board_y + height * 0.15, (40, 90, 140))
            for _ in range(int(rng.integers(4, 9))):  # notes pinned on a noticeboard
                nx, ny = rng.uniform(bx, bx + w * 0.38), rng.uniform(board_y, board_y + 20)
                _box(img, nx, ny, nx + 7, ny + 7, hue(rng, 120, 255))
        else:
            wx = a + w * rng.uniform(0.05, 0.4)
            _window(img, wx, board_y, wx + w * 0.4, board_y + height * 0.2, rng, "blinds")
        _box(img, 0, wall_y - 5, width, wall_y, paint * 0.6)  # skirting
    elif kind == "bedroom":
        stripe, second = rng.uniform(5, 14), paint * rng.uniform(0.75, 0.9)
        xs = np.arange(width)
        img[:, (xs // stripe).astype(int) % 2 == 1] = second  # wallpaper
        if rng.random() < 0.5:
            for y in np.arange(stripe, height, 2 * stripe):
                for x in np.arange(stripe / 2, width, 2 * stripe):
                    cv2.circle(img, pt((x, y)), 1, bgr(paint * 0.6), -1)
        bx = a + w * rng.uniform(0.0, 0.2)
        bed = bx + w * rng.uniform(0.6, 0.8)
        _box(img, bx, wall_y - height * 0.24, bx + 6, wall_y, hue(rng, 30, 150))  # headboard
        _box(img, bx, wall_y - height * 0.12, bed, wall_y - height * 0.04, (235, 235, 235))
        _box(img, bx + 6, wall_y - height * 0.15, bx + w * 0.2, wall_y - height * 0.11, (245,) * 3)
        _box(img, bx + w * 0.2, wall_y - height * 0.13, bed, wall_y - height * 0.04, hue(rng))
        _box(img, bx, wall_y - height * 0.04, bed, wall_y, (40, 40, 50))
        table = bed + w * 0.04
        _box(img, table, wall_y - height * 0.1, table + w * 0.12, wall_y, hue(rng, 30, 150))
        shade = np.array(
            [
                (table, wall_y - height * 0.16),
                (table + w * 0.12, wall_y - height * 0.16),
                (table + w * 0.09, wall_y - height * 0.22),
                (table + w * 0.03, wall_y - height * 0.22),
            ],
            np.int32,
        )
        cv2.fillConvexPoly(img, shade, (120, 210, 250))
        cv2.line(
            img,
            pt((table + w * 0.06, wall_y - 0.16 * height)),
            pt((table + w * 0.06, wall_y - 0.1 * height)),
            (60, 60, 60),
            2,
        )
        py = wall_y - height * rng.uniform(0.42, 0.5)
        if rng.random() < 0.5:
            px = bx + w * rng.uniform(0.1, 0.3)
            _picture(img, px, py, px + w * 0.3, py + height * 0.13, rng)
        else:
            px = bx + w * rng.uniform(0.05, 0.3)
            _window(img, px, py, px + w * 0.4, py + height * 0.18, rng, "curtains")
    else:  # hallway: panelled wainscot, coats on hooks, a mirror, a console table
        rail = wall_y - height * rng.uniform(0.2, 0.28)
        panel = hue(rng, 60, 230, 0.5)
        img[int(rail) :] = panel
        step = rng.uniform(24, 40)
        for x in np.arange(rng.uniform(0, step), width, step):
            _box(img, x + 3, rail + 5, x + step - 3, wall_y - 8, panel * 0.82, 1)
        _box(img, 0, rail - 3, width, rail + 1, panel * 0.7)
        _box(img, 0, wall_y - 5, width, wall_y, panel * 0.6)
        hooks = rail - height * rng.uniform(0.14, 0.2)
        _box(img, a + w * 0.05, hooks - 3, a + w * 0.5, hooks, hue(rng, 20, 120))
        for cx in np.arange(a + w * 0.1, a + w * 0.45, w * rng.uniform(0.08, 0.12)):
            long = height * rng.uniform(0.12, 0.22)
            coat = np.array(
                [(cx - 4, hooks), (cx + 4, hooks), (cx + 9, hooks + long), (cx - 9, hooks + long)],
                np.int32,
            )
            cv2.fillConvexPoly(img, coat, bgr(hue(rng, 20, 220)))
        mx = a + w * rng.uniform(0.55, 0.7)
        my = hooks - height * 0.05
        _box(img, mx - 2, my - 2, mx + w * 0.25 + 2, my + height * 0.22 + 2, hue(rng, 20, 150))
        for k in range(int(height * 0.22)):  # a mirror: a pale gradient
            img[int(my) + k, int(mx) : int(mx + w * 0.25)] = 200 - 40 * k / (height * 0.22)
        _box(img, mx - 6, rail + 3, mx + w * 0.3, rail + 7, hue(rng, 30, 160))  # console
    return img


def _beyond(kind, rng, w, h) -> np.ndarray:
    """What the open door shows, lit its own way: brighter or darker than the room, tinted."""
    img = np.empty((h, w, 3), np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    if kind == "outside":  # daylight: sky, trees, a path
        img[:] = rng.uniform(210, 255, 3) * (1 - 0.3 * t)
        horizon = int(h * rng.uniform(0.4, 0.6))
        for _ in range(6):
            cv2.circle(
                img,
                pt((rng.uniform(0, w), horizon - rng.uniform(0, 10))),
                int(rng.uniform(6, 14)),
                (40, rng.uniform(90, 160), 50),
                -1,
            )
        img[horizon:] = hue(rng, 60, 160)
        path = np.array([(w * 0.4, horizon), (w * 0.6, horizon), (w, h), (0, h)], np.int32)
        cv2.fillConvexPoly(img, path, bgr(hue(rng, 120, 200, 0.7)))
        gain, tint = rng.uniform(1.2, 1.6), np.array([1.15, 1.0, 0.9])
    elif kind == "corridor":  # one-point perspective, a far wall, cool light
        img[:] = hue(rng, 120, 220, 0.7)
        fx0, fx1, fy0, fy1 = w * 0.3, w * 0.7, h * 0.3, h * 0.62
        floor = np.array([(fx0, fy1), (fx1, fy1), (w, h), (0, h)], np.int32)
        cv2.fillConvexPoly(img, floor, bgr(hue(rng, 40, 140, 0.5)))
        ceiling = np.array([(0, 0), (w, 0), (fx1, fy0), (fx0, fy0)], np.int32)
        cv2.fillConvexPoly(img, ceiling, (235, 235, 235))
        _box(img, fx0, fy0, fx1, fy1, hue(rng, 80, 200, 0.6))
        _box(img, w * 0.45, fy0 + 2, w * 0.55, fy0 + 4, (255, 255, 255))
        gain, tint = rng.choice([rng.uniform(1.3, 1.7), rng.uniform(0.35, 0.55)]), [1.1, 1, 0.9]
    elif kind == "wardrobe":  # clothes hanging from a rail, a shelf above
        img[:] = hue(rng, 30, 110, 0.5)
        _box(img, 0, h * 0.1, w, h * 0.12, (200, 200, 200))
        rail = h * 0.2
        cv2.line(img, pt((0, rail)), pt((w, rail)), (180, 180, 180), 2)
        x = 2.0
        while x < w - 4:
            wide = rng.uniform(5, 10)
            _box(img, x, rail, x + wide, rail + h * rng.uniform(0.3, 0.65), hue(rng, 20, 230))
            x += wide + rng.uniform(0, 2)
        gain, tint = rng.choice([rng.uniform(1.3, 1.7), rng.uniform(0.3, 0.5)]), [0.8, 1, 1.2]
    else:  # pantry: shelves of jars and boxes, a warm or a cool light
        img[:] = hue(rng, 150, 240, 0.7)
        shelves = int(rng.integers(4, 6))
        for s in range(1, shelves + 1):
            y = h * s / (shelves + 0.5)
            x = 2.0
            while x < w - 6:
                wide, tall = rng.uniform(5, 10), rng.uniform(0.4, 0.8) * h / (shelves + 0.5)
                _box(img, x, y - tall, x + wide, y, hue(rng, 20, 240))
                x += wide + rng.uniform(1, 4)
            _box(img, 0, y, w, y + 3, hue(rng, 60, 200, 0.5))
        warm = rng.random() < 0.5
        gain = rng.choice([rng.uniform(1.3, 1.7), rng.uniform(0.3, 0.5)])
        tint = [0.75, 0.95, 1.2] if warm else [1.15, 1.05, 0.95]
    falloff = 1.15 - 0.3 * t  # lit from above
    return cv2.GaussianBlur(img, (0, 0), 0.6) * falloff * gain * np.asarray(tint, np.float32)


def _leaf(kind, rng, w, h) -> np.ndarray:
    """The door, seen from the room; column 0 is the hinge, the handle on the far side."""
    img = np.empty((h, w, 3), np.float32)
    colour = hue(rng, 40, 240, 0.4)
    img[:] = colour
    handle = (w * 0.84, h * rng.uniform(0.45, 0.55))
    if kind == "pantry":  # a flat cupboard door with a bar handle
        _box(img, w * 0.8, h * 0.35, w * 0.86, h * 0.6, (190, 190, 190))
        _box(img, 2, 2, w - 3, h - 3, colour * 0.85, 1)
    elif kind == "wardrobe":  # a mirror door
        _box(img, w * 0.12, h * 0.06, w * 0.88, h * 0.94, (205, 200, 195))
        for k in range(int(h * 0.06), int(h * 0.94), 9):
            cv2.line(img, pt((w * 0.12, k)), pt((w * 0.88, k + 12)), (225, 225, 225), 1)
        cv2.circle(img, pt((w * 0.93, handle[1])), 2, (60, 60, 60), -1)
    else:  # panelled doors, the front door with a pane of glass
        rows = [(0.06, 0.3), (0.36, 0.94)] if kind == "outside" else [(0.06, 0.45), (0.52, 0.94)]
        for y0, y1 in rows:
            _box(img, w * 0.16, h * y0, w * 0.84, h * y1, colour * 0.8, 2)
        if kind == "outside":
            _box(img, w * 0.2, h * 0.08, w * 0.8, h * 0.28, (235, 225, 215))
            _box(img, w * 0.3, h * 0.6, w * 0.7, h * 0.63, (50, 50, 50))  # letterbox
        cv2.circle(img, pt(handle), max(2, int(w * 0.05)), (60, 170, 210), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _pose(person: dict, q: float) -> dict:
    """Joint positions of the person `q` of the way from seated (0) to standing (1)."""
    s, f = person["size"], person["facing"]
    shin, thigh, trunk = 0.26 * s, 0.25 * s, 0.3 * s
    ankle = np.array([person["x"], person["feet"] - 0.04 * s])
    lift = np.sin(np.pi * q)  # leaning forward and pushing on the knees, mid-way
    a = np.radians(10 * (1 - q) + 16 * lift)  # shin, forward of vertical
    knee = ankle + shin * np.array([f * np.sin(a), -np.cos(a)])
    a = np.radians(90 * (1 - q) ** 1.2)  # thigh, behind vertical
    hip = knee + thigh * np.array([-f * np.sin(a), -np.cos(a)])
    lean = np.radians(5 * (1 - q) + 38 * lift)
    neck = hip + trunk * np.array([f * np.sin(lean), -np.cos(lean)])
    head = neck + 0.1 * s * np.array([f * (0.25 + np.sin(lean)), -np.cos(lean)])
    shoulder = neck + 0.05 * s * np.array([-f * np.sin(lean), np.cos(lean)])
    a = lean * 0.3 + np.radians(35 * (1 - q) + 20 * lift)  # upper arm, forward
    elbow = shoulder + 0.17 * s * np.array([f * np.sin(a), np.cos(a)])
    a = np.radians(80 * (1 - q) + 40 * lift + 10 * q)  # forearm, forward
    hand = elbow + 0.16 * s * np.array([f * np.sin(a), np.cos(a)])
    toe = ankle + np.array([f * 0.12 * s, 0.03 * s])
    return dict(
        ankle=ankle,
        knee=knee,
        hip=hip,
        neck=neck,
        head=head,
        shoulder=shoulder,
        elbow=elbow,
        hand=hand,
        toe=toe,
    )


def _chair(img, person: dict, style: str, colour):
    """A chair in profile, under the seated person's hips."""
    seated, s, f = _pose(person, 0.0), person["size"], person["facing"]
    seat = seated["hip"][1] + 0.05 * s
    front, back = seated["knee"][0] - f * 0.07 * s, seated["hip"][0] - f * 0.1 * s
    x0, x1 = min(front, back), max(front, back)
    colour = bgr(colour)
    cv2.rectangle(img, pt((x0, seat)), pt((x1, seat + 0.04 * s)), colour, -1, cv2.LINE_AA)
    thick = max(2, int(0.035 * s))
    if style == "office":  # one post on wheels, a padded back
        mid = (x0 + x1) / 2
        cv2.line(img, pt((mid, seat)), pt((mid, person["feet"] - 0.05 * s)), (60, 60, 60), thick)
        cv2.line(
            img,
            pt((x0, person["feet"] - 0.05 * s)),
            pt((x1, person["feet"] - 0.05 * s)),
            (60, 60, 60),
            thick,
        )
        for x in (x0, x1):
            cv2.circle(
                img,
                pt((x, person["feet"] - 0.025 * s)),
                max(2, int(0.025 * s)),
                (30, 30, 30),
                -1,
                cv2.LINE_AA,
            )
        cv2.line(
            img, pt((back, seat)), pt((back - f * 0.03 * s, seat - 0.12 * s)), (60, 60, 60), thick
        )
        cv2.rectangle(
            img,
            pt((back - f * 0.08 * s, seat - 0.38 * s)),
            pt((back, seat - 0.12 * s)),
            colour,
            -1,
            cv2.LINE_AA,
        )
    else:  # four legs (two seen), a straight back
        for x in (x0 + thick / 2, x1 - thick / 2):
            cv2.line(img, pt((x, seat)), pt((x, person["feet"])), colour, thick, cv2.LINE_AA)
        cv2.line(
            img,
            pt((back, seat)),
            pt((back - f * 0.04 * s, seat - 0.42 * s)),
            colour,
            thick + 1,
            cv2.LINE_AA,
        )
        cv2.line(
            img,
            pt((back - f * 0.03 * s, seat - 0.3 * s)),
            pt((back - f * 0.04 * s, seat - 0.4 * s)),
            colour,
            3 * thick,
            cv2.LINE_AA,
        )


def _draw_person(img, person: dict, q: float):
    j, s, f = _pose(person, q), person["size"], person["facing"]
    skin, shirt, legs = person["skin"], person["shirt"], person["legs"]
    behind = np.array([-f * 0.03 * s, -0.01 * s])  # the far arm and leg, a little behind

    def limb(a, b, colour, width):
        cv2.line(img, pt(a), pt(b), colour, max(2, int(width * s)), cv2.LINE_AA)

    for offset, shade in ((behind, 0.75), (np.zeros(2), 1.0)):  # far side first
        leg = bgr(np.multiply(legs, shade))
        limb(j["toe"] + offset, j["ankle"] + offset, (25, 25, 30), 0.06)
        limb(j["ankle"] + offset, j["knee"] + offset, leg, 0.085)
        limb(j["knee"] + offset, j["hip"] + offset, leg, 0.11)
        if offset.any():
            limb(j["shoulder"] + offset, j["elbow"] + offset, bgr(np.multiply(shirt, shade)), 0.07)
            limb(j["elbow"] + offset, j["hand"] + offset, bgr(np.multiply(skin, shade)), 0.055)
    across = np.array([j["neck"][1] - j["hip"][1], j["hip"][0] - j["neck"][0]])
    across /= np.linalg.norm(across)
    trunk = [
        j["hip"] + 0.075 * s * across,
        j["neck"] + 0.085 * s * across,
        j["neck"] - 0.07 * s * across,
        j["hip"] - 0.075 * s * across,
    ]
    cv2.fillConvexPoly(img, np.array([pt(p) for p in trunk]), shirt, cv2.LINE_AA)
    limb(j["neck"], j["head"], skin, 0.06)
    r = max(3, int(0.085 * s))
    cv2.circle(img, pt(j["head"]), r, skin, -1, cv2.LINE_AA)
    back = j["head"] - np.array([f * 0.25 * r, 0.25 * r])
    cv2.ellipse(img, pt(back), (r, int(r * 0.8)), 0, 0, 360, person["hair"], -1, cv2.LINE_AA)
    limb(j["shoulder"], j["elbow"], shirt, 0.07)
    limb(j["elbow"], j["hand"], skin, 0.055)


class Rooms(Generator):
    name = "rooms"
    encoding = Encoding("m2v1", ".mov", (10.0, 48.0), 200, 200, 40, 100)
    appearances = ("bedroom", "hallway", "kitchen", "office")
    variables = {"stand": ("stand_up", "sit_down"), "door": ("open", "close")}
    mixed_appearances = ("kitchen", "office")
    mixed_dynamics = ("stand_up", "sit_down", STILL)

    def ease(self, s):
        t = np.clip((s - HOLD) / (1 - 2 * HOLD), 0.0, 1.0)
        return t * t * t * (t * (6 * t - 15) + 10)  # smootherstep: slow, quick, slow

    def scene(self, appearance, rng, width, height):
        cx, cy, side = centre_square(width, height)
        top = cy - side / 2
        wall_y = top + side * rng.uniform(0.6, 0.68)
        eye_y = top + side * rng.uniform(0.3, 0.42)
        depth = side * rng.uniform(1.6, 2.2)
        door_side = int(rng.choice([-1, 1]))  # the door on the left (-1) or right of the crop
        door_w, door_h = side * rng.uniform(0.2, 0.26), side * rng.uniform(0.44, 0.52)
        edge = cx + door_side * side * (0.5 - rng.uniform(0.06, 0.12))  # the hinge side
        x0, x1 = sorted((edge, edge - door_side * door_w))
        door = (int(x0), int(wall_y - door_h), int(x1), int(wall_y))
        span = (
            (x1 + 0.04 * side, cx + side / 2)
            if door_side < 0
            else (cx - side / 2, x0 - 0.04 * side)
        )
        room = _room(appearance, rng, width, height, wall_y, span)
        floor = _floor(appearance, rng, width, height, wall_y, eye_y, depth)
        room[int(wall_y) :] = floor[int(wall_y) :]
        casing = hue(rng, 150, 250, 0.8)
        _box(room, x0 - 4, wall_y - door_h - 4, x1 + 4, wall_y, casing)
        # light from a lamp somewhere up in the room, falling off over the walls
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        lx, ly = rng.uniform(0, width), top + side * rng.uniform(-0.2, 0.3)
        light = 1.15 - rng.uniform(0.2, 0.45) * np.hypot(xs - lx, ys - ly) / side
        room = cv2.GaussianBlur(room * light[..., None], (0, 0), 0.6)
        facing = int(rng.choice([-1, 1]))
        size = side * rng.uniform(0.36, 0.46)  # standing height
        middle = cx - door_side * side * rng.uniform(0.18, 0.24)
        person = {
            "size": size,
            "facing": facing,
            "x": middle + facing * 0.1 * size,
            "feet": wall_y + (top + side - wall_y) * rng.uniform(0.55, 0.8),
            "skin": bgr(np.array([40, 60, 90]) + rng.uniform(0.35, 1) * np.array([120, 130, 150])),
            "hair": bgr(rng.uniform(10, 60) * np.array([1.0, 1.4, 2.2]) * rng.uniform(0.6, 1.6)),
            "shirt": bgr(hue(rng, 20, 240)),
            "legs": bgr(hue(rng, 20, 150, 0.3)),
        }
        room = np.clip(room, 0, 255).astype(np.uint8)
        _chair(room, person, "office" if appearance == "office" else "wood", hue(rng, 20, 200))
        beyond_kind = BEYOND[appearance]
        w, h = door[2] - door[0], door[3] - door[1]
        return _Scene(
            room=room,
            beyond=_beyond(beyond_kind, rng, w, h),
            leaf=_leaf(beyond_kind, rng, w, h),
            door=door,
            hinge=1 if door_side < 0 else -1,
            swing=np.radians(rng.uniform(70, 95)),
            eye=(cx, eye_y),
            depth=depth,
            person=person,
            exposure=np.array([rng.uniform(0.03, 0.08), rng.uniform(60, 180), rng.uniform(0, 7)]),
            balance=np.column_stack(
                [rng.uniform(0.01, 0.04, 3), rng.uniform(80, 240, 3), rng.uniform(0, 7, 3)]
            ),
            metering=(rng.uniform(100, 130), rng.uniform(0.15, 0.4)),
            flicker=np.array(
                [
                    rng.uniform(0.02, 0.06) * (rng.random() < 0.6),
                    rng.uniform(0.3, 0.7) * height,
                    rng.choice([-1, 1]) * rng.uniform(0.05, 0.25),
                    rng.uniform(0, 7),
                ]
            ),
            noise=(rng.uniform(1.5, 3.0), rng.uniform(0.015, 0.05)),
            quality=int(rng.integers(50, 86)),
        )

    def draw(self, scene: _Scene, state, index, rng):
        image = scene.room.copy()
        height, width = image.shape[:2]
        x0, y0, x1, y1 = scene.door
        w, h = x1 - x0, y1 - y0
        # the door: its free edge comes towards the camera as it turns on its hinge
        angle = scene.swing * _travel(state["door"])
        hinge_x = x0 if scene.hinge > 0 else x1
        free_x = hinge_x + scene.hinge * w * np.cos(angle)
        z = 1 - w * np.sin(angle) / scene.depth  # the free edge's depth (the wall at 1)
        ex, ey = scene.eye
        corners = np.float32(
            [
                (hinge_x, y0),
                (ex + (free_x - ex) / z, ey + (y0 - ey) / z),
                (ex + (free_x - ex) / z, ey + (y1 - ey) / z),
                (hinge_x, y1),
            ]
        )
        source = np.float32([(0, 0), (w, 0), (w, h), (0, h)])  # column 0: the hinge
        warp = cv2.getPerspectiveTransform(source, corners)
        face = cv2.warpPerspective(scene.leaf, warp, (width, height)).astype(np.float32)
        cover = cv2.warpPerspective(np.ones((h, w), np.float32), warp, (width, height))[..., None]
        face *= 1 - 0.35 * np.sin(angle)  # turning away from the room's light
        # what the door shows (not lit by the room's lamp, so it does not flicker)
        beyond = np.zeros((height, width, 1), np.float32)
        beyond[y0:y1, x0:x1] = 1
        frame = image.astype(np.float32)
        frame[y0:y1, x0:x1] = scene.beyond
        frame = frame * (1 - cover) + face * cover
        beyond *= 1 - cover
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        _draw_person(frame, scene.person, _travel(state["stand"]))  # in front of everything
        frame = frame.astype(np.float32)
        # the camera: a lamp's rolling flicker, auto-exposure, white balance (all with time)
        a, wavelength, speed, phase = scene.flicker
        rows = np.arange(height, dtype=np.float32)[:, None, None]
        flicker = 1 + a * np.sin(2 * np.pi * (rows / wavelength + speed * index) + phase)
        frame *= 1 + (flicker - 1) * (1 - beyond)
        amp, period, phase = scene.exposure
        gain = 1 + amp * np.sin(2 * np.pi * index / period + phase)
        target, strength = scene.metering
        gain *= (target / max(float(frame.mean()) * gain, 1.0)) ** strength
        amp, period, phase = scene.balance.T
        frame *= gain * (1 + amp * np.sin(2 * np.pi * index / period + phase))
        # the sensor: noise growing with the light, drawn for every frame
        read, shot = scene.noise
        sigma = np.sqrt(read**2 + shot * np.clip(frame, 0, 255))
        frame += sigma * rng.standard_normal(frame.shape, dtype=np.float32)
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        _, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, scene.quality])
        return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


ROOMS = Rooms()
