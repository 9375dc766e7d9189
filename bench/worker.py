"""One benchmark variant, run in its own process: `python -m bench.worker VARIANT ...`.

Prints one JSON object (its measurements) as the last line of stdout. Variants:

- `prepare`: make the bench's InceptionV3 weights file (random, seeded; or use the file given),
  a model directory with an untrained head, a synthetic video; convert and check backends.
- `example`: the Keras example's loop, per frame: `feature_extractor.predict(frame)` then
  `sequence_model.predict(window)`.
- `naive`: per frame, recompute the whole 20-frame window through the backbone (one batch
  call, tf.function) and run the head: what a clip-based demo does.
- `pipeline`: our pipeline (`realtime.stream.pipeline.Pipeline`: capture thread, FrameRing, one
  backbone call per frame, streaming NumPy head, JSONL sink) on `--backend`: every-frame
  replay (throughput) and paced replay at the file's frame rate (frame age, drops, CPU).
- `soak`: paced replay of a looped file for `--seconds`, sampling the resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

WINDOW = 20
LABELS = ["ApplyEyeMakeup", "Biking", "CricketShot", "PlayingCello", "Punch"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class CpuWatch:
    """Process CPU time (all threads) over a span of wall time, in cores (1.0 = one core)."""

    def __enter__(self):
        self._cpu = sum(os.times()[:2])
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cores = (sum(os.times()[:2]) - self._cpu) / self.wall if self.wall > 0 else 0.0


def _frames(path: Path, limit: int, image_size: int = 224):
    """(raw BGR frames, preprocessed) of the first `limit` frames of a video."""
    from realtime.frames.preprocessing import preprocess_frame
    from realtime.frames.sources import open_source

    source = open_source(str(path))
    raw = []
    try:
        while len(raw) < limit:
            frame = source.read()
            if frame is None:
                break
            raw.append(frame)
    finally:
        source.release()
    return raw, np.stack([preprocess_frame(f, image_size) for f in raw])


def _median_ms(fn, calls: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def prepare(args) -> dict:
    from realtime.backbones.base import BACKENDS, INT8
    from realtime.backbones.conversion import InceptionBackends, availability
    from realtime.backbones.int8 import CalibrationSet
    from realtime.core.optional import import_tensorflow

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    weights = Path(args.weights) if args.weights else work / "inception_v3_random_seed0.weights.h5"
    import_tensorflow()
    import keras

    if not weights.is_file():
        keras.utils.set_random_seed(0)
        model = keras.applications.InceptionV3(
            include_top=False, weights=None, pooling="avg", input_shape=(224, 224, 3)
        )
        model.save_weights(str(weights))
    backends = InceptionBackends(weights, cache_dir=args.cache_dir)
    model_dir = work / f"model-{backends.identity.name.replace('/', '_')}-default-head"
    if not (model_dir / "metadata.json").is_file():
        from realtime.head.keras import build_head, fit_head_input
        from realtime.head.modeldir import ModelInfo, save_model_dir
        from training.recipes import DEFAULT_HEAD

        keras.utils.set_random_seed(0)
        head = build_head(WINDOW, 2048, len(LABELS), DEFAULT_HEAD)  # the default recipe's
        rng = np.random.default_rng(0)  # input statistics of random features: the same work
        windows = rng.random((64, WINDOW, 2048), dtype=np.float32)
        videos, classes = np.arange(64), np.arange(64) % len(LABELS)  # a window per video
        fit_head_input(head, DEFAULT_HEAD, windows, np.ones((64, WINDOW), bool), videos, classes)
        info = ModelInfo(
            labels=LABELS,
            window=WINDOW,
            image_size=224,
            backbone=backends.identity,
            sampling={"fps": 25.0},
            head=DEFAULT_HEAD,
        )
        save_model_dir(model_dir, head, info)
    synthetic = work / "synthetic_320x240_25fps.avi"
    if not synthetic.is_file():
        _write_synthetic(synthetic, frames=300)
    calibration = args.calibration or [str(synthetic)]
    checks, conversion = {}, {}
    for backend in args.backends:
        if backend not in BACKENDS or backend in ("keras", "xla") or availability(backend):
            continue
        started = time.perf_counter()
        if backend == INT8:
            backends.calibration = CalibrationSet.from_videos(calibration)
        checks[backend] = backends.prepare(backend).as_dict()
        conversion[backend] = round(time.perf_counter() - started, 1)
        if backend == INT8:
            checks[backend]["head_top1_agreement"] = _int8_head_agreement(backends, model_dir)
    return {
        "weights": str(weights),
        "backbone": backends.identity.name,
        "model": str(model_dir),
        "synthetic": str(synthetic),
        "checks": checks,
        "prepare_s": conversion,
        "availability": {b: availability(b) for b in BACKENDS},
        "calibration": calibration,
    }


def _int8_head_agreement(backends, model_dir: Path) -> float:
    """Top-1 agreement of the bench's head on int8 vs fp32 features of held-out frames."""
    from realtime.backbones.base import INT8
    from realtime.backbones.int8 import held_out_head_agreement
    from realtime.head.classifier import ActionClassifier

    share, _ = held_out_head_agreement(backends.folder(INT8), ActionClassifier(model_dir))
    return round(share, 4)


