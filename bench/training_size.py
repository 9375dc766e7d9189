"""Training videos per class vs what the default recipe learns, on one synthetic set.

The set is written once with the most videos per class asked for; each smaller size trains on
the first N training videos of each class (videos are seeded by (seed, class, split, number),
so the smaller sets are the start of the larger one) and every size is tested on the same test
videos. Default recipe, `--seeds` training seeds, first-window and any-phase accuracy (the
protocols of `bench/recipes_synthetic.py`, whose helpers this uses).

    PYTHONPATH=. python bench/training_size.py sprites-order --data-seed 3000 \\
        --sizes 6,12,24,36 [--seeds 3] [--work DIR] [--out bench/results/training_size_sprites]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import recipes_synthetic as bench  # noqa: E402
from rich.console import Console  # noqa: E402

from training.recipes import DEFAULT, for_backbone  # noqa: E402


def first_per_class(data: dict, n: int) -> dict:
    """`data` with only the first `n` training videos of each class (and their groups)."""
    x, y = data["train"]
    seen: dict[int, int] = {}
    keep = []
    for i, label in enumerate(y):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= n:
            keep.append(i)
    groups = data["train_groups"]
    return dict(
        data,
        train=([x[i] for i in keep], [y[i] for i in keep]),
        train_groups=[groups[i] for i in keep],
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("set", help="a synthetic set, e.g. sprites-order")
    p.add_argument("--data-seed", type=int, default=3000)
    p.add_argument("--sizes", default="6,12,24,36", help="training videos per class")
    p.add_argument("--test-per-class", type=int, default=12)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--work", required=True, help="keep the generated set and features here")
    p.add_argument("--out", help="write OUT.md and OUT.json")
    args = p.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    console, quiet = Console(stderr=True), Console(quiet=True)
    set_args = argparse.Namespace(
        train_per_class=sizes[-1], test_per_class=args.test_per_class, data_seed=args.data_seed
    )
    backbone = bench.recipe_backbone(DEFAULT)  # with the thumbnails the default reads
    recipe = for_backbone(DEFAULT, backbone)
    data = bench.synthetic_set(Path(args.work), args.set, set_args, backbone, console)
    rows = ["| train videos / class | first window | any phase |", "|---:|---:|---:|"]
    raw = {}
    print("\n".join(rows), flush=True)
    for n in sizes:
        start = time.perf_counter()
        runs = [
            bench.run_one(first_per_class(data, n), replace(recipe, seed=s), quiet)
            for s in range(args.seeds)
        ]
        raw[n] = runs
        row = f"| {n} | {bench.cell([r['first'] for r in runs])} | "
        row += f"{bench.cell([r['any'] for r in runs])} |"
        rows.append(row)
        print(row, flush=True)
        console.print(f"{n} / class: {time.perf_counter() - start:.0f} s")
    note = (
        f"\n`{args.set}`, data seed {args.data_seed}, {args.test_per_class} test videos per class "
        f"(the same for every size); default recipe, {args.seeds} training seeds (mean ± half "
        "the range, %)"
    )
    print(note)
    if args.out:
        out = Path(args.out)
        out.with_suffix(".md").write_text("\n".join(rows) + "\n" + note + "\n")
        out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "runs": raw}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
