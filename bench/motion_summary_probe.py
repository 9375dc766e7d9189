"""Scratch probe (docs/training.md, "How the parts move, added after training"): the motion's
linear discriminant alone, per summary of the 20 quadrant numbers, on a bench's sets.

Training windows as training makes them (8 a video, every 5 sampled frames); test: the first
window and every phase. Per summary: accuracy on the training windows, first window, every
phase, and the calibration's temperature. Run from the checkout:
`PYTHONPATH=. python bench/motion_summary_probe.py rooms-order,clips 3300 WORK` (WORK: the
bench's --work, whose sets and features it reads or makes).
"""

import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.recipes_synthetic import DEFAULT, clips_set, recipe_backbone, synthetic_set
from realtime.head.fitting import calibrate_motion_scores, fit_motion_scores, fit_where_scale
from realtime.head.motion import quadrant_summary, window_motion
from training.train import window_starts

W, G = 20, 56


def numbers(frames, starts):
    thumbs = np.stack([one(frames, s) for s in starts])
    masks = np.stack([mask(frames, s) for s in starts])
    return window_motion(thumbs.reshape(len(starts), W, G, G), masks, quadrants=True)


def one(frames, s):
    out = np.zeros((W, G * G), np.float32)
    chunk = frames[s : s + W, -G * G :]
    out[: len(chunk)] = chunk
    return out


def mask(frames, s):
    m = np.zeros(W, bool)
    m[: len(frames[s : s + W])] = True
    return m


def describe(n, kind):
    """(N, 20) motion numbers -> one summary of them (`KINDS`); the 12 are the product's
    `quadrant_summary`: the whole's 4, the quadrants' summed, divergence, curl."""
    whole, q = n[:, :4], n[:, 4:].reshape(len(n), 4, 4)  # quadrant, (xp, yp, xa, ya)
    parts = n @ quadrant_summary()
    # the quadrant that moves most (by path length proxy |sum|), its motion
    mag = np.abs(q[:, :, 0]) + np.abs(q[:, :, 1])
    top = q[np.arange(len(q)), mag.argmax(1)]
    return {
        "whole4": whole,
        "quad20": n,
        "sum8": parts[:, :8],
        "sumdiv12": parts,
        "div8": np.concatenate([whole, parts[:, 8:]], 1),
        "top8": np.concatenate([whole, top], 1),
    }[kind]


KINDS = ["whole4", "quad20", "sum8", "sumdiv12", "div8", "top8"]


def run(data):
    xs, ys = data["train"]
    groups = data["train_groups"]
    tr, ty, tg = [], [], []
    for i, (f, y) in enumerate(zip(xs, ys, strict=True)):
        starts = window_starts(len(f), W, 5, 8)
        n = numbers(f, starts)
        tr.append(n)
        ty += [y] * len(n)
        tg += [str(groups[i])] * len(n)
    tr, ty, tg = np.concatenate(tr), np.array(ty), np.array(tg)
    xt, yt = data["test"]
    first = np.concatenate([numbers(f, [0]) for f in xt])
    anyw, anyy = [], []
    for f, y in zip(xt, yt, strict=True):
        st = list(range(0, max(len(f) - W, 0) + 1))
        anyw.append(numbers(f, st))
        anyy += [y] * len(st)
    anyw, anyy, yt = np.concatenate(anyw), np.array(anyy), np.array(yt)
    C = len(data["labels"])
    out = {}
    for k in KINDS:
        a, b, c = describe(tr, k), describe(first, k), describe(anyw, k)
        scale = fit_where_scale(a, np.ones((len(a), 2), bool))
        a, b, c = a * scale, b * scale, c * scale
        shrunk = a.shape[1] > 4
        kern, bias = fit_motion_scores(a, ty, C, shrunk)
        t = calibrate_motion_scores(a, ty, tg, C, shrunk)
        out[k] = (
            100 * ((a @ kern + bias).argmax(1) == ty).mean(),
            100 * ((b @ kern + bias).argmax(1) == yt).mean(),
            100 * ((c @ kern + bias).argmax(1) == anyy).mean(),
            t,
        )
    return out


def main():
    sets = sys.argv[1].split(",")
    seed = int(sys.argv[2])
    work = Path(sys.argv[3])
    console = Console(stderr=True, quiet=True)
    backbone = recipe_backbone(DEFAULT)
    args = Namespace(data_seed=seed, train_per_class=12, test_per_class=12)
    print("set | " + " | ".join(f"{k} fit/first/any/t" for k in KINDS))
    for name in sets:
        data = (
            clips_set(backbone, console, W, seed)
            if name == "clips"
            else synthetic_set(work, name, args, backbone, console)
        )
        r = run(data)
        print(
            name
            + " | "
            + " | ".join(f"{v[0]:.0f}/{v[1]:.1f}/{v[2]:.1f}/{v[3]:.2f}" for v in r.values()),
            flush=True,
        )


if __name__ == "__main__":
    main()
