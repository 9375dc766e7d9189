"""How many windows of each synthetic order set show the action at all? (no model involved)

A window can only be told from its mirror class by order if the action moves inside it. Some
generators hold their variables still at the ends of each video (`blinds` 10 %, `rooms` 25 %),
so some windows, and at the start of a video some *first* windows, show no change at all:
there only a shortcut (how the start of a video looks) can tell the class, and the
first-window accuracy a recipe can reach without one is bounded accordingly.

For every generator's `order` test videos (the same random draws `training synth` makes:
frame count, frame rate, class) this replays the moving variable's path, samples it with the
runtime's `SamplingClock` at 25 fps exactly as training and evaluation do, and counts the
windows (20 sampled frames) in which the variable travels at least `--travel` of its range:
the first window of each video, and every window (stride 1, the any-phase protocol; per video,
then the mean over videos). Only the generator's state path is used: motion a generator
draws on top of it (the flag's pulls in `outdoors`) is not seen.

    PYTHONPATH=. python bench/window_motion.py [--data-seed 2000] [--videos 48]
        [--travel 0.05,0.15] [--out bench/results/window_motion.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime.frames.clock import SamplingClock  # noqa: E402
from training.recipes import DEFAULT  # noqa: E402
from training.synthetic import GENERATORS, SyntheticSpec, draw_video  # noqa: E402

FPS = DEFAULT.fps  # what the default recipe samples and windows, as training does
WINDOW = DEFAULT.window


def travels(generator: str, label: str, seed: int, number: int) -> list[float]:
    """How far the moving variable travels in each window of one `order` test video, first
    window first (one value when the video is no longer than a window)."""
    draw, _ = draw_video(SyntheticSpec(generator=generator, seed=seed), label, "test", number)
    path = GENERATORS[generator].progress(draw.frames)
    if not draw.plan.dynamic.rising:
        path = path[::-1]  # a mirror video plays the rising one backwards
    clock = SamplingClock(FPS)
    sampled = path[[i for i in range(draw.frames) if clock.admit(i / draw.fps)]]
    starts = range(max(len(sampled) - WINDOW, 0) + 1)
    return [float(np.ptp(sampled[s : s + WINDOW])) for s in starts]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-seed", type=int, default=2000)
    p.add_argument("--videos", type=int, default=48, help="test videos per class")
    p.add_argument("--travel", default="0.05,0.15", help="shares of the range, comma-separated")
    p.add_argument("--out", help="write the table to OUT (.md)")
    args = p.parse_args()
    thresholds = [float(t) for t in args.travel.split(",")]
    head = " | ".join(f"first window, >= {t:g} | any phase, >= {t:g}" for t in thresholds)
    lines = [
        f"<!-- PYTHONPATH=. python bench/window_motion.py --data-seed {args.data_seed} "
        f"--videos {args.videos} --travel {args.travel} -->",
        "",
        f"| generator | {head} |",
        "|---|" + "---:|" * (2 * len(thresholds)),
    ]
    for name, generator in GENERATORS.items():
        per_video = [
            travels(name, label, args.data_seed, i)
            for label in generator.classes("order")
            for i in range(args.videos)
        ]
        cells = []
        for t in thresholds:
            first = np.mean([v[0] >= t for v in per_video])
            every = np.mean([np.mean(np.array(v) >= t) for v in per_video])
            cells += [f"{100 * first:.1f}", f"{100 * every:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"% of the `order` test videos' windows ({WINDOW} frames sampled at {FPS:g} fps) in "
        "which the moving variable travels at least that share of its range; "
        f"{args.videos} test videos per class, data seed {args.data_seed}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
