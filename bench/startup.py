"""Start-up: time from process start to the first JSONL line, and peak memory, of
`python -m realtime` with a warm backbone cache; checkouts side by side in one run.

    python bench/startup.py [--tree OLD_CHECKOUT] [--runs 5] [--out bench/results/startup]

Two runs per checkout and round: InceptionV3 (weights from a file, `--backend auto`, its
conversion already cached) and the shared `.tflite` backbone, each on the same synthetic
video (`--every-frame --max-frames 3 --jsonl - --ui none`). The runs alternate (checkout A,
checkout B, A, B...) so that load from elsewhere hits every variant alike; the table shows
medians. Peak memory is the child's own `ru_maxrss` (os.wait4), so every run is measured
apart. InceptionV3's weights are its seeded random initialisation (ImageNet's cannot be
downloaded here): start-up does not depend on their values. An older checkout (`--tree`, e.g.
a `git worktree` of the commit before a change) runs with its own code on the same files and
cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recipes_synthetic import EMBEDDER  # noqa: E402


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def prepare(work: Path, cache: Path) -> dict:
    """Weights, an InceptionV3 model directory and its cached conversion (bench.worker), a
    model directory for the shared .tflite backbone, and the synthetic video."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.worker", "prepare", "--work", str(work),
         "--cache-dir", str(cache), "--backends", "openvino", "openvino-bf16", "litert"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    prep = json.loads(done.stdout.strip().splitlines()[-1])
    tflite_model = work / "model-tflite-mobilenet-default-head"
    if not (tflite_model / "metadata.json").is_file():
        code = f"""
import numpy as np, keras
from realtime.backbones.litert import LiteRTBackbone
from realtime.head.keras import build_head, fit_head_input
from realtime.head.modeldir import ModelInfo
from training.export import write_model_dir
from training.recipes import DEFAULT_HEAD
backbone = LiteRTBackbone({str(EMBEDDER)!r})
keras.utils.set_random_seed(0)
head = build_head(20, backbone.feature_size, 5, DEFAULT_HEAD)
windows = np.random.default_rng(0).random((64, 20, backbone.feature_size), dtype=np.float32)
videos = np.arange(64)  # a window per video, of 5 classes
fit_head_input(head, DEFAULT_HEAD, windows, np.ones((64, 20), bool), videos, videos % 5)
info = ModelInfo(labels=list("abcde"), window=20, image_size=backbone.image_size,
                 backbone=backbone.identity(), head=DEFAULT_HEAD)
write_model_dir({str(tflite_model)!r}, head, info, backbone)  # copies the .tflite in
"""
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    return {**prep, "tflite_model": str(tflite_model)}


def one_run(tree: Path, argv: list[str], cache: Path) -> dict:
    """Spawn `python -m realtime ARGV` in `tree`; seconds to its first JSONL line and to its
    exit, its peak RSS (MB) and exit code."""
    env = {**os.environ, "PYTHONPATH": str(tree), "REALTIME_ACTION_CACHE": str(cache)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", *argv], cwd=tree, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    first = None
    for line in proc.stdout:
        if first is None and line.startswith("{"):
            first = time.perf_counter() - started
    _, status, usage = os.wait4(proc.pid, 0)
    total = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "first_line_s": first,
        "exit_s": total,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "code": proc.returncode,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", action="append", default=[], help="another checkout to compare")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--work", help="weights, models, video (default: a temporary folder)")
    p.add_argument("--out", help="write OUT.md and OUT.json")
    args = p.parse_args()
    if not EMBEDDER.is_file():
        print(f"error: the shared embedder is missing: {EMBEDDER}", file=sys.stderr)
        return 2
    trees = [ROOT, *(Path(t).resolve() for t in args.tree)]
    with tempfile.TemporaryDirectory(prefix="startup-") as scratch:
        work = Path(args.work) if args.work else Path(scratch) / "work"
        cache = work / "cache"
        prep = prepare(work, cache)
        common = ["--source", prep["synthetic"], "--every-frame", "--max-frames", "3",
                  "--jsonl", "-", "--ui", "none", "--quiet"]  # fmt: skip
        variants = {
            "InceptionV3, --backend auto": [
                *common,
                "--model",
                prep["model"],
                "--backbone-weights",
                prep["weights"],
            ],  # fmt: skip
            ".tflite backbone": [*common, "--model", prep["tflite_model"]],
        }
        runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.runs):
            for tree in trees:
                for name, argv in variants.items():
                    result = one_run(tree, argv, cache)
                    runs.setdefault((str(tree), name), []).append(result)
                    print(f"{tree.name:>12} {name:28} {result}", file=sys.stderr, flush=True)
    lines = [
        f"<!-- python bench/startup.py {' '.join(f'--tree {t}' for t in args.tree)} "
        f"--runs {args.runs}; {cpu_name()}, {os.cpu_count()} cores -->",
        "",
        "| checkout | backbone | first JSONL line (s) | exit (s) | peak RSS (MB) |",
        "|---|---|---:|---:|---:|",
    ]
    for (tree, name), results in runs.items():
        ok = [r for r in results if r["code"] == 0 and r["first_line_s"] is not None]
        if len(ok) < len(results):
            print(f"error: {len(results) - len(ok)} run(s) of {name} in {tree} failed",
                  file=sys.stderr)  # fmt: skip
            return 1
        med = {k: statistics.median(r[k] for r in ok) for k in ("first_line_s", "exit_s",
                                                                 "peak_rss_mb")}  # fmt: skip
        lines.append(
            f"| {Path(tree).name} | {name} | {med['first_line_s']:.2f} | {med['exit_s']:.2f} | "
            f"{med['peak_rss_mb']:.0f} |"
        )
    lines += ["", f"medians of {args.runs} alternating runs per cell"]
    print("\n".join(lines))
    if args.out:
        Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
        raw = {f"{t} | {n}": r for (t, n), r in runs.items()}
        Path(args.out).with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
