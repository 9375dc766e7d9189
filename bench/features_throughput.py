"""Feature extraction: `training features` versus the Keras example's per-frame loop.

Side by side in one run, on the same videos, for each backbone:

- example: the Keras example's `load_video` (decode *every* frame of the video, crop, resize,
  BGR->RGB) then one `feature_extractor.predict(frame[None])` call per frame for the first 20
  frames (for LiteRT: one `extract(frame[None])` call per frame);
- training: `training.features.extract_features` (decode only the frames the window needs,
  sampled by the runtime's SamplingClock, `realtime.frames.preprocessing`, batched backbone calls).

InceptionV3 runs with *random* weights (weights=None): the ImageNet weights cannot be
downloaded on this machine. Throughput does not depend on the weight values; both sides are
built with the same seed, so their features are also compared.

    PYTHONPATH=. python bench/features_throughput.py [--videos 6] [--frames 150]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime.backbones.conversion import relative_errors  # noqa: E402
from realtime.core.optional import import_tensorflow  # noqa: E402
from training.features import extract_features  # noqa: E402
from training.synthetic import render_frames, write_video  # noqa: E402

MAX_SEQ_LENGTH = 20
IMG_SIZE = 224
EMBEDDER = (
    ROOT.parent / "shared" / "models" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
)
CLIPS = ROOT.parent / "shared" / "clips"


# --- the Keras example's code (for comparison; training/ uses realtime.frames.preprocessing) ---
def example_crop_center_square(frame):
    y, x = frame.shape[0:2]
    min_dim = min(y, x)
    start_x = (x // 2) - (min_dim // 2)
    start_y = (y // 2) - (min_dim // 2)
    return frame[start_y : start_y + min_dim, start_x : start_x + min_dim]


def example_load_video(path, max_frames=0, resize=(IMG_SIZE, IMG_SIZE)):
    cap = cv2.VideoCapture(path)
    frames = []
    try:
        while True:
            ret, frame = cap.read()
            if not ret:
                break
            frame = example_crop_center_square(frame)
            frame = cv2.resize(frame, resize)
            frame = frame[:, :, [2, 1, 0]]
            frames.append(frame)
            if len(frames) == max_frames:
                break
    finally:
        cap.release()
    return np.array(frames)


def example_features(paths, predict_one, feature_size):
    """prepare_all_videos' inner loop: whole video decoded, one predict per frame."""
    out = []
    for path in paths:
        frames = example_load_video(str(path))[None, ...]
        features = np.zeros((1, MAX_SEQ_LENGTH, feature_size), np.float32)
        for i, batch in enumerate(frames):
            length = min(MAX_SEQ_LENGTH, batch.shape[0])
            for j in range(length):
                features[i, j, :] = predict_one(batch[None, j, :])
        out.append(features[0])
    return out


def build_example_inception():
    import keras

    keras.utils.set_random_seed(0)
    feature_extractor = keras.applications.InceptionV3(
        weights=None, include_top=False, pooling="avg", input_shape=(IMG_SIZE, IMG_SIZE, 3)
    )
    preprocess_input = keras.applications.inception_v3.preprocess_input
    inputs = keras.Input((IMG_SIZE, IMG_SIZE, 3))
    outputs = feature_extractor(preprocess_input(inputs))
    return keras.Model(inputs, outputs, name="feature_extractor")


def make_videos(folder: Path, count: int, frames: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        kind = ("grow", "shrink", "warm", "cool")[i % 4]
        path = folder / f"v_{i:02d}.avi"
        write_video(path, render_frames(kind, frames, rng, 320, 240), 25.0)
        paths.append(path)
    return paths


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def compare(name, paths, example_fn, training_fn, note=""):
    # warm-up both (graph tracing, interpreter allocation) on one video
    example_fn(paths[:1])
    training_fn(paths[:1])
    ex, t_ex = timed(lambda: example_fn(paths))
    tr, t_tr = timed(lambda: training_fn(paths))
    n = sum(min(MAX_SEQ_LENGTH, len(f)) for f in tr)
    diff = max(float(np.abs(a[: len(b)] - b).max()) for a, b in zip(ex, tr, strict=True))
    rel = max(float(relative_errors(b, a[: len(b)]).max()) for a, b in zip(ex, tr, strict=True))
    row = {
        "backbone": name,
        "frames": n,
        "example_fps": n / t_ex,
        "training_fps": n / t_tr,
        "ratio": t_ex / t_tr,
        "max_abs_feature_diff": diff,
        "max_rel_feature_error": rel,
        "note": note,
    }
    print(
        f"{name:<28} {n:>6} {row['example_fps']:>12.1f} {row['training_fps']:>13.1f} "
        f"{row['ratio']:>6.2f}x   max |diff| {diff:.2g}, relative {rel:.2%}  {note}",
        flush=True,
    )
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=150, help="frames per video (320x240, 25 fps)")
    p.add_argument("--skip-inception", action="store_true")
    p.add_argument(
        "--backends",
        nargs="+",
        default=["auto"],
        help="fast-path backends, one row each (openvino-int8 is calibrated on ../shared/clips "
        "when present, else on the synthetic videos)",
    )
    args = p.parse_args()
    import_tensorflow()
    from rich.console import Console

    quiet = Console(quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_videos(Path(tmp), args.videos, args.frames)
        print(
            f"{args.videos} videos x {args.frames} frames (320x240, 25 fps); first "
            f"{MAX_SEQ_LENGTH} frames of each go to the backbone"
        )
        print(f"{'backbone':<28} {'frames':>6} {'example f/s':>12} {'training f/s':>13} ratio")

        def training(backbone):
            def run(ps):
                fs = extract_features(ps, backbone, 25.0, MAX_SEQ_LENGTH, None, quiet)
                return [fs.features[p] for p in ps]

            return run

        if EMBEDDER.is_file():
            from realtime.backbones.litert import LiteRTBackbone

            lite = LiteRTBackbone(EMBEDDER)
            compare(
                "litert mobilenet_v1 (1024-d)",
                paths,
                lambda ps: example_features(ps, lambda x: lite.extract(x)[0], lite.feature_size),
                training(lite),
                "LiteRT runs one frame per invoke either way",
            )
        if not args.skip_inception:
            from realtime.backbones.keras import KerasInceptionV3

            example_model = build_example_inception()

            def example_inception(ps):
                return example_features(ps, lambda x: example_model.predict(x, verbose=0)[0], 2048)

            import keras

            keras.utils.set_random_seed(0)
            ours = KerasInceptionV3(weights=None)
            compare(
                "inception_v3 random weights",
                paths,
                example_inception,
                training(ours),
                "weights=None: ImageNet weights cannot be downloaded here",
            )
            # the same random weights through the fast path `training features` uses by
            # default (--backend auto: converted once from the Keras model, then cached)
            from realtime.backbones import load_backbone

            weights = Path(tmp) / "inception_random.weights.h5"
            ours.keras_model.save_weights(str(weights))
            for backend in args.backends:
                calibration = None
                if backend == "openvino-int8":
                    calibration = [str(CLIPS)] if CLIPS.is_dir() else [str(p) for p in paths]
                fast = load_backbone(
                    "inception_v3",
                    str(weights),
                    backend=backend,
                    cache_dir=tmp,
                    calibration=calibration,
                )
                compare(
                    f"inception_v3 --backend {backend}",
                    paths,
                    example_inception,
                    training(fast),
                    f"ran on {getattr(fast, 'backend', '?')}",
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
