"""Recipes x data sets x training seeds: does a recipe learn order, appearance, and both?

Data sets (features from the shared, ImageNet-trained LiteRT MobileNet v1 embedder, 1024-d):

- every synthetic generator (`shapes`, `textures`, `sprites`, `blinds`, `crossing`, `rooms`,
  `outdoors`, `tabletop`) x every kind of set (`order`: classes told apart only by the order of the
  frames; `appearance`: only by how they look; `mixed`: both needed), written with
  `--data-seed` (12 training and 12 test videos per class unless told otherwise);
- `clips`: the five real clips of ../shared/clips, one class each: windows from the first
  60 % of each clip's sampled frames to train on (each window a 20-frame training video,
  listed in a shuffled order; the windows of each clip in 4 groups of consecutive starts,
  held out together by validation and calibration), the last 40 % to test on (does a recipe
  keep appearance on real content?). Synthetic videos are each their own group.

Each recipe is trained with `training.train.train_head` (the code `python -m training train`
runs) once per training seed and evaluated with `training.evaluate`'s protocols: first window
(what `evaluate` reports as accuracy), any phase (every window, stride 1) and any phase with
10 % / 30 % of the sampled frames missing. Prints one Markdown table (mean and spread over the
seeds) and writes it with the raw figures to `--out` (.md and .json); with more than one
recipe, the .md also gives each recipe against the first, paired by training seed (the same
seed is the same split: the difference leaves the split's luck out). Ctrl-C, SIGTERM or SIGHUP
stops it after writing every cell that finished (exit 130).

The default recipe was tuned on `textures` sets (data seed 1000) and, for its change
reference, `sprites` sets made with data seed 3000; `shapes`, `blinds` (written after the
recipe was fixed; studied later with data seed 3000, docs/training.md), `crossing`, `rooms`,
`outdoors` and `tabletop` (each written after the one before, for reporting only), the clips
and every set made with data seed 2000 were never looked at while tuning. Since then `rooms`
and `outdoors` (data seed 2000) have been tuned on for the change part's directions
(`change_basis`, docs/training.md); `tabletop` (data seed 2000) was run once, with the
default and `default:change_basis=both,change_dims=64`, for the report table; then with
`pooling=regions`, with and without `change_basis=both,change_dims=64` (tuned on `rooms` and
`outdoors`, reported on `tabletop` and `crossing`). Then
`default:change_basis=discriminant,change_dims=24` (fixed before any run, nothing tuned) on
every set, globally pooled, and with `pooling=regions` on `tabletop` and `crossing`
(bench/results/recipes_discriminant.md).

Then `default:motion=56,motion_scores=true` on every set at data seeds 2000 and 7700
(recipes_motion_scores_s2000.md, _s7700.md), after which it became `default`; the default
before it is `no-motion`. Then `default:motion_quadrants=true` on every set at data seeds 2000
and 7700 (recipes_motion_quadrants_s2000.md, _s7700.md; it failed on the clips). Then, on
the tuning sets of data seed 3300 and the clips only (recipes_motion_summary_s3300.md):
`default:motion_quadrants=true,motion_summary=true`, with and without
`motion_scores_after=true` (a recipe field, set the same way), and
`default:motion_scores_after=true`.

Head fields are set the same way (`NAME:field=value,...`), e.g.
`default:change_basis=both,change_dims=64`.

A recipe's `pooling` (e.g. `--recipes 'default;default:pooling=regions'`) chooses the
embedder's pooling (`--pooling`: whole image, or whole image + quadrants, 5120-d); each set is
featurised once per pooling the recipes ask for.

    PYTHONPATH=. python bench/recipes_synthetic.py [--sets all] [--recipes 'seed;no-motion;default']
        [--seeds 3] [--data-seed 2000] [--work DIR] [--out bench/results/recipes_synthetic]

On 2 cores, run two halves side by side (`--sets A,B,...` each, `--out` per half) and join
them with `--merge HALF1.json HALF2.json --out OUT`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from realtime.app import signals_call  # noqa: E402
from realtime.backbones.litert import LiteRTBackbone  # noqa: E402
from realtime.backbones.motion import WithMotion  # noqa: E402
from realtime.head.config import SEED_HEAD  # noqa: E402
from realtime.head.numpyhead import NumpyHead  # noqa: E402
from training.dataset import load_dataset  # noqa: E402
from training.evaluate import first_windows, live_protocols  # noqa: E402
from training.features import FeatureCache, extract_features  # noqa: E402
from training.recipes import DEFAULT, SEED, for_backbone  # noqa: E402
from training.synthetic import GENERATORS, KINDS, SyntheticSpec, generate  # noqa: E402
from training.train import make_windows, train_head, window_starts  # noqa: E402

EMBEDDER = (
    ROOT.parent / "shared" / "models" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
)
CLIPS = ROOT.parent / "shared" / "clips"
FPS = 25.0
CLIP_TRAIN_SHARE = 0.6
#: Groups of consecutive training windows per clip (`clips_set`)
CLIP_GROUPS = 4

#: The default recipe before it learned order (raw features, <= 60 epochs, patience 10).
PREVIOUS = replace(DEFAULT, name="previous", head=SEED_HEAD, epochs=60, early_stopping_patience=10)
#: The default recipe before it read the motion (`--no-motion`), named `default` in the
#: tables written before (bench/results/*, up to recipes_motion_scores_s2000).
NO_MOTION = replace(
    DEFAULT, name="no-motion", head=replace(DEFAULT.head, motion=0, motion_scores=False)
)
RECIPES = {"seed": SEED, "previous": PREVIOUS, "no-motion": NO_MOTION, "default": DEFAULT}
SYNTHETIC_SETS = [f"{g}-{k}" for g in GENERATORS for k in KINDS]


def parse_recipe(text: str):
    """`NAME` or `NAME:field=value,...` (head fields too), e.g. `default:appearance_dims=32`."""
    name, _, changes = text.partition(":")
    recipe = RECIPES[name]
    head = {}
    fields = {}
    for item in filter(None, changes.split(",")):
        key, _, value = item.partition("=")
        target = head if key in recipe.head.__dataclass_fields__ else fields
        current = getattr(recipe.head if target is head else recipe, key)
        if isinstance(current, tuple):  # gru_units=32-16
            target[key] = tuple(int(v) for v in value.split("-"))
        elif isinstance(current, bool):
            target[key] = value.lower() in ("1", "true", "yes")
        else:
            target[key] = type(current)(float(value) if isinstance(current, int) else value)
    return replace(recipe, name=text, head=replace(recipe.head, **head), **fields)


def synthetic_set(work: Path, name: str, args, backbone, console) -> dict:
    """Generate (once) and featurise one synthetic set: {"labels", "train", "test"}."""
    generator, kind = name.split("-")
    root = work / f"{name}-s{args.data_seed}"
    if not (root / "train.csv").is_file():
        spec = SyntheticSpec(
            args.train_per_class, args.test_per_class, generator, kind, seed=args.data_seed
        )
        generate(root, spec)
    data = load_dataset(root)
    cache = FeatureCache(root / ".features", backbone.cache_identity(), backbone.image_size, FPS)
    feats = extract_features(data.videos, backbone, FPS, None, cache, console)
    out = {"labels": data.labels}
    for split in ("train", "test"):
        videos = [v for v in data.split(split) if v.path in feats.features]
        out[split] = (
            [feats.features[v.path] for v in videos],
            [data.labels.index(v.label) for v in videos],
        )
        out[f"{split}_groups"] = [v.group for v in videos]  # as `python -m training train`
    return out


def clips_set(backbone, console, window: int, seed: int) -> dict:
    """The shared clips, each its own class: first 60 % to train on, last 40 % to test on.
    Each training window is a training video; the windows of a clip's training part are in
    `CLIP_GROUPS` groups of consecutive starts (what training holds out together: overlapping
    windows of one stretch look alike, as UCF101's clips of one recording do)."""
    clips = sorted(p for p in CLIPS.iterdir() if p.is_file())
    feats = extract_features(clips, backbone, FPS, None, None, console)
    train_x, train_y, groups, test_x, test_y = [], [], [], [], []
    for label, clip in enumerate(clips):
        frames = feats.features[clip]
        cut = int(round(len(frames) * CLIP_TRAIN_SHARE))
        head, tail = frames[:cut], frames[cut:]
        starts = window_starts(len(head), window, 1, len(head))
        for i, start in enumerate(starts):
            train_x.append(head[start : start + window])
            train_y.append(label)
            groups.append((label, i * CLIP_GROUPS // len(starts)))
        test_x.append(tail)
        test_y.append(label)
    order = np.random.default_rng(seed).permutation(len(train_x))
    return {
        "labels": [c.stem for c in clips],
        "train": ([train_x[i] for i in order], [train_y[i] for i in order]),
        "train_groups": [groups[i] for i in order],
        "test": (test_x, test_y),
    }


def run_one(data: dict, recipe, quiet: Console) -> dict:
    x, y = data["train"]
    windows = make_windows(x, y, recipe, data["train_groups"])
    result = train_head(windows, len(data["labels"]), recipe, quiet)
    head = NumpyHead.from_keras(result.head)

    def predict(features, masks):
        return np.stack([head.predict(f, m) for f, m in zip(features, masks, strict=True)])

    xt, yt = data["test"]
    first_f, first_m = first_windows(xt, recipe.window)
    first = float((predict(first_f, first_m).argmax(1) == np.asarray(yt)).mean())

    def windows(frames, starts):
        return head.predict_windows(frames, starts, recipe.window)

    live = live_protocols(windows, xt, yt, recipe.window)
    return {
        "first": first,
        "any": live["any_phase"]["accuracy"],
        "missing10": live["missing_frames"]["10%"]["accuracy"],
        "missing30": live["missing_frames"]["30%"]["accuracy"],
        "epochs": result.history["epochs_run"],
        "trainable": result.parameters["trainable"],
    }


def cell(values: list[float]) -> str:
    """mean ± half the range, in percent."""
    mean = 100 * float(np.mean(values))
    spread = 50 * (max(values) - min(values))
    return f"{mean:.1f} ± {spread:.1f}"


HEADER = (
    "| recipe | data set | first window | any phase | 10 % missing | 30 % missing "
    "| epochs |\n|---|---|---:|---:|---:|---:|---:|"
)


def table_row(key: str, runs: list[dict]) -> str:
    """One Markdown row from the runs of `recipe/set`."""
    recipe, name = key.split("/")
    return (
        f"| {recipe} | {name} | {cell([r['first'] for r in runs])} "
        f"| {cell([r['any'] for r in runs])} "
        f"| {cell([r['missing10'] for r in runs])} "
        f"| {cell([r['missing30'] for r in runs])} "
        f"| {np.mean([r['epochs'] for r in runs]):.0f} |"
    )


PAIRED_HEADER = (
    "| recipe | data set | first window, Δ | any phase, Δ | seeds |\n|---|---|---:|---:|---:|"
)


def paired(a: list[float], b: list[float]) -> str:
    """b - a, paired by training seed: mean ± its standard error, in points."""
    diff = 100 * (np.asarray(b, float) - np.asarray(a, float))
    error = diff.std(ddof=1) / np.sqrt(len(diff))
    return f"{diff.mean():+.1f} ± {error:.1f}"


def paired_rows(raw: dict, sets: list[str], recipes: list[str]) -> list[str]:
    """Each recipe against the first, on every set both ran with the same seeds (two or more).

    The same training seed gives both recipes the same training and validation split, which
    moves the accuracy of both the same way (on blinds-appearance, seeds 15 points apart);
    the paired difference leaves that out, so its error says how sure the difference is."""
    base, rows = recipes[0], []
    for name in sets:
        for recipe in recipes[1:]:
            first, other = raw.get(f"{base}/{name}"), raw.get(f"{recipe}/{name}")
            if not first or not other or len(first) != len(other) or len(first) < 2:
                continue
            rows.append(
                f"| {recipe} | {name} "
                f"| {paired([r['first'] for r in first], [r['first'] for r in other])} "
                f"| {paired([r['any'] for r in first], [r['any'] for r in other])} "
                f"| {len(first)} |"
            )
    return rows


def table_note(args, raw: dict, sets: list[str], recipes: list[str]) -> str:
    """The protocol, and each recipe's trainable parameters on the first set it ran (a merged
    table need not run every recipe on every set; the count depends on the classes)."""
    params = []
    for recipe in recipes:
        name = next(s for s in sets if f"{recipe}/{s}" in raw)
        params.append(f"{recipe} {raw[f'{recipe}/{name}'][0]['trainable']:,} ({name})")
    return (
        f"\n{args.seeds} training seeds per cell (mean ± half the range, %); synthetic sets "
        f"{args.train_per_class} train / {args.test_per_class} test videos per class, data "
        f"seed {args.data_seed}; trainable parameters: " + ", ".join(params)
    )


def recipes_and_sets(raw: dict) -> tuple[list[str], list[str]]:
    """The recipes and the sets of `raw`'s "recipe/set" keys, each in the order first met."""
    recipes = list(dict.fromkeys(key.split("/")[0] for key in raw))
    return recipes, list(dict.fromkeys(key.split("/")[1] for key in raw))


def write_results(out: Path, args, raw: dict) -> str:
    """OUT.md (the table, sets in the order given, recipes within) and OUT.json (raw runs);
    the table's note."""
    recipes, sets = recipes_and_sets(raw)
    rows = [table_row(f"{r}/{s}", raw[f"{r}/{s}"]) for s in sets for r in recipes
            if f"{r}/{s}" in raw]  # fmt: skip
    # the raw runs first: hours of training are in them, the table can be made again
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "runs": raw}) + "\n")
    note = table_note(args, raw, sets, recipes)
    text = HEADER + "\n" + "\n".join(rows) + "\n" + note + "\n"
    pairs = paired_rows(raw, sets, recipes)
    if pairs:
        text += (
            f"\nAgainst {recipes[0]}, paired by training seed (points; mean ± standard "
            "error of the per-seed differences):\n\n" + PAIRED_HEADER + "\n"
            + "\n".join(pairs) + "\n"
        )  # fmt: skip
    out.with_suffix(".md").write_text(text)
    return note


