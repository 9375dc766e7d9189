"""Would features that keep where things are let the default recipe learn movement across the
image? A probe, not a product backbone: the shared MobileNet v1 embedder's last feature map
(7 x 7 x 1024, read from the LiteRT interpreter before its average pool) pooled over regions
instead of the whole image, fed to the default recipe unchanged.

    global   the embedder's own output: the mean over all 7 x 7 positions (1024; what runs today)
    lr       [global, left 3 columns, right 3 columns] (3072)
    lrdiff   [global, left - right] (2048)
    grid     [global, the four 3 x 3 corner quadrants] (5120)

    PYTHONPATH=. python bench/region_probe.py crossing-order,crossing-appearance \
        --data-seed 9100 --modes global,lr,lrdiff,grid

Per set and mode, the default recipe with training seeds 0 and 1 (first window and any phase,
as bench/recipes_synthetic.py). Results: bench/results/region_probe.md (written by hand from
the printed lines; docs/training.md quotes them).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from bench.recipes_synthetic import EMBEDDER, NO_MOTION, run_one, synthetic_set  # noqa: E402
from realtime.backbones.litert import LiteRTBackbone  # noqa: E402

#: MobilenetV1/Conv2d_13_pointwise/Relu6 in the shared embedder: 7 x 7 x 1024, before AvgPool
FEATURE_MAP = 81
SIZES = {"lr": 3 * 1024, "lrdiff": 2 * 1024, "grid": 5 * 1024}


class RegionPooled(LiteRTBackbone):
    """The embedder with its last feature map pooled over regions (one interpreter, every
    tensor kept: slower, a probe only)."""

    def __init__(self, path: Path, mode: str):
        super().__init__(path)
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(
            model_path=str(path), num_threads=2, experimental_preserve_all_tensors=True
        )
        self._interpreter.allocate_tensors()
        self.mode = mode
        self.feature_size = SIZES[mode]
        self.name = f"{self.name}-regions-{mode}"
        (detail,) = [t for t in self._interpreter.get_tensor_details() if t["index"] == FEATURE_MAP]
        assert tuple(detail["shape"]) == (1, 7, 7, 1024), detail["shape"]
        self._scale, self._zero = detail["quantization"]

    def cache_identity(self) -> dict:
        return {**super().cache_identity(), "regions": self.mode}

    def parallel_extractors(self) -> list:
        return []

    def extract(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.uint8)
        out = np.empty((len(frames), self.feature_size), np.float32)
        for i, frame in enumerate(frames):
            self._interpreter.set_tensor(self._input["index"], self._scaled(frame)[None])
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(FEATURE_MAP)[0].astype(np.float32)
            fm = (raw - self._zero) * self._scale
            whole = fm.mean(axis=(0, 1))
            left, right = fm[:, :3].mean(axis=(0, 1)), fm[:, 4:].mean(axis=(0, 1))
            if self.mode == "lr":
                out[i] = np.concatenate([whole, left, right])
            elif self.mode == "lrdiff":
                out[i] = np.concatenate([whole, left - right])
            else:
                corners = [fm[:3, :3], fm[:3, 4:], fm[4:, :3], fm[4:, 4:]]
                out[i] = np.concatenate([whole, *(c.mean(axis=(0, 1)) for c in corners)])
        return out


def main() -> int:
    p = argparse.ArgumentParser(prog="bench/region_probe.py", description=__doc__.split("\n")[0])
    p.add_argument("sets", help="comma-separated synthetic sets, e.g. crossing-order")
    p.add_argument("--data-seed", type=int, default=9100)
    p.add_argument("--modes", default="global,grid")
    p.add_argument("--train-per-class", type=int, default=12)
    p.add_argument("--test-per-class", type=int, default=12)
    p.add_argument("--work", default=str(Path.home() / ".cache" / "realtime-region-probe"))
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    quiet = Console(file=open("/dev/null", "w"))  # noqa: SIM115 (the recipe's own lines)
    for mode in args.modes.split(","):
        backbone = LiteRTBackbone(EMBEDDER) if mode == "global" else RegionPooled(EMBEDDER, mode)
        for name in args.sets.split(","):
            data = synthetic_set(work, name, args, backbone, console)
            for seed in (0, 1):
                # the default as it was when this probe ran (its features have no thumbnails)
                result = run_one(data, replace(NO_MOTION, seed=seed), quiet)
                print(f"{name} {mode} seed {seed}: first window {result['first']:.3f}, "
                      f"any phase {result['any']:.3f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