def _write_synthetic(path: Path, frames: int) -> None:
    """Moving shapes over a textured background, 320x240 at 25 fps (MJPG)."""
    import cv2

    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
    for i in range(frames):
        frame = background.copy()
        x = int(20 + 260 * (0.5 + 0.5 * np.sin(i / 15)))
        cv2.circle(frame, (x, 120), 30, (40, 200, 240), -1)
        cv2.rectangle(frame, (i * 3 % 300, 30), (i * 3 % 300 + 25, 70), (200, 60, 30), -1)
        writer.write(frame)
    writer.release()


def _keras_parts(args):
    """The Keras InceptionV3 backbone and the classifier (its Keras head model inside)."""
    from realtime.backbones.keras import KerasInceptionV3
    from realtime.head.classifier import ActionClassifier

    backbone = KerasInceptionV3(args.weights)
    classifier = ActionClassifier(args.model)
    return backbone, classifier


def example(args) -> dict:
    """The Keras example's per-frame loop (predict for features, predict for the head)."""
    from realtime.frames.preprocessing import preprocess_frame

    backbone, classifier = _keras_parts(args)
    extractor, head = backbone.keras_model, classifier.model
    window = []

    def step(frame):
        x = preprocess_frame(frame, 224)[None].astype(np.float32) / 127.5 - 1.0
        window.append(extractor.predict(x, verbose=0)[0])
        del window[:-WINDOW]
        features = np.zeros((1, WINDOW, 2048), np.float32)
        features[0, : len(window)] = window
        mask = (np.arange(WINDOW) < len(window))[None]
        return head.predict([features, mask], verbose=0)

    results = {}
    for path in args.input:
        raw, pre = _frames(Path(path), args.frames)
        bare = _median_ms(lambda pre=pre: backbone.extract(pre[:1]), args.bare_calls)
        step(raw[0])  # the first call builds predict's function; not counted
        window.clear()
        results[path] = _timed_steps(step, raw, bare)
    return results


def naive(args) -> dict:
    """Per frame: the backbone over the whole window again (batch of up to 20), then the head."""
    from realtime.frames.preprocessing import preprocess_frame

    backbone, classifier = _keras_parts(args)
    backbone.batch_size = WINDOW
    images = []

    def step(frame):
        images.append(preprocess_frame(frame, 224))
        del images[:-WINDOW]
        feats = backbone.extract(np.stack(images))
        window = np.zeros((WINDOW, 2048), np.float32)
        window[: len(feats)] = feats
        mask = np.arange(WINDOW) < len(feats)
        return classifier.keras_probabilities(window[None], mask[None])

    results = {}
    for path in args.input:
        raw, pre = _frames(Path(path), max(args.frames, WINDOW))
        bare = _median_ms(lambda pre=pre: backbone.extract(pre[:1]), args.bare_calls)
        backbone.extract(pre[:WINDOW])  # the full-window batch, once before timing
        images[:] = list(pre[: WINDOW - 1])  # measure full windows (the steady state)
        raw = raw[: args.frames]
        results[path] = _timed_steps(step, raw, bare)
    return results


