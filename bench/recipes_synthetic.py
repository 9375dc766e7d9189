"""Seed recipe versus default recipe (and the steps between) on the synthetic action set.

The synthetic classes (grow / shrink / warm / cool) differ only in the order of change over
time. Features come from the shared LiteRT MobileNet embedder (../shared/models), extracted
once and cached; each recipe is then trained with several seeds and evaluated on held-out
videos two ways:

- first window: the first 20 sampled frames of each test video (the example's protocol, and
  what `training evaluate` reports);
- any window: every window (stride 5) of each test video, i.e. the action seen at the
  phases a live stream shows it.

    PYTHONPATH=. python bench/recipes_synthetic.py [--train-per-class 12] [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from realtime.backbones import LiteRTBackbone  # noqa: E402
from training.dataset import load_dataset  # noqa: E402
from training.evaluate import first_windows  # noqa: E402
from training.features import FeatureCache, extract_features  # noqa: E402
from training.recipes import DEFAULT, SEED  # noqa: E402
from training.synthetic import SyntheticSpec, generate  # noqa: E402
from training.train import make_windows, train_head  # noqa: E402

EMBEDDER = (
    ROOT.parent / "shared" / "models" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
)

VARIANTS = [
    ("seed (the example)", SEED),
    ("seed + per-class val split", replace(SEED, stratified_validation=True)),
    (
        "+ 8 windows/video (stride 5)",
        replace(SEED, stratified_validation=True, windows_per_video=8, stride=5),
    ),
    ("+ <=60 epochs, early stop (>=20) = default", DEFAULT),
    ("default, 1 window/video", replace(DEFAULT, windows_per_video=1)),
    (
        "default, example's val split",
        replace(DEFAULT, stratified_validation=False, validation_split=0.3),
    ),
]


def main() -> int:
    p = argparse.ArgumentParser(description="seed vs default recipe on synthetic data")
    p.add_argument("--train-per-class", type=int, default=12)
    p.add_argument("--test-per-class", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3, help="training seeds per recipe")
    p.add_argument("--data", help="reuse/keep the synthetic set here (default: a temp folder)")
    args = p.parse_args()
    if not EMBEDDER.is_file():
        print(f"needs {EMBEDDER}", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    quiet = Console(quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data or Path(tmp) / "synthetic")
        if not (root / "train.csv").exists():
            spec = SyntheticSpec(args.train_per_class, args.test_per_class, seed=2)
            generate(root, spec)
        data = load_dataset(root)
        backbone = LiteRTBackbone(EMBEDDER)
        cache = FeatureCache(root / ".features", backbone.describe(), backbone.image_size, 25.0)
        feats = extract_features(data.videos, backbone, 25.0, DEFAULT.frames_needed, cache, console)
        train, test = data.split("train"), data.split("test")
        x = [feats.features[v.path] for v in train]
        y = [data.labels.index(v.label) for v in train]
        xt = [feats.features[v.path] for v in test]
        yt = np.array([data.labels.index(v.label) for v in test])
        first_f, first_m = first_windows(xt, 20)
        every = make_windows(xt, list(yt), replace(DEFAULT, windows_per_video=100))
        print(
            f"synthetic set: {len(train)} train / {len(test)} test videos, "
            f"{len(data.labels)} classes {data.labels}; "
            f"{len(every)} test windows; {args.seeds} training seeds per recipe"
        )
        print(f"{'recipe':<42} {'first window':>16} {'any window':>16} {'epochs':>7}")
        for name, base in VARIANTS:
            firsts, anys, epochs = [], [], []
            for s in range(args.seeds):
                recipe = replace(base, seed=s)
                result = train_head(make_windows(x, y, recipe), len(data.labels), recipe, quiet)
                head = result.head
                firsts.append((head.predict([first_f, first_m], verbose=0).argmax(1) == yt).mean())
                p_all = head.predict([every.features, every.masks], verbose=0).argmax(1)
                anys.append((p_all == every.targets).mean())
                epochs.append(result.history["epochs_run"])
            print(
                f"{name:<42} {np.mean(firsts):>7.1%} ± {np.std(firsts):>4.1%}   "
                f"{np.mean(anys):>7.1%} ± {np.std(anys):>4.1%} {np.mean(epochs):>7.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
