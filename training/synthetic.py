"""A synthetic action data set whose classes differ only in the order of change over time.

Each video shows one shape over a noisy background. Four classes:

- `grow` / `shrink`: the shape's size goes small -> large, or large -> small;
- `warm` / `cool`: its colour goes blue -> orange, or orange -> blue.

Every class of a pair shows the same set of frames, only in the opposite order, so no single
frame and no order-blind average of frames tells the pair apart: a classifier must read the
order of the frames. (Direction of motion would be a poor choice of class: average-pooled CNN
features largely ignore *where* things are; size and colour survive pooling.)

Per video, the background texture, shape kind, position, start and end size or colour, length
and frame rate are random (seeded, so a data set is reproducible). Videos are written with
OpenCV (MJPG .avi), in the Keras example's layout (`train.csv` / `test.csv` with
`video_name,tag`, videos in `train/` and `test/`, listed class by class) or one folder per class.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("cool", "grow", "shrink", "warm")
#: BGR end points of the colour classes (jittered per video).
BLUE = np.array([150.0, 30.0, 10.0])
ORANGE = np.array([40.0, 220.0, 250.0])
LAYOUTS = ("csv", "folders")


@dataclass
class SyntheticSpec:
    """How big a synthetic data set to write."""

    train_per_class: int = 8
    test_per_class: int = 3
    classes: tuple[str, ...] = CLASSES
    width: int = 128
    height: int = 96
    min_frames: int = 36
    max_frames: int = 48
    frame_rates: tuple[float, ...] = (25.0, 30.0)
    seed: int = 0


def render_frames(kind: str, n_frames: int, rng: np.random.Generator, width=128, height=96):
    """The BGR frames of one video of class `kind`."""
    if kind not in CLASSES:
        raise ValueError(f"unknown synthetic class {kind!r}")
    background = rng.integers(0, 70, (height, width, 3)).astype(np.uint8)
    background = cv2.GaussianBlur(background, (0, 0), 6)
    side = min(width, height)  # keep the shape inside the centre square the model sees
    cx = width // 2 + int(rng.integers(-side // 8, side // 8 + 1))
    cy = height // 2 + int(rng.integers(-side // 8, side // 8 + 1))
    circle = bool(rng.integers(0, 2))
    small, large = rng.uniform(0.06, 0.1) * side, rng.uniform(0.3, 0.38) * side
    jitter = rng.uniform(-15, 15, 3)
    blue, orange = np.clip(BLUE + jitter, 0, 255), np.clip(ORANGE + jitter, 0, 255)
    fixed_colour = blue if rng.integers(0, 2) else orange
    fixed_size = rng.uniform(0.3, 0.4) * side
    frames = []
    for i in range(n_frames):
        s = i / max(n_frames - 1, 1)  # 0 -> 1 over the video
        size, colour = fixed_size, fixed_colour
        if kind == "grow":
            size = small + (large - small) * s
        elif kind == "shrink":
            size = large + (small - large) * s
        elif kind == "warm":
            colour = blue + (orange - blue) * s
        elif kind == "cool":
            colour = orange + (blue - orange) * s
        frame = background.copy()
        noise = rng.integers(0, 12, frame.shape, dtype=np.uint8)
        cv2.add(frame, noise, dst=frame)
        bgr = tuple(int(c) for c in colour)
        r = max(int(round(size)), 1)
        if circle:
            cv2.circle(frame, (cx, cy), r, bgr, -1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(frame, (cx - r, cy - r), (cx + r, cy + r), bgr, -1)
        frames.append(frame)
    return frames


def write_video(path: Path, frames, fps: float) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def generate(out: str | Path, spec: SyntheticSpec | None = None, layout: str = "csv") -> Path:
    """Write a synthetic data set under `out`; returns `out`."""
    spec = spec or SyntheticSpec()
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    out = Path(out)
    rng = np.random.default_rng(spec.seed)
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for kind in spec.classes:
        counts = {"train": spec.train_per_class, "test": spec.test_per_class}
        for split, count in counts.items():
            for i in range(count):
                name = f"v_{kind}_{split}_{i:03d}.avi"
                if layout == "csv":
                    folder = out / split
                else:
                    folder = out / split / kind
                folder.mkdir(parents=True, exist_ok=True)
                n = int(rng.integers(spec.min_frames, spec.max_frames + 1))
                fps = float(rng.choice(spec.frame_rates))
                frames = render_frames(kind, n, rng, spec.width, spec.height)
                write_video(folder / name, frames, fps)
                rows[split].append((name, kind))
    if layout == "csv":
        for split, items in rows.items():
            with open(out / f"{split}.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["video_name", "tag"])
                writer.writerows(items)
    return out