def _backbone(args):
    """InceptionV3 on `--backend` (int8: calibrated on `--calibration`)."""
    from realtime.backbones import load_backbone

    return load_backbone(
        "inception_v3",
        args.weights,
        backend=args.backend,
        cache_dir=args.cache_dir,
        calibration=args.calibration if args.backend == "openvino-int8" else None,
    )


def pipeline(args) -> dict:
    from realtime.frames.sources import open_source
    from realtime.head.classifier import ActionClassifier
    from realtime.outputs.text import JsonlSink
    from realtime.stream.pipeline import Pipeline, RunSettings

    backbone = _backbone(args)
    classifier = ActionClassifier(args.model)

    def run(path, every_frame: bool, max_frames: int | None):
        settings = RunSettings(every_frame=every_frame, max_frames=max_frames)
        sinks = [JsonlSink(os.devnull)]
        pipe = Pipeline.single(open_source(path), backbone, classifier, settings, sinks)
        pipe.warm_up()
        with CpuWatch() as cpu:
            pipe.cameras[0].capture.start()  # Pipeline.start() without its warm-up call
            pipe.engine.start()
            pipe.wait()
        problems = pipe.close()
        if problems:
            raise RuntimeError("; ".join(problems))
        return pipe, cpu

    results = {}
    for path in args.input:
        _, pre = _frames(Path(path), 8)
        # Bare calls and pipeline runs alternate in chunks and the ratio is taken per chunk,
        # so that load from other processes (which drifts) hits both sides of each ratio.
        chunk = max(args.frames // args.chunks, 10)
        bares, costs, ratios, cores, stages, classified = [], [], [], [], [], 0
        for _ in range(args.chunks):
            bare = _median_ms(lambda pre=pre: backbone.extract(pre[:1]), args.bare_calls)
            pipe, cpu = run(path, True, chunk)
            ms = 1000.0 * cpu.wall / pipe.cameras[0].metrics.classified
            bares.append(bare)
            costs.append(ms)
            ratios.append(ms / bare)
            cores.append(cpu.cores)
            classified += pipe.cameras[0].metrics.classified
            stages.append({k: v.mean for k, v in pipe.cameras[0].metrics.stages.items()})
        result = _result(float(np.median(costs)), float(np.median(bares)), classified,
                         float(np.median(cores)))  # fmt: skip
        result["ratio_to_bare"] = round(float(np.median(ratios)), 3)
        result["ratios"] = [round(r, 3) for r in ratios]
        result["stages_ms"] = {
            k: round(float(np.mean([s[k] for s in stages])), 3) for k in stages[0]
        }
        result["backend"] = backbone.backend
        if args.paced_frames:
            paced, paced_cpu = run(path, False, args.paced_frames)
            camera = paced.cameras[0]
            ages = camera.metrics.frame_age
            source = open_source(path)
            fps = source.fps
            source.release()
            result["paced"] = {
                "age_p50_ms": round(ages.percentile(50), 1),
                "age_p95_ms": round(ages.percentile(95), 1),
                "classified": camera.metrics.classified,
                "sampled": camera.capture.stats.frames_sampled,
                "dropped": camera.ring.dropped,
                "cpu_cores": round(paced_cpu.cores, 2),
                "seconds": round(paced_cpu.wall, 1),
                "source_fps": round(fps, 2),
            }
        results[path] = result
    for result in results.values():
        result["peak_rss_mb"] = round(_peak_rss_mb(), 0)
    return results


def soak(args) -> dict:
    """A paced, looped replay for `--seconds`, memory sampled every `--every` seconds."""
    import threading

    from realtime.frames.sources import open_source
    from realtime.head.classifier import ActionClassifier
    from realtime.outputs.text import JsonlSink
    from realtime.stream.pipeline import Pipeline, RunSettings

    backbone = _backbone(args)
    classifier = ActionClassifier(args.model)
    settings = RunSettings(loop=True)
    pipe = Pipeline.single(
        open_source(args.input[0]),
        backbone,
        classifier,
        settings,
        [JsonlSink(os.devnull)],
        reopen=lambda: open_source(args.input[0]),
    )
    samples = []
    pipe.start()
    started = time.monotonic()
    stop = threading.Event()
    while not stop.wait(args.every):
        elapsed = time.monotonic() - started
        snap = pipe.cameras[0].metrics.snapshot()
        samples.append(
            {
                "t_s": round(elapsed, 1),
                "rss_mb": round(_rss_mb(), 1),
                "classified": snap.classified,
                "age_ms": round(snap.frame_age_ms, 1),
            }
        )
        print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
        if elapsed >= args.seconds or pipe.done:
            break
    pipe.request_stop()
    pipe.close()
    ages = pipe.cameras[0].metrics.frame_age
    warm = [s["rss_mb"] for s in samples if s["t_s"] >= 60] or [s["rss_mb"] for s in samples]
    return {
        "backend": backbone.backend,
        "seconds": samples[-1]["t_s"] if samples else 0,
        "classified": pipe.cameras[0].metrics.classified,
        "dropped": pipe.cameras[0].ring.dropped,
        "age_p50_ms": round(ages.percentile(50), 1),
        "age_p95_ms": round(ages.percentile(95), 1),
        "rss_after_1min_mb": warm[0],
        "rss_end_mb": warm[-1],
        "rss_growth_pct": round(100.0 * (warm[-1] - warm[0]) / warm[0], 2),
        "samples": samples,
    }


def _timed_steps(step, frames, bare_ms: float) -> dict:
    """Run `step` on every frame, timed as one block: the row of a per-frame variant."""
    with CpuWatch() as cpu:
        for frame in frames:
            step(frame)
    return _result(1000.0 * cpu.wall / len(frames), bare_ms, len(frames), cpu.cores)


def _result(ms: float, bare_ms: float, frames: int, cores: float) -> dict:
    return {
        "ms_per_frame": round(ms, 2),
        "bare_backbone_ms": round(bare_ms, 2),
        "ratio_to_bare": round(ms / bare_ms, 3),
        "fps": round(1000.0 / ms, 2),
        "frames": frames,
        "cpu_cores": round(cores, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 0),
    }


VARIANTS = {
    "prepare": prepare,
    "example": example,
    "naive": naive,
    "pipeline": pipeline,
    "soak": soak,
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.worker")
    p.add_argument("variant", choices=VARIANTS)
    p.add_argument("--work", default=None)
    p.add_argument("--weights")
    p.add_argument("--model")
    p.add_argument("--input", nargs="+", default=[])
    p.add_argument("--backend", default="auto")
    p.add_argument("--backends", nargs="*", default=[])
    p.add_argument("--calibration", nargs="*", default=[], help="openvino-int8: videos/folders")
    p.add_argument("--cache-dir")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--bare-calls", type=int, default=15)
    p.add_argument("--chunks", type=int, default=3, help="pipeline: alternations bare/pipeline")
    p.add_argument("--paced-frames", type=int, default=0, help="0: no paced replay")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--every", type=float, default=10)
    args = p.parse_args(argv)
    from realtime.core.optional import native_stderr_silenced

    with native_stderr_silenced():  # keep TensorFlow's native start-up chatter out of the logs
        from realtime.core.optional import import_tensorflow

        import_tensorflow()
    result = VARIANTS[args.variant](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