def finish(args, raw: dict) -> int:
    """After the runs: OUT.json and OUT.md if --out, and the table's note on stdout."""
    if args.out:
        print(write_results(Path(args.out), args, raw))
    else:
        recipes, sets = recipes_and_sets(raw)
        print(table_note(args, raw, sets, recipes))
    return 0


def merge(out: Path, parts: list[Path]) -> int:
    """Runs split over several processes (e.g. one per core) -> one table, sets in order."""
    loaded = [json.loads(p.read_text()) for p in parts]
    raw: dict = {}
    for part in loaded:
        raw.update(part["runs"])
    order = {name: i for i, name in enumerate(SYNTHETIC_SETS + ["clips"])}
    raw = dict(sorted(raw.items(), key=lambda kv: order[kv[0].split("/")[1]]))
    args = argparse.Namespace(**{**loaded[0]["args"], "sets": "merged", "out": str(out)})
    write_results(out, args, raw)
    print(out.with_suffix(".md").read_text())
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="all", help="comma-separated, e.g. shapes-order,clips")
    p.add_argument(
        "--recipes",
        default="seed;no-motion;default",
        help=f"';'-separated: {', '.join(RECIPES)}, each NAME[:field=value,...]",
    )
    p.add_argument("--seeds", type=int, default=3, help="training seeds per recipe and set")
    p.add_argument("--data-seed", type=int, default=2000, help="seed of the synthetic sets")
    p.add_argument("--train-per-class", type=int, default=12)
    p.add_argument("--test-per-class", type=int, default=12)
    p.add_argument("--work", help="keep generated sets and features here (default: temporary)")
    p.add_argument("--out", help="write OUT.md and OUT.json")
    p.add_argument(
        "--merge", nargs="+", metavar="PART.json", help="only merge earlier runs' JSON into --out"
    )
    args = p.parse_args()
    if args.merge:
        return merge(Path(args.out), [Path(x) for x in args.merge])
    if not EMBEDDER.is_file():
        print(f"needs {EMBEDDER}", file=sys.stderr)
        return 2
    sets = SYNTHETIC_SETS + ["clips"] if args.sets == "all" else args.sets.split(",")
    if any(s not in SYNTHETIC_SETS + ["clips"] for s in sets):
        print(f"sets: {', '.join(SYNTHETIC_SETS)}, clips", file=sys.stderr)
        return 2
    recipes = [parse_recipe(text) for text in args.recipes.split(";")]
    console, quiet = Console(stderr=True), Console(quiet=True)
    raw: dict = {}
    print(HEADER, flush=True)
    try:
        # SIGTERM (kill, timeout) and SIGHUP (the terminal closed) stop it as Ctrl-C does
        with signals_call(_interrupt):
            run_cells(args, sets, recipes, raw, console, quiet)
    except KeyboardInterrupt:  # hours of training: keep every cell that finished
        console.print(f"interrupted: {len(raw)} finished cells written")
        finish(args, raw)
        return 130
    return finish(args, raw)


