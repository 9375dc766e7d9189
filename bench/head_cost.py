"""The GRU head's cost per frame: the seed head (raw features) against the default head
(appearance+change, change from the window's mean; the calibrated scores of how far the
picture moved over the window added to the class scores, from the 56 x 56 thumbnail that ends
each feature vector), the same head without the motion (`--no-motion`, the default before
it), that one measuring change from the window's first frame (the default before that) and
with 64 change directions (the frames' 16, then the changes' 48: `change_basis = both`), all
through `HeadStream` as `python -m realtime` runs them. The thumbnail itself (made beside the
backbone's call, `realtime.backbones.motion.thumbnails`) is timed on its own.

Side by side in one run: the heads take turns in chunks of pushes over the same random
features (the values do not change the work), so a drifting machine load hits both alike;
the figure is the median over chunks of the mean time per push, and the ratio is taken per
chunk. Parameter counts come from the Keras models.

With `--regions`, the `--no-motion` head on 5 x the features (`--pooling regions`: the whole image
and its four quadrants) takes its turns too, and so does the head reading the whole image's
directions then the quadrants' changes (`change_basis = quadrants`, 16 + 32): their "x seed"
is against the seed head on the globally pooled features, in the same chunks.

With `--map`, the `--no-motion` head on `--pooling map` features (the whole image's D, then the
feature map with 32 numbers a position: 7 x 7 for MobileNet v1's 1024-d, 5 x 5 for
InceptionV3's 2048-d), reading the window's trend of where the picture changes
(`realtime.head.where`), takes its turns too.

With `--motion`, the default head whose first GRU reads the motion instead of the class
scores (`--no-motion-scores`, `realtime.head.motion`), the one whose scores also read each
quadrant's motion (`--motion-quadrants`), and with `--map` too the head reading all three,
take their turns.

"layer by layer (before)" is the `--no-motion` head with its GRU layers run one after the other,
as `NumpyHead` did before it ran them as one recurrence (`_Layers`): the same numbers, more
NumPy calls per frame.

    PYTHONPATH=. python bench/head_cost.py [--features 2048 1024] [--chunks 30] [--pushes 200]
        [--regions] [--map] [--motion]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime.backbones.motion import MOTION_SIZE, thumbnails  # noqa: E402
from realtime.backbones.regions import MAP_CHANNELS, Pooling, features_per_channel  # noqa: E402
from realtime.core.optional import import_tensorflow  # noqa: E402
from realtime.head.config import SEED_HEAD, ChangeBasis, ChangeReference  # noqa: E402
from realtime.head.keras import build_head, count_parameters, fit_head_input  # noqa: E402
from realtime.head.numpyhead import HeadStream, NumpyHead  # noqa: E402
from training.recipes import DEFAULT_HEAD  # noqa: E402

WINDOW, CLASSES = 20, 5
THUMB = MOTION_SIZE * MOTION_SIZE  # numbers a thumbnail adds to each feature vector
#: The default head before it read the motion (`--no-motion`), the base of the other rows.
NO_MOTION = replace(DEFAULT_HEAD, motion=0, motion_scores=False)


class LayerByLayer(NumpyHead):
    """The head as `NumpyHead` ran it before its GRU layers became one recurrence."""

    def from_projections(self, projections):
        x = self.steps(projections)
        for i, gru in enumerate(self.grus):
            u = gru.units
            if i:
                x = x @ gru.kernel + gru.input_bias
            h, states = np.zeros(u, np.float32), np.empty((len(x), u), np.float32)
            for t, step in enumerate(x):
                inner = h @ gru.recurrent + gru.recurrent_bias
                zr = gru.recurrent_activation(step[: 2 * u] + inner[: 2 * u])
                candidate = gru.activation(step[2 * u :] + zr[u:] * inner[2 * u :])
                h = candidate + zr[:u] * (h - candidate)
                states[t] = h
            x = states
        x = x[-1] if len(x) else np.zeros(self.grus[-1].units, np.float32)
        for kernel, bias, activation in self.dense:
            x = activation(x @ kernel + bias)
        return x.astype(np.float32, copy=False)


def stream(config, feature_size: int, kind=NumpyHead) -> tuple[HeadStream, dict]:
    """A head's stream, fitted on random windows: the same weights for the same config."""
    import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    model = build_head(WINDOW, feature_size, CLASSES, config)
    windows = np.random.default_rng(0).random((64, WINDOW, feature_size), dtype=np.float32)
    labels = np.arange(64) % CLASSES  # one window per video (the discriminant's classes)
    regions = features_per_channel(Pooling.REGIONS)  # parts, for `quadrants`
    fit_head_input(
        model, config, windows, np.ones((64, WINDOW), bool), np.arange(64), labels, regions
    )
    return HeadStream(kind.from_keras(model), WINDOW), count_parameters(model)


