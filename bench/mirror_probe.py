"""Which order classes do a backbone's features carry? A probe of how each synthetic order
class changes the features over one window, and of what a left-right mirror does to that.

For every video of a generator's order-only classes, the change over a window is the mean of
f(x[t+19]) - f(x[t]) over the video (frames sampled at 25 fps, as the recipes' benchmark).
Printed per class:
- **shared**: the mean cosine between the changes of two different videos of the class. A
  class that the features carry moves them the same way whatever the scene (> 0); near 0,
  each video changes the features its own way and no head can learn the class's direction
  from a handful of videos.
- **mirror**: the mean cosine between a video's change and the change of the same video
  mirrored left-right. For `go_right` the mirrored video is a `go_left` video: a value near
  the unmirrored self-similarity (1) with `shared` near 0 means the features change the same
  way whichever way the figure goes, i.e. the direction is not in them.

    PYTHONPATH=. python bench/mirror_probe.py [--generators crossing,shapes] [--videos 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recipes_synthetic import EMBEDDER, FPS  # noqa: E402
from realtime.backbones.litert import LiteRTBackbone  # noqa: E402
from realtime.frames.video import sampled_frames  # noqa: E402
from training.dataset import load_dataset  # noqa: E402
from training.synthetic import GENERATORS, SyntheticSpec, generate  # noqa: E402

SPAN = 19  # sampled frames between the first and the last frame of a 20-frame window


def window_change(features: np.ndarray) -> np.ndarray:
    """The mean change of the features over one window, over every window of a video."""
    span = min(SPAN, len(features) - 1)
    return (features[span:] - features[:-span]).mean(axis=0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def video_changes(backbone, path) -> tuple[np.ndarray, np.ndarray]:
    """The window change of a video's features and that of its left-right mirror image."""
    frames = sampled_frames(path, backbone.image_size, FPS)  # (N, height, width, 3)
    mirrored = np.ascontiguousarray(frames[:, :, ::-1])
    return tuple(window_change(backbone.extract(f).astype(np.float64)) for f in (frames, mirrored))


def probe(backbone, root: Path) -> list[tuple[str, float, float]]:
    """(label, shared, mirror) for every class of the data set at `root`."""
    data = load_dataset(root)
    rows = []
    for label in data.labels:
        pairs = [video_changes(backbone, v.path) for v in data.videos if v.label == label]
        changes, mirrored = zip(*pairs, strict=True)
        n = len(changes)
        shared = np.mean([cosine(changes[i], changes[j]) for i in range(n) for j in range(i)])
        mirror = np.mean([cosine(c, m) for c, m in zip(changes, mirrored, strict=True)])
        rows.append((label, float(shared), float(mirror)))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generators", default=",".join(GENERATORS))
    p.add_argument("--videos", type=int, default=12, help="videos per class")
    p.add_argument("--data-seed", type=int, default=7000)
    p.add_argument("--out", help="write the table to OUT.md")
    args = p.parse_args()
    if not EMBEDDER.is_file():
        print(f"error: the shared embedder is missing: {EMBEDDER}", file=sys.stderr)
        return 2
    backbone = LiteRTBackbone(EMBEDDER)
    lines = [
        f"<!-- PYTHONPATH=. python bench/mirror_probe.py --videos {args.videos} "
        f"--data-seed {args.data_seed} (features: {EMBEDDER.name}) -->",
        "",
        "| generator | order class | shared | mirror |",
        "|---|---|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as work:
        for name in args.generators.split(","):
            root = Path(work) / name
            generate(root, SyntheticSpec(args.videos, 0, name, "order", seed=args.data_seed))
            for label, shared, mirror in probe(backbone, root):
                lines.append(f"| {name} | {label} | {shared:+.2f} | {mirror:+.2f} |")
                print(lines[-1], flush=True)
    if args.out:
        Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