def _interrupt() -> None:
    raise KeyboardInterrupt


def recipe_backbone(recipe):
    """The shared embedder as `recipe` reads it: its pooling, and each frame's thumbnail
    after the features when its head reads the motion."""
    backbone = LiteRTBackbone(EMBEDDER, pooling=recipe.pooling)
    return WithMotion(backbone, recipe.head.motion) if recipe.head.motion else backbone


def run_cells(args, sets: list[str], recipes: list, raw: dict, console, quiet) -> None:
    """Each set's features once per pooling, then each recipe's seeds: one cell (recipe/set)
    at a time into `raw`, printed as its row when it is done."""
    backbones = {}  # per (pooling, motion), made when a recipe first asks for it
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in sets:
            featurised = {}  # this set's features per (pooling, motion)
            for recipe in recipes:
                kind = (recipe.pooling, recipe.head.motion)
                if kind not in featurised:
                    if kind not in backbones:
                        backbones[kind] = recipe_backbone(recipe)
                    backbone = backbones[kind]
                    featurised[kind] = (
                        clips_set(backbone, console, DEFAULT.window, args.data_seed)
                        if name == "clips"
                        else synthetic_set(work, name, args, backbone, console)
                    )
                data = featurised[kind]
                start = time.perf_counter()
                fitted = for_backbone(recipe, backbones[kind])
                runs = [run_one(data, replace(fitted, seed=s), quiet) for s in range(args.seeds)]
                raw[f"{recipe.name}/{name}"] = runs
                print(table_row(f"{recipe.name}/{name}", runs), flush=True)
                console.print(f"{recipe.name}/{name}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