def main() -> int:
    p = argparse.ArgumentParser(description="seed vs default head, ms per frame")
    p.add_argument("--features", type=int, nargs="+", default=[2048, 1024])
    p.add_argument("--chunks", type=int, default=30)
    p.add_argument("--pushes", type=int, default=200)
    p.add_argument("--regions", action="store_true", help="add the default head on 5 x D")
    p.add_argument("--map", action="store_true", help="add the head reading where it changes")
    p.add_argument("--motion", action="store_true", help="add the head reading how far it moved")
    p.add_argument(
        "--members", type=int, nargs="*", default=[], help="add the default head with N members"
    )
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print("| features | head | trainable | fitted | ms per frame | x seed |")
    print("|---:|---|---:|---:|---:|---:|")
    for size in args.features:
        heads = {
            "seed": SEED_HEAD,
            f"default ({size + THUMB}-d: the motion to the scores)": DEFAULT_HEAD,
            "--no-motion, change from the first frame (before)": replace(
                NO_MOTION, change_reference=ChangeReference.FIRST
            ),
            "--no-motion (change from the mean)": NO_MOTION,
            "--no-motion, layer by layer (before)": NO_MOTION,
            "--no-motion:change_basis=both,change_dims=64": replace(
                NO_MOTION, change_basis=ChangeBasis.BOTH, change_dims=64
            ),
            "--no-motion:change_basis=discriminant,change_dims=24": replace(
                NO_MOTION, change_basis=ChangeBasis.DISCRIMINANT, change_dims=24
            ),
        }
        sizes = dict.fromkeys(heads, size)
        sizes[f"default ({size + THUMB}-d: the motion to the scores)"] = size + THUMB
        if args.regions:
            wide = features_per_channel(Pooling.REGIONS) * size
            regions = f"--no-motion --pooling regions ({wide}-d)"
            heads[regions], sizes[regions] = NO_MOTION, wide
            quadrants = (
                f"--no-motion:pooling=regions,change_basis=quadrants,change_dims=32 ({wide}-d)"
            )
            heads[quadrants] = replace(
                NO_MOTION, change_basis=ChangeBasis.QUADRANTS, change_dims=32
            )
            sizes[quadrants] = wide
        if args.map:
            shape = (7, 7, MAP_CHANNELS) if size <= 1024 else (5, 5, MAP_CHANNELS)
            mapped = size + int(np.prod(shape))
            where = f"--no-motion --pooling map, where it changes ({mapped}-d)"
            heads[where] = replace(NO_MOTION, where_trend=True, map_shape=shape)
            sizes[where] = mapped
            moved = f"--no-motion --pooling map, where it changes and how far it moved ({mapped}-d)"
            heads[moved] = replace(heads[where], where_shift=True)
            sizes[moved] = mapped
        if args.motion:
            name = f"--no-motion-scores: the motion into the GRU ({size + THUMB}-d)"
            heads[name], sizes[name] = replace(DEFAULT_HEAD, motion_scores=False), size + THUMB
            name = f"--motion-quadrants: each quadrant's to the scores too ({size + THUMB}-d)"
            heads[name] = replace(DEFAULT_HEAD, motion_quadrants=True)
            sizes[name] = size + THUMB
            if args.map:
                shape = (7, 7, MAP_CHANNELS) if size <= 1024 else (5, 5, MAP_CHANNELS)
                wide = size + int(np.prod(shape)) + THUMB
                name = f"--pooling map --no-motion-scores, all three ({wide}-d)"
                heads[name] = replace(
                    NO_MOTION,
                    where_trend=True,
                    where_shift=True,
                    map_shape=shape,
                    motion=MOTION_SIZE,
                )
                sizes[name] = wide
        for count in args.members:
            name = f"default, {count} members ({size + THUMB}-d)"
            heads[name], sizes[name] = replace(DEFAULT_HEAD, members=count), size + THUMB
        built = {
            name: stream(
                config, sizes[name], LayerByLayer if "layer by layer" in name else NumpyHead
            )
            for name, config in heads.items()
        }
        inputs = {d: rng.random((args.pushes, d), dtype=np.float32) for d in set(sizes.values())}
        last = {}
        for name, (head_stream, _) in built.items():  # warm up and fill the window
            for feature in inputs[sizes[name]][:WINDOW]:
                last[name] = head_stream.push(feature)
        # the same weights and features: the same probabilities, whichever way the layers run
        np.testing.assert_allclose(
            last["--no-motion, layer by layer (before)"],
            last["--no-motion (change from the mean)"],
            1e-5,
        )
        per_chunk = {name: [] for name in heads}
        for chunk in range(args.chunks):
            order = list(heads) if chunk % 2 == 0 else list(heads)[::-1]
            for name in order:
                head_stream = built[name][0]
                features = inputs[sizes[name]]
                start = time.perf_counter()
                for feature in features:
                    head_stream.push(feature)
                per_chunk[name].append(1000 * (time.perf_counter() - start) / args.pushes)
        seed_ms = np.array(per_chunk["seed"])
        for name in heads:
            ms = np.array(per_chunk[name])
            params = built[name][1]
            print(
                f"| {size} | {name} | {params['trainable']:,} | {params['fitted']:,} "
                f"| {np.median(ms):.3f} | {np.median(ms / seed_ms):.2f} |",
                flush=True,
            )
    # every default model's features end with a thumbnail, made beside the backbone's call
    frames = rng.integers(0, 256, (args.pushes, 224, 224, 3), dtype=np.uint8)
    times = []
    for _ in range(args.chunks):
        start = time.perf_counter()
        for frame in frames:
            thumbnails(frame[None], MOTION_SIZE)
        times.append(1000 * (time.perf_counter() - start) / args.pushes)
    print(f"\n{MOTION_SIZE}x{MOTION_SIZE} thumbnail of a 224x224 frame: {np.median(times):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
