"""Synthetic action data sets: eight generators x three kinds of set (`python -m training synth`).

The generators differ in how their videos are made (see each module):

- `shapes`: a flat shape on blurred noise; size (grow/shrink) and colour (warm/cool) change;
  static camera, uniform noise; MJPG .avi, 128x96, 25/30 fps.
- `textures`: a textured patch on a gradient wall; the camera zooms (zoom_in/zoom_out) or
  pulls focus (sharpen/soften); shake, flicker, Gaussian noise; mp4v .mp4, 176x144, 15/24 fps.
- `sprites`: small sprites drifting in a room; their number (appear/vanish) or the light
  (dawn/dusk) changes; colour cast, strong noise; XVID .avi, 320x240, 30/50 fps.
- `blinds`: a picture seen through a window; a roller blind lowers/raises or a liquid
  fills/drains, after and before a hold; panning camera, vignette, noise; MJPG .avi, 16:9
  256x144, 20/60 fps. Written after the default recipe was fixed; looked at a second time to
  study the appearance width (docs/training.md).
- `crossing`: a person, car, ball or dog crosses a street (go_right/go_left) or climbs
  (climb/descend); shaky hand-held camera, motion blur, noise; VP8 .mkv, portrait 180x240,
  12/30 fps. Written after that second look, for reporting only.
- `rooms`: a person in a kitchen, office, bedroom or hallway stands up or sits down
  (stand_up/sit_down), or a door opens or closes onto a space lit otherwise (open/close),
  quick in the middle after a hold; tripod camera, exposure and white-balance drift, lamp
  flicker, noise, JPEG blocks; MPEG-2 .mov, square 200x200, 10/48 fps. Written after
  `crossing`, for reporting only.
- `outdoors`: in a park, on a beach, a court or a snow field, a runner, cyclist, ball or
  skier comes towards the camera or goes away along a line to its vanishing point
  (approach/recede: size and place change together), or a flag is run up or down its pole
  in pulls (hoist/haul_down); a camera on a vibrating mast, rolling-shutter wobble, barrel
  distortion, cloud shadows sweeping, haze, sensor noise and hot pixels; FLV1 (Sorenson
  H.263) .mkv, 3:2 240x160, 23.976/59.94 fps. Written after `rooms`, for reporting only.
- `tabletop`: a phone held over a wooden table, a desk, a kitchen counter or a tablecloth
  films one hand: holding a cup, box, ball or book from above, it pushes it across the table
  (push_right/push_left), or it opens or closes the lid of a box, a tin or a notebook
  (open/close); the action covers a part of the picture, the table and its clutter the rest;
  hand-held drift and wander, autofocus breathing, exposure and white-balance drift, motion
  blur, noise, sharpening; WMV2 .avi, portrait 144x256, 30/15 fps. Written after `outdoors`,
  for reporting only.

and each makes three kinds of set (`training.synthetic.base`): `order` (classes told apart only
by the order of the frames), `appearance` (only by how frames look) and `mixed` (both needed).
Sets are written in the Keras example's layout (`train.csv` / `test.csv` with
`video_name,tag`, videos in `train/` and `test/`, listed class by class) or one folder per
class, with `synthetic.json` saying how they were made. Each video draws from its own random
stream, seeded by (seed, class, split, number): reproducible, and independent of which other
classes or how many videos a set has.
"""

from __future__ import annotations

import csv
import json
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training.synthetic.base import KINDS, Generator, Plan, write_video
from training.synthetic.blinds import BLINDS
from training.synthetic.crossing import CROSSING
from training.synthetic.outdoors import OUTDOORS
from training.synthetic.rooms import ROOMS
from training.synthetic.shapes import SHAPES
from training.synthetic.sprites import SPRITES
from training.synthetic.tabletop import TABLETOP
from training.synthetic.textures import TEXTURES

GENERATORS: dict[str, Generator] = {
    g.name: g for g in (SHAPES, TEXTURES, SPRITES, BLINDS, CROSSING, ROOMS, OUTDOORS, TABLETOP)
}
LAYOUTS = ("csv", "folders")
INFO_FILE = "synthetic.json"
#: The classes of the original synthetic set (`shapes`, `order`).
CLASSES = SHAPES.classes("order")

__all__ = [
    "CLASSES",
    "GENERATORS",
    "KINDS",
    "LAYOUTS",
    "SyntheticSpec",
    "VideoDraw",
    "draw_video",
    "generate",
    "render_frames",
    "write_video",
]


@dataclass(frozen=True)
class SyntheticSpec:
    """How big a synthetic data set to write, with which generator; None = the generator's."""

    train_per_class: int = 8
    test_per_class: int = 3
    generator: str = "shapes"
    kind: str = "order"
    seed: int = 0
    min_frames: int | None = None
    max_frames: int | None = None
    width: int | None = None
    height: int | None = None


def video_rng(seed: int, label: str, split: str, number: int) -> np.random.Generator:
    """The random stream of one video (stable across runs, machines and set sizes)."""
    key = zlib.crc32(f"{label}/{split}".encode())
    return np.random.default_rng([seed, key, number])


@dataclass(frozen=True)
class VideoDraw:
    """What one video's random stream decides before its frames are drawn."""

    frames: int
    fps: float
    plan: Plan


def draw_video(
    spec: SyntheticSpec, label: str, split: str, number: int
) -> tuple[VideoDraw, np.random.Generator]:
    """One video's frame count, frame rate and plan, in the order `generate` draws them, and
    its random stream as the frames' drawing continues it."""
    generator = GENERATORS[spec.generator]
    min_frames = spec.min_frames or generator.encoding.min_frames
    max_frames = max(spec.max_frames or generator.encoding.max_frames, min_frames)
    rng = video_rng(spec.seed, label, split, number)
    n = int(rng.integers(min_frames, max_frames + 1))
    fps = float(rng.choice(generator.encoding.frame_rates))
    return VideoDraw(n, fps, generator.plan(spec.kind, label, rng)), rng


def render_frames(kind: str, n_frames: int, rng: np.random.Generator, width=128, height=96):
    """The BGR frames of one `shapes` video of dynamic `kind` (grow, shrink, warm, cool)."""
    plan = SHAPES.plan("order", kind, rng)
    return SHAPES.render(plan, n_frames, rng, width, height)


def generate(out: str | Path, spec: SyntheticSpec | None = None, layout: str = "csv") -> Path:
    """Write a synthetic data set under `out`; returns `out`."""
    spec = spec or SyntheticSpec()
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    generator = GENERATORS[spec.generator]
    encoding = generator.encoding
    out = Path(out)
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for label in generator.classes(spec.kind):
        for split, count in (("train", spec.train_per_class), ("test", spec.test_per_class)):
            folder = out / split if layout == "csv" else out / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw, rng = draw_video(spec, label, split, i)
                name = f"v_{label}_{split}_{i:03d}{encoding.extension}"
                frames = generator.render(draw.plan, draw.frames, rng, spec.width, spec.height)
                write_video(folder / name, frames, draw.fps, encoding.fourcc)
                rows[split].append((name, label))
    if layout == "csv":
        for split, items in rows.items():
            with open(out / f"{split}.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["video_name", "tag"])
                writer.writerows(items)
    info = {"layout": layout, "classes": list(generator.classes(spec.kind)), **asdict(spec)}
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return out
